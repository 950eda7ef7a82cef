-- +goose Up
-- :exact is searched through search_string_value (the normalised value, then the exact
-- one among its few rows), so this index only cost every write one more entry per string
-- row: the most numerous index rows (22 for a Synthea Patient with every R4 parameter).
DROP INDEX search_string_exact;

-- +goose Down
CREATE INDEX search_string_exact ON search_string (resource_type, param, exact);
