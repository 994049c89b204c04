-- Revision 0607bc5b8537: an org's job history, newest first.
CREATE INDEX CONCURRENTLY idx_content_jobs_org_created_desc ON content_jobs (org_id, created_at DESC);
