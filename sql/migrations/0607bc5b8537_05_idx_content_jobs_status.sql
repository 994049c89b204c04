-- Revision 0607bc5b8537: workers filter jobs by status.
CREATE INDEX CONCURRENTLY idx_content_jobs_status ON content_jobs (status);
