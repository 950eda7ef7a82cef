-- +goose Up
-- The login of the role that sql AccessPolicies run as (see resources/postgres
-- policyrole.go): one row per database name, so that every fhirbox instance on the
-- database logs in with the same password. Only the application's role can read it: the
-- policy role is granted nothing here.
CREATE TABLE policy_role (
    name     text PRIMARY KEY,
    password text NOT NULL
);

-- +goose Down
DROP TABLE policy_role;
