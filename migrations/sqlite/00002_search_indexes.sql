-- +goose Up
-- The indexes of migrations/postgres/00002: probe indexes that answer "the values of
-- parameter p of resource r" from the index alone (the sort subqueries and the checks
-- of resources found through another clause), and serve the writes' DELETEs; the upper
-- end of date ranges; the live resources of a type, for the totals.
CREATE INDEX search_string_probe ON search_string (resource_type, id, param, value);
CREATE INDEX search_token_probe ON search_token (resource_type, id, param, code, system);
CREATE INDEX search_date_probe ON search_date (resource_type, id, param, low, high);
CREATE INDEX search_number_probe ON search_number (resource_type, id, param, value);
CREATE INDEX search_reference_probe ON search_reference (resource_type, id, param, target_id, target_type);
CREATE INDEX search_date_high ON search_date (resource_type, param, high);
CREATE INDEX resource_live ON resource (resource_type, id) WHERE NOT deleted;

-- +goose Down
DROP INDEX resource_live;
DROP INDEX search_date_high;
DROP INDEX search_reference_probe;
DROP INDEX search_number_probe;
DROP INDEX search_date_probe;
DROP INDEX search_token_probe;
DROP INDEX search_string_probe;
