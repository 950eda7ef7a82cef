// Package policyrole names the PostgreSQL role that sql AccessPolicies run as. It stands
// alone so that pkg/testdb, which the store's tests import, can drop the role of each
// test database without importing the store.
package policyrole

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// Schema holds the views that policy queries read (resource and resource_history
// without secret fields): the role's search_path and the only schema it may use.
const Schema = "fhirbox_policy"

// suffix ends every policy role's name.
const suffix = "_policy"

// maxName is PostgreSQL's NAMEDATALEN - 1: longer identifiers are truncated, and two
// databases could then share a role.
const maxName = 63

// Name returns the policy role of database: database + "_policy", or, when that is
// longer than PostgreSQL allows, a prefix of database, 8 bytes of its SHA-256 in hex and
// "_policy". Roles are cluster-wide, so each database gets its own.
func Name(database string) string {
	if len(database)+len(suffix) <= maxName {
		return database + suffix
	}
	sum := sha256.Sum256([]byte(database))
	tag := "_" + hex.EncodeToString(sum[:8])
	keep := maxName - len(suffix) - len(tag)
	for keep > 0 && !utf8.RuneStart(database[keep]) {
		keep-- // never cut a character in half
	}
	return database[:keep] + tag + suffix
}
