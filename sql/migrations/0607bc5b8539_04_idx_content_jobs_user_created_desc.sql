-- Revision 0607bc5b8539 (S10): a user's job history, newest first, paginated.
CREATE INDEX CONCURRENTLY idx_content_jobs_user_created_desc ON content_jobs (user_id, created_at DESC);
