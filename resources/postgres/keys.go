package postgres

import (
	"context"

	"gorm.io/gorm"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
)

// signingKeyLock is the pg_advisory_xact_lock key under which AddSigningKeyIfNone
// checks and inserts: without it, two processes starting on an empty table would both
// see no key and insert one each. ("fhirboxk" in ASCII.)
const signingKeyLock int64 = 0x66686972626f786b

// SigningKeys returns every stored signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]signingkey.Key, error) {
	return dialect.SigningKeys(ctx, s.gdb)
}

// AddSigningKeyIfNone stores k unless a key exists already, atomically across processes
// (two servers starting at once on an empty database end up with one key). It returns
// the keys stored afterwards, oldest first. A zero k.Created is the database's now().
func (s *Store) AddSigningKeyIfNone(ctx context.Context, k signingkey.Key) ([]signingkey.Key, error) {
	var created any = gorm.Expr("now()")
	if !k.Created.IsZero() {
		created = k.Created
	}
	// The lock is held until commit. Under READ COMMITTED each statement that follows
	// takes its snapshot after the lock is granted, so the check sees a key that the
	// previous holder committed.
	lock := func(tx *gorm.DB) error {
		return tx.Exec(`SELECT pg_advisory_xact_lock(?)`, signingKeyLock).Error
	}
	return dialect.AddSigningKeyIfNone(ctx, s.gdb, k, created, lock)
}

// ReplaceSigningKeyPEM sets the private key of kid to new if it is still old (an
// encrypted copy of it, say), and reports whether it did.
func (s *Store) ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error) {
	return dialect.ReplaceSigningKeyPEM(ctx, s.gdb, kid, old, new)
}
