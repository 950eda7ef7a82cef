-- +goose Up
-- JWT signing keys, shared by every server process on the database so that a token
-- signed by one verifies on all. kid is the RFC 7638 thumbprint of the public key;
-- private_pem the PKCS#8 private key. The newest key signs; older ones still verify
-- until they are deleted.
CREATE TABLE signing_key (
    kid         text        PRIMARY KEY,
    private_pem text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE signing_key;
