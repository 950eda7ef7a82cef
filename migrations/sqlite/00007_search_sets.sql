-- +goose Up
-- Stored result sets of stable paging (see migrations/postgres/00007). expires is in
-- microseconds since the Unix epoch, UTC.
CREATE TABLE search_set (
    set_key       TEXT    PRIMARY KEY,
    resource_type TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    total         INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    expires       INTEGER NOT NULL
) STRICT;
CREATE INDEX search_set_expires ON search_set (expires);

CREATE TABLE search_set_ids (
    set_key TEXT    NOT NULL,
    chunk   INTEGER NOT NULL,
    ids     TEXT    NOT NULL,
    PRIMARY KEY (set_key, chunk)
) STRICT;

-- +goose Down
DROP TABLE search_set_ids;
DROP TABLE search_set;
