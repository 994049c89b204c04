-- Revision 0607bc5b8537: membership checks (is this user in this org?).
CREATE INDEX CONCURRENTLY idx_memberships_org_user ON memberships (org_id, user_id);
