-- +goose Up
-- JWT signing keys (see migrations/postgres/00003). created_at is in microseconds since
-- the Unix epoch, UTC; the store fills it when the caller gives none.
CREATE TABLE signing_key (
    kid         TEXT    PRIMARY KEY,
    private_pem TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE signing_key;
