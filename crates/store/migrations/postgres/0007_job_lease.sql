-- Exactly-once web jobs. A worker claims a job with a lease it renews while
-- the job runs; a job whose lease ran out (its server died) is claimed again
-- by any server. The import a job applies names it, in the import's own
-- transaction, so a job whose import committed is finished from that import
-- rather than run a second time.
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE imports ADD COLUMN job_id BIGINT;
CREATE UNIQUE INDEX imports_by_job ON imports (job_id) WHERE job_id IS NOT NULL;
