// Package migrations holds the versioned SQL migrations of every backend, embedded in the
// binary and applied at start by goose. A migration that has shipped is never edited: add
// a new file instead.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations under postgres/.
//
//go:embed postgres/*.sql
var Postgres embed.FS
