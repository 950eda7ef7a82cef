package postgres

import (
	"context"
	"database/sql"

	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// SigningKey is a stored JWT signing key, the same type in both stores. A zero Created
// means the database's now().
type SigningKey = sqlstore.SigningKey

// signingKeyLock is the pg_advisory_xact_lock key under which AddSigningKeyIfNone
// checks and inserts: without it, two processes starting on an empty table would both
// see no key and insert one each. ("fhirboxk" in ASCII.)
const signingKeyLock int64 = 0x66686972626f786b

const addSigningKeySQL = `INSERT INTO signing_key (kid, private_pem, created_at)
SELECT $1, $2, COALESCE($3::timestamptz, now())
WHERE NOT EXISTS (SELECT 1 FROM signing_key)`

// SigningKeys returns every stored signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return dialect.SigningKeys(ctx, s.sql)
}

// AddSigningKeyIfNone stores k unless a key exists already, atomically across processes
// (two servers starting at once on an empty database end up with one key). It returns
// the keys stored afterwards, oldest first.
func (s *Store) AddSigningKeyIfNone(ctx context.Context, k SigningKey) ([]SigningKey, error) {
	var created any
	if !k.Created.IsZero() {
		created = k.Created
	}
	// The lock is held until commit. Under READ COMMITTED the INSERT that follows takes
	// its snapshot after the lock is granted, so it sees a key that the previous holder
	// committed.
	lock := func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeyLock)
		return err
	}
	return dialect.AddSigningKeyIfNone(ctx, s.sql, k, created, lock, addSigningKeySQL)
}

// ReplaceSigningKeyPEM sets the private key of kid to new if it is still old (an
// encrypted copy of it, say), and reports whether it did.
func (s *Store) ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error) {
	return dialect.ReplaceSigningKeyPEM(ctx, s.sql, kid, old, new)
}
