// Package signingkey holds the one type of a JWT signing key as the database keeps it.
// pkg/auth signs and verifies with it (auth.KeyStore); the stores read and write it
// (resources/sqlstore). It is a package of its own, importing nothing of fhirbox, so that
// neither side imports the other: pkg/auth imports the resource engine, and its tests
// open the stores.
package signingkey

import "time"

// Key is a stored signing key.
type Key struct {
	// KID is the RFC 7638 thumbprint of the public key; pkg/auth checks it against the
	// key when it loads it.
	KID string
	// PrivatePEM is the private key, PEM-encoded PKCS#8 (PKCS#1 is read too), or the
	// same encrypted by pkg/auth when FHIRBOX_KEY_ENCRYPTION_KEY is set.
	PrivatePEM []byte
	// Created orders the keys: the newest signs. A zero Created given to a store means
	// the time of the insert (PostgreSQL's now(), the process's clock on SQLite).
	Created time.Time
}
