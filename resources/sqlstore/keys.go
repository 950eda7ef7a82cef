package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// SigningKey is a stored JWT signing key. It mirrors auth.StoredKey, which the stores do
// not import (pkg/auth imports resources); the wiring converts between the two.
type SigningKey struct {
	// KID is the key's RFC 7638 thumbprint, checked by pkg/auth when it loads the key.
	KID string
	// PrivatePEM is the PEM-encoded private key.
	PrivatePEM []byte
	// Created orders the keys: the newest signs. Zero means the time of the insert.
	Created time.Time
}

// SigningKeysSQL lists the stored keys, oldest first.
const SigningKeysSQL = `SELECT kid, private_pem, created_at FROM signing_key ORDER BY created_at, kid`

// SigningKeys returns every stored signing key with db, oldest first.
func (d *Dialect) SigningKeys(ctx context.Context, db Querier) ([]SigningKey, error) {
	rows, err := db.QueryContext(ctx, SigningKeysSQL)
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	defer rows.Close()
	var keys []SigningKey
	for rows.Next() {
		var k SigningKey
		var pem string
		if err := rows.Scan(&k.KID, &pem, d.timeDest(&k.Created)); err != nil {
			return nil, d.Translate(ctx, err)
		}
		k.PrivatePEM = []byte(pem)
		k.Created = k.Created.UTC()
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return keys, nil
}

// AddSigningKeyIfNone stores k unless a key exists already, in one transaction of db,
// and returns the keys stored afterwards, oldest first. The transaction runs lock (if
// any), which keeps concurrent callers from both finding no key, then insert with k's
// kid, private key and created, the value bound for created_at.
func (d *Dialect) AddSigningKeyIfNone(ctx context.Context, db *sql.DB, k SigningKey, created any,
	lock func(*sql.Tx) error, insert string) ([]SigningKey, error) {
	if k.KID == "" || len(k.PrivatePEM) == 0 {
		return nil, errors.New(d.Name + ": a signing key needs a kid and a private key")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	defer tx.Rollback()
	if lock != nil {
		if err := lock(tx); err != nil {
			return nil, d.Translate(ctx, err)
		}
	}
	if _, err := tx.ExecContext(ctx, insert, k.KID, string(k.PrivatePEM), created); err != nil {
		return nil, d.Translate(ctx, err)
	}
	keys, err := d.SigningKeys(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return keys, nil
}

// ReplaceSigningKeyPEMSQL swaps a key's stored private key, if it is still the one the
// caller read.
const ReplaceSigningKeyPEMSQL = `UPDATE signing_key SET private_pem = $3 WHERE kid = $1 AND private_pem = $2`

// ReplaceSigningKeyPEM sets the private key of kid to new where it is still old, with
// db, and reports whether a row changed. Comparing with old makes it safe for
// instances that start together and each encrypt the same plaintext key: one wins, the
// others change nothing and read the winner's value.
func (d *Dialect) ReplaceSigningKeyPEM(ctx context.Context, db *sql.DB, kid string, old, new []byte) (bool, error) {
	if len(new) == 0 {
		return false, errors.New(d.Name + ": a signing key needs a private key")
	}
	res, err := db.ExecContext(ctx, ReplaceSigningKeyPEMSQL, kid, string(old), string(new))
	if err != nil {
		return false, d.Translate(ctx, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, d.Translate(ctx, err)
	}
	return n == 1, nil
}
