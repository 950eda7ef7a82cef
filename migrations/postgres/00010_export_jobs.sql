-- +goose Up
-- FHIR Bulk Data $export (pkg/export). A job is a row claimed by one instance at a time:
-- owner and lease_until say who runs it and until when; a lease that runs out (the
-- instance died) lets another instance claim it, attempt + 1, and run it again from
-- the start. Instants are microseconds since the Unix epoch, UTC, on both backends, so
-- that the claim compares them with the caller's clock (tests move it).
CREATE TABLE export_job (
    id               text    PRIMARY KEY,
    state            text    NOT NULL,
    kind             text    NOT NULL,
    group_id         text    NOT NULL DEFAULT '',
    request          text    NOT NULL,
    types            text    NOT NULL,
    refused          text    NOT NULL,
    since            bigint  NOT NULL DEFAULT 0,
    output_format    text    NOT NULL,
    client_id        text    NOT NULL DEFAULT '',
    user_id          text    NOT NULL DEFAULT '',
    session_id       text    NOT NULL DEFAULT '',
    created_at       bigint  NOT NULL,
    transaction_time bigint  NOT NULL,
    owner            text    NOT NULL DEFAULT '',
    lease_until      bigint  NOT NULL DEFAULT 0,
    attempt          integer NOT NULL DEFAULT 0,
    progress         text    NOT NULL DEFAULT '',
    error            text    NOT NULL DEFAULT '',
    manifest         text    NOT NULL DEFAULT '',
    expires_at       bigint  NOT NULL
);
-- The claim's search: the oldest queued job, or a running one whose lease ran out.
CREATE INDEX export_job_claim ON export_job (state, created_at);
CREATE INDEX export_job_expires ON export_job (expires_at);

-- The NDJSON output, one row per file: the bytes live in the database so that any
-- instance serving the database serves them. Rows of an earlier attempt are ignored
-- (the job's attempt names the files in force) and removed when the job finishes.
CREATE TABLE export_file (
    job_id        text    NOT NULL REFERENCES export_job (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    seq           integer NOT NULL,
    resource_type text    NOT NULL,
    count         integer NOT NULL,
    content       bytea   NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);
-- Stored as written, out of line: pglz compressing a 10 MB file took longer than
-- writing it (files are short-lived; the disk they take is freed by the sweep).
ALTER TABLE export_file ALTER COLUMN content SET STORAGE EXTERNAL;

-- +goose Down
DROP TABLE export_file;
DROP TABLE export_job;
