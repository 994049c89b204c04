-- Revision 0607bc5b8539 (S10): the orgs a user owns.
CREATE INDEX CONCURRENTLY idx_organizations_owner_id ON organizations (owner_id);
