-- Revision 0607bc5b8539 (S10): a user's sessions (listing, revoking, clean-up).
CREATE INDEX CONCURRENTLY idx_sessions_user_id ON sessions (user_id);
