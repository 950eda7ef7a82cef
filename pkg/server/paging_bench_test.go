package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// BenchmarkFirstPage measures the first page of searches with a few thousand matches,
// with stored result sets (the default: the page, the listing of up to 10,000 ids in
// place of the count, and the write of the set) and without (ttl off: the page and the
// count), on each backend. One request at a time.
func BenchmarkFirstPage(b *testing.B) { benchEachBackend(b, benchFirstPage) }

func benchFirstPage(b *testing.B) {
	const n = 3000
	for _, mode := range []struct {
		name string
		opts resources.ResultSetOptions
	}{{"sets", resources.ResultSetOptions{}}, {"offset", resources.ResultSetOptions{TTL: -1}}} {
		b.Run(mode.name, func(b *testing.B) {
			e := newEnv(b, withResultSets(mode.opts))
			var wg sync.WaitGroup
			work := make(chan int)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						gender := []string{"female", "male"}[i%2]
						e.must(201, put(fmt.Sprintf("/Patient/fp%05d", i), fmt.Sprintf(
							`{"resourceType":"Patient","name":[{"family":"Bench","given":["G%05d"]}],"gender":%q,"birthDate":"%d-%02d-01"}`,
							i, gender, 1930+i%80, 1+i%12)))
					}
				}()
			}
			for i := range n {
				work <- i
			}
			close(work)
			wg.Wait()
			if e.backend == testdb.Postgres {
				// As autovacuum would soon: without statistics the planner guesses.
				if _, err := e.store.SQL().Exec("ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			for _, q := range []string{
				"family=bench&_count=20",                 // 3,000 matches, newest first
				"gender=female&_count=20",                // 1,500
				"family=bench&_count=20&_sort=birthdate", // 3,000, sorted by an index value
				"family=bench&_count=20&_total=none",     // no count asked
			} {
				b.Run(strings.ReplaceAll(q, "&", ","), func(b *testing.B) {
					for range b.N {
						r := httptest.NewRequest(http.MethodGet, "/fhir/Patient?"+q, nil)
						r.SetBasicAuth(adminID, adminToken)
						w := httptest.NewRecorder()
						e.srv.ServeHTTP(w, r)
						if w.Code != 200 || !strings.Contains(w.Body.String(), `"next"`) {
							b.Fatalf("status %d %.300s", w.Code, w.Body)
						}
					}
				})
			}
		})
	}
}
