-- +goose Up
-- Current version of every resource. content is the full JSON document (with meta);
-- a deleted resource keeps its last content with deleted = true.
CREATE TABLE resource (
    resource_type text        NOT NULL,
    id            text        NOT NULL,
    version_id    bigint      NOT NULL,
    last_updated  timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    content       jsonb       NOT NULL,
    PRIMARY KEY (resource_type, id)
);
CREATE INDEX resource_type_updated ON resource (resource_type, last_updated DESC, id);

-- Every version ever written, deletions included.
CREATE TABLE resource_history (
    resource_type text        NOT NULL,
    id            text        NOT NULL,
    version_id    bigint      NOT NULL,
    last_updated  timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    content       jsonb       NOT NULL,
    PRIMARY KEY (resource_type, id, version_id)
);
CREATE INDEX resource_history_type_updated ON resource_history (resource_type, last_updated DESC);

-- Search index, one table per value kind, rebuilt in the write's transaction.
-- String values are normalised (lower case, accents removed); COLLATE "C" lets LIKE
-- 'prefix%' use the b-tree index.
CREATE TABLE search_string (
    resource_type text NOT NULL,
    id            text NOT NULL,
    param         text NOT NULL,
    value         text COLLATE "C" NOT NULL,
    exact         text COLLATE "C" NOT NULL
);
CREATE INDEX search_string_value ON search_string (resource_type, param, value, id);
CREATE INDEX search_string_exact ON search_string (resource_type, param, exact);
CREATE INDEX search_string_res ON search_string (resource_type, id);

CREATE TABLE search_token (
    resource_type text NOT NULL,
    id            text NOT NULL,
    param         text NOT NULL,
    system        text COLLATE "C" NOT NULL,
    code          text COLLATE "C" NOT NULL
);
CREATE INDEX search_token_code ON search_token (resource_type, param, code, system, id);
CREATE INDEX search_token_system ON search_token (resource_type, param, system);
CREATE INDEX search_token_res ON search_token (resource_type, id);

CREATE TABLE search_date (
    resource_type text        NOT NULL,
    id            text        NOT NULL,
    param         text        NOT NULL,
    low           timestamptz NOT NULL,
    high          timestamptz NOT NULL
);
CREATE INDEX search_date_low ON search_date (resource_type, param, low, high);
CREATE INDEX search_date_res ON search_date (resource_type, id);

CREATE TABLE search_number (
    resource_type text             NOT NULL,
    id            text             NOT NULL,
    param         text             NOT NULL,
    value         double precision NOT NULL,
    system        text COLLATE "C" NOT NULL,
    code          text COLLATE "C" NOT NULL
);
CREATE INDEX search_number_value ON search_number (resource_type, param, value);
CREATE INDEX search_number_res ON search_number (resource_type, id);

CREATE TABLE search_reference (
    resource_type text NOT NULL,
    id            text NOT NULL,
    param         text NOT NULL,
    target_type   text COLLATE "C" NOT NULL,
    target_id     text COLLATE "C" NOT NULL
);
CREATE INDEX search_reference_target ON search_reference (resource_type, param, target_id, target_type, id);
CREATE INDEX search_reference_res ON search_reference (resource_type, id);

-- +goose Down
DROP TABLE search_reference;
DROP TABLE search_number;
DROP TABLE search_date;
DROP TABLE search_token;
DROP TABLE search_string;
DROP TABLE resource_history;
DROP TABLE resource;
