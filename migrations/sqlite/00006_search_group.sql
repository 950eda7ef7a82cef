-- +goose Up
-- The element a composite parameter's value came from (resources.ComponentParam): the
-- rows of one composite element share a group number (1, 2, …), so that
-- Observation?component-code-value-quantity=…$gt140 requires the code and the value
-- of the same component. Every other row keeps 0. A column with a constant default is
-- added without rewriting the table on either database.
ALTER TABLE search_string ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE search_token ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE search_date ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE search_number ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE search_reference ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE search_reference DROP COLUMN grp;
ALTER TABLE search_number DROP COLUMN grp;
ALTER TABLE search_date DROP COLUMN grp;
ALTER TABLE search_token DROP COLUMN grp;
ALTER TABLE search_string DROP COLUMN grp;
