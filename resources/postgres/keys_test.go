package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// Two processes starting at once on an empty database end up with one key, and both
// are told which.
func TestAddSigningKeyIfNoneConcurrent(t *testing.T) {
	ctx := context.Background()
	url := testdb.URL(t)
	const n = 8
	stores := make([]*Store, n)
	for i := range stores {
		s, err := Open(ctx, url, WithMaxConns(2))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	for round := range 5 {
		if _, err := stores[0].SQL().ExecContext(ctx, `DELETE FROM signing_key`); err != nil {
			t.Fatal(err)
		}
		results := make([][]signingkey.Key, n)
		errs := make([]error, n)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range n {
			wg.Go(func() {
				start.Wait()
				results[i], errs[i] = stores[i].AddSigningKeyIfNone(ctx, signingkey.Key{KID: fmt.Sprintf("kid-%d", i), PrivatePEM: []byte("pem")})
			})
		}
		start.Done()
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, process %d: %v", round, i, errs[i])
			}
			if len(results[i]) != 1 || results[i][0].KID != results[0][0].KID {
				t.Fatalf("round %d, process %d got %+v, process 0 %+v", round, i, results[i], results[0])
			}
		}
		keys, err := stores[0].SigningKeys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("round %d: stored %+v, %v; want exactly one key", round, keys, err)
		}
	}
}
