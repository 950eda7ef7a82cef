package sqlite

import (
	"context"
	"time"

	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// SigningKey is a stored JWT signing key, the same type in both stores. A zero Created
// means the time of the insert.
type SigningKey = sqlstore.SigningKey

const addSigningKeySQL = `INSERT INTO signing_key (kid, private_pem, created_at)
SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM signing_key)`

// SigningKeys returns every stored signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return dialect.SigningKeys(ctx, s.read)
}

// AddSigningKeyIfNone stores k unless a key exists already, atomically (the check and
// the insert are one statement, in a write transaction). It returns the keys stored
// afterwards, oldest first.
func (s *Store) AddSigningKeyIfNone(ctx context.Context, k SigningKey) ([]SigningKey, error) {
	created := k.Created
	if created.IsZero() {
		created = time.Now()
	}
	return dialect.AddSigningKeyIfNone(ctx, s.write, k, created.UnixMicro(), nil, addSigningKeySQL)
}

// ReplaceSigningKeyPEM sets the private key of kid to new if it is still old (an
// encrypted copy of it, say), and reports whether it did.
func (s *Store) ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error) {
	return dialect.ReplaceSigningKeyPEM(ctx, s.write, kid, old, new)
}
