package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// SigningKey is a stored JWT signing key. It mirrors auth.StoredKey, which this package
// does not import (pkg/auth imports resources); the wiring converts between the two.
type SigningKey struct {
	// KID is the key's RFC 7638 thumbprint, checked by pkg/auth when it loads the key.
	KID string
	// PrivatePEM is the PEM-encoded private key.
	PrivatePEM []byte
	// Created orders the keys: the newest signs. Zero means the database's now().
	Created time.Time
}

// signingKeyLock is the pg_advisory_xact_lock key under which AddSigningKeyIfNone
// checks and inserts: without it, two processes starting on an empty table would both
// see no key and insert one each. ("fhirboxk" in ASCII.)
const signingKeyLock int64 = 0x66686972626f786b

const signingKeysSQL = `SELECT kid, private_pem, created_at FROM signing_key ORDER BY created_at, kid`

const addSigningKeySQL = `INSERT INTO signing_key (kid, private_pem, created_at)
SELECT $1, $2, COALESCE($3::timestamptz, now())
WHERE NOT EXISTS (SELECT 1 FROM signing_key)`

// SigningKeys returns every stored signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return listSigningKeys(ctx, s.sql)
}

// AddSigningKeyIfNone stores k unless a key exists already, atomically across processes
// (two servers starting at once on an empty database end up with one key). It returns
// the keys stored afterwards, oldest first.
func (s *Store) AddSigningKeyIfNone(ctx context.Context, k SigningKey) ([]SigningKey, error) {
	if k.KID == "" || len(k.PrivatePEM) == 0 {
		return nil, errors.New("postgres: a signing key needs a kid and a private key")
	}
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, translate(ctx, err)
	}
	defer tx.Rollback()
	// The lock is held until commit. Under READ COMMITTED the INSERT that follows takes
	// its snapshot after the lock is granted, so it sees a key that the previous holder
	// committed.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeyLock); err != nil {
		return nil, translate(ctx, err)
	}
	var created any
	if !k.Created.IsZero() {
		created = k.Created
	}
	if _, err := tx.ExecContext(ctx, addSigningKeySQL, k.KID, string(k.PrivatePEM), created); err != nil {
		return nil, translate(ctx, err)
	}
	keys, err := listSigningKeys(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, translate(ctx, err)
	}
	return keys, nil
}

type signingKeyQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func listSigningKeys(ctx context.Context, q signingKeyQuerier) ([]SigningKey, error) {
	rows, err := q.QueryContext(ctx, signingKeysSQL)
	if err != nil {
		return nil, translate(ctx, err)
	}
	defer rows.Close()
	var keys []SigningKey
	for rows.Next() {
		var k SigningKey
		var pem string
		if err := rows.Scan(&k.KID, &pem, &k.Created); err != nil {
			return nil, translate(ctx, err)
		}
		k.PrivatePEM = []byte(pem)
		k.Created = k.Created.UTC()
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(ctx, err)
	}
	return keys, nil
}
