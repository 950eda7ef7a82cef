-- +goose Up
-- The schema of migrations/postgres/00001 in SQLite's types. STRICT tables refuse a value
-- of the wrong type instead of storing it as another. Instants (last_updated, low, high)
-- are INTEGER microseconds since the Unix epoch, UTC: they compare and sort as numbers,
-- with the precision PostgreSQL's timestamptz keeps. content is the JSON text; deleted
-- is 0 or 1. Text compares byte by byte (BINARY), as COLLATE "C" does on PostgreSQL.

-- Current version of every resource. content is the full JSON document (with meta);
-- a deleted resource keeps its last content with deleted = 1.
CREATE TABLE resource (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    content       TEXT    NOT NULL,
    PRIMARY KEY (resource_type, id)
) STRICT;
CREATE INDEX resource_type_updated ON resource (resource_type, last_updated DESC, id);

-- Every version ever written, deletions included.
CREATE TABLE resource_history (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version_id    INTEGER NOT NULL,
    last_updated  INTEGER NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    content       TEXT    NOT NULL,
    PRIMARY KEY (resource_type, id, version_id)
) STRICT;
CREATE INDEX resource_history_type_updated ON resource_history (resource_type, last_updated DESC);

-- Search index, one table per value kind, rebuilt in the write's transaction.
-- String values are normalised (lower case, accents removed).
CREATE TABLE search_string (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    value         TEXT NOT NULL,
    exact         TEXT NOT NULL
) STRICT;
CREATE INDEX search_string_value ON search_string (resource_type, param, value, id);
CREATE INDEX search_string_exact ON search_string (resource_type, param, exact);

CREATE TABLE search_token (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    system        TEXT NOT NULL,
    code          TEXT NOT NULL
) STRICT;
CREATE INDEX search_token_code ON search_token (resource_type, param, code, system, id);
CREATE INDEX search_token_system ON search_token (resource_type, param, system);

CREATE TABLE search_date (
    resource_type TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    param         TEXT    NOT NULL,
    low           INTEGER NOT NULL,
    high          INTEGER NOT NULL
) STRICT;
CREATE INDEX search_date_low ON search_date (resource_type, param, low, high);

CREATE TABLE search_number (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    value         REAL NOT NULL,
    system        TEXT NOT NULL,
    code          TEXT NOT NULL
) STRICT;
CREATE INDEX search_number_value ON search_number (resource_type, param, value);

CREATE TABLE search_reference (
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    param         TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    target_id     TEXT NOT NULL
) STRICT;
CREATE INDEX search_reference_target ON search_reference (resource_type, param, target_id, target_type, id);

-- +goose Down
DROP TABLE search_reference;
DROP TABLE search_number;
DROP TABLE search_date;
DROP TABLE search_token;
DROP TABLE search_string;
DROP TABLE resource_history;
DROP TABLE resource;
