-- +goose Up
-- The full-text index of migrations/postgres/00005 in SQLite: an FTS5 table of the
-- words fhirbox cut and normalised (resources/fulltext.go), space-separated, which the
-- unicode61 tokenizer finds again as they are (remove_diacritics 0: already removed).
-- It is contentless (the words are only searched, never read back), with
-- contentless_delete so that a resource's row can be replaced. search_text_key gives each
-- resource that has text its row of search_text (docid = the FTS5 rowid): an INTEGER
-- PRIMARY KEY, which VACUUM keeps, unlike the implicit rowids of resource.
CREATE TABLE search_text_key (
    docid         INTEGER PRIMARY KEY,
    resource_type TEXT NOT NULL,
    id            TEXT NOT NULL
) STRICT;
CREATE INDEX search_text_key_res ON search_text_key (resource_type, id);
CREATE VIRTUAL TABLE search_text USING fts5(
    narrative, content,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0'
);

-- +goose Down
DROP TABLE search_text;
DROP TABLE search_text_key;
