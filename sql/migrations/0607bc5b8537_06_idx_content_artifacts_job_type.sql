-- Declared by the app's model (the seed lists it as 'Model def'); kept here so verify covers it.
-- Where the app already built it, ops migrate adopts it instead of rebuilding.
CREATE INDEX CONCURRENTLY idx_content_artifacts_job_type ON content_artifacts (job_id, type);
