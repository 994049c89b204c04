-- Revision 0607bc5b8538: GDPR clean-up finds soft-deleted users.
CREATE INDEX CONCURRENTLY idx_users_deleted_at ON users (deleted_at);
