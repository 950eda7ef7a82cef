package sqlite

import (
	"context"
	"time"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
)

// SigningKeys returns every stored signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]signingkey.Key, error) {
	return dialect.SigningKeys(ctx, s.gread)
}

// AddSigningKeyIfNone stores k unless a key exists already, atomically (the check and
// the insert are one write transaction, which takes the write lock as it begins). It
// returns the keys stored afterwards, oldest first. A zero k.Created is the time of the
// insert.
func (s *Store) AddSigningKeyIfNone(ctx context.Context, k signingkey.Key) ([]signingkey.Key, error) {
	created := k.Created
	if created.IsZero() {
		created = time.Now()
	}
	return dialect.AddSigningKeyIfNone(ctx, s.gwrite, k, micros(created), nil)
}

// ReplaceSigningKeyPEM sets the private key of kid to new if it is still old (an
// encrypted copy of it, say), and reports whether it did.
func (s *Store) ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error) {
	return dialect.ReplaceSigningKeyPEM(ctx, s.gwrite, kid, old, new)
}
