-- Revision 0607bc5b8539 (S10): recent artifacts.
CREATE INDEX CONCURRENTLY idx_content_artifacts_created_desc ON content_artifacts (created_at DESC);
