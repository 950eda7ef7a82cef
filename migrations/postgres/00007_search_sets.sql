-- +goose Up
-- Stored result sets of stable paging (resources/resultset.go): the ordered ids of a
-- search's matches at its first page, read by position by its later pages. A set is
-- written once, read for minutes and then removed, and one lost in a crash only makes
-- its client repeat the search (410), so the tables are UNLOGGED: no WAL is written for
-- them, which keeps the first page of a long search as cheap as a read. (An unlogged
-- table is emptied after a crash and is not replicated to standbys.)
CREATE UNLOGGED TABLE search_set (
    set_key       text        PRIMARY KEY,
    resource_type text        NOT NULL,
    fingerprint   text        NOT NULL, -- the search's parameters and caller, hashed
    total         integer     NOT NULL, -- matches at the first page
    size          integer     NOT NULL, -- ids stored (fewer than total past the bound)
    expires       timestamptz NOT NULL
);
CREATE INDEX search_set_expires ON search_set (expires);

-- The ids of a set in chunks of 1,000 (resources.ResultSetChunk), joined by newlines:
-- chunk c holds positions [1000c, 1000c + 1000).
CREATE UNLOGGED TABLE search_set_ids (
    set_key text    NOT NULL,
    chunk   integer NOT NULL,
    ids     text    NOT NULL,
    PRIMARY KEY (set_key, chunk)
);

-- +goose Down
DROP TABLE search_set_ids;
DROP TABLE search_set;
