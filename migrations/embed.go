// Package migrations holds the versioned SQL migrations of every backend, embedded in the
// binary and applied at start by goose. A migration that has shipped is never edited: add
// a new file instead, to both directories, under the same number, so that one schema
// version means the same tables on either backend.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations under postgres/.
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations under sqlite/.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
