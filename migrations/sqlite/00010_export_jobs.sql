-- +goose Up
-- FHIR Bulk Data $export jobs and their output (see migrations/postgres/00010).
-- Instants are microseconds since the Unix epoch, UTC.
CREATE TABLE export_job (
    id               TEXT    PRIMARY KEY,
    state            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    group_id         TEXT    NOT NULL DEFAULT '',
    request          TEXT    NOT NULL,
    types            TEXT    NOT NULL,
    refused          TEXT    NOT NULL,
    since            INTEGER NOT NULL DEFAULT 0,
    output_format    TEXT    NOT NULL,
    client_id        TEXT    NOT NULL DEFAULT '',
    user_id          TEXT    NOT NULL DEFAULT '',
    session_id       TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    transaction_time INTEGER NOT NULL,
    owner            TEXT    NOT NULL DEFAULT '',
    lease_until      INTEGER NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0,
    progress         TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    manifest         TEXT    NOT NULL DEFAULT '',
    expires_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX export_job_claim ON export_job (state, created_at);
CREATE INDEX export_job_expires ON export_job (expires_at);

-- The store's connections turn foreign keys on: a file goes with its job, and a file of
-- a job cancelled meanwhile is refused.
CREATE TABLE export_file (
    job_id        TEXT    NOT NULL REFERENCES export_job (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    resource_type TEXT    NOT NULL,
    count         INTEGER NOT NULL,
    content       BLOB    NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
) STRICT;

-- +goose Down
DROP TABLE export_file;
DROP TABLE export_job;
