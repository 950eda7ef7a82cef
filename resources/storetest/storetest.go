// Package storetest is the test suite that every resources.Store of fhirbox passes, the
// PostgreSQL one and the SQLite one alike: each store's tests call Run with a Backend
// that opens it. What the suite checks is the contract of resources.Store and of the
// signing-key table, as the engine and the server rely on it; what only one database
// does (connecting, locking, planning) stays in that store's own tests.
package storetest

import (
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Store is a store under test. Its SQL pool takes checks in plain SQL ($n placeholders,
// the tables of migrations/).
type Store = sqlstore.Store

// Backend opens stores of one kind.
type Backend struct {
	// Open returns a store on a fresh, empty database, closed when t ends.
	Open func(t testing.TB) Store
	// Time converts an instant into the value the database stores, for rows the suite
	// inserts in plain SQL.
	Time func(time.Time) any
	// RefuseIndexValue makes the database of s refuse, from now on, any string index
	// row whose value is v and any token index row whose code is v, so that the suite
	// can make a write fail after its resource row was written.
	RefuseIndexValue func(t testing.TB, s Store, v string)
}

// Run runs the whole suite, each test as a parallel subtest on a store of its own.
func Run(t *testing.T, be Backend) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *Backend)
	}{
		{"WriteReadVRead", testWriteReadVRead},
		{"DeleteThenRead", testDeleteThenRead},
		{"WriteReplacesIndex", testWriteReplacesIndex},
		{"WriteErrorRollsBack", testWriteErrorRollsBack},
		{"WriteCanceled", testWriteCanceled},
		{"ConcurrentWrites", testConcurrentWrites},
		{"History", testHistory},
		{"Ping", testPing},
		{"SearchFilters", testSearchFilters},
		{"SearchOtherType", testSearchOtherType},
		{"SearchSort", testSearchSort},
		{"SearchPaging", testSearchPaging},
		{"SearchPagingTies", testSearchPagingTies},
		{"SearchUnsupportedModifier", testSearchUnsupportedModifier},
		{"SearchValuesAreNotSQL", testSearchValuesAreNotSQL},
		{"SearchComposite", testSearchComposite},
		{"SearchChain", testSearchChain},
		{"SearchConfined", testSearchConfined},
		{"Include", testInclude},
		{"SigningKeysEmpty", testSigningKeysEmpty},
		{"AddSigningKeyIfNone", testAddSigningKeyIfNone},
		{"AddSigningKeyIfNoneClock", testAddSigningKeyIfNoneClock},
		{"AddSigningKeyIfNoneConcurrent", testAddSigningKeyIfNoneConcurrent},
		{"SigningKeysOrder", testSigningKeysOrder},
		{"ReplaceSigningKeyPEM", testReplaceSigningKeyPEM},
		{"Purge", testPurge},
		{"PurgeLimit", testPurgeLimit},
		{"SearchIDs", testSearchIDs},
		{"ResultSets", testResultSets},
		{"FullText", testFullText},
		{"RewriteIndex", testRewriteIndex},
		{"RewriteIndexConcurrentWrite", testRewriteIndexConcurrentWrite},
		{"Transaction", testTransaction},
		{"TransactionManyCreates", testTransactionManyCreates},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, &be)
		})
	}
}
