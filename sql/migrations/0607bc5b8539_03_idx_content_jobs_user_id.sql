-- Revision 0607bc5b8539 (S10): a user's jobs. The seed ships it; it is a prefix of
-- idx_content_jobs_user_created_desc, and ops maintain usage reports it as redundant.
CREATE INDEX CONCURRENTLY idx_content_jobs_user_id ON content_jobs (user_id);
