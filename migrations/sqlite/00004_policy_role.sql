-- +goose Up
-- Nothing: the policy role's login (migrations/postgres/00004) exists on PostgreSQL only,
-- since SQLite has no sql policies. The file keeps the two directories' numbers in step.
SELECT 1;

-- +goose Down
SELECT 1;
