-- Revision 0607bc5b8535: every authenticated request validates its session token.
CREATE UNIQUE INDEX CONCURRENTLY ix_sessions_token ON sessions (token);
