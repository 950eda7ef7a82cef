package server_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// slowStore makes every search of Observations slow: it waits until release is closed
// or its request ends, holding a connection of the pool meanwhile on PostgreSQL (on
// SQLite the pool's connections are out of reach, and the search holds none).
type slowStore struct {
	app.Store
	pg      bool
	release chan struct{}
	once    sync.Once
	holding atomic.Int32
}

// finish lets the slow searches go on.
func (s *slowStore) finish() { s.once.Do(func() { close(s.release) }) }

func (s *slowStore) PoolSize() int { return s.Store.(interface{ PoolSize() int }).PoolSize() }

func (s *slowStore) Search(ctx context.Context, q *resources.Query) (*resources.SearchResult, error) {
	if q.Type == "Observation" {
		if err := s.hold(ctx); err != nil {
			return nil, err
		}
	}
	return s.Store.Search(ctx, q)
}

// hold waits for finish or the end of ctx, holding a connection on PostgreSQL.
func (s *slowStore) hold(ctx context.Context) error {
	if s.pg {
		conn, err := s.Store.SQL().Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
	}
	s.holding.Add(1)
	defer s.holding.Add(-1)
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func withCallerShare(n int) envOption {
	return func(a *app.Config) { a.Server.CallerShare = n }
}

func withCallerWait(d time.Duration) envOption {
	return func(a *app.Config) { a.Server.CallerWait = d }
}

// One caller flooding the server with slow requests gets at most its share (half the
// database pool) in flight; the requests beyond wait a bounded time and are answered
// 429 with Retry-After, while another caller's reads and /health answer at once.
// Without the share, on PostgreSQL the flood takes every connection of the pool and
// the other caller waits as long as the flood lasts.
func TestCallerShare(t *testing.T) { forEachBackend(t, testCallerShare) }

func testCallerShare(t *testing.T) {
	slow := &slowStore{release: make(chan struct{})}
	const wait = 500 * time.Millisecond
	e := newStoreEnv(t, storeEnv{wrap: func(st app.Store) app.Store {
		slow.Store, slow.pg = st, backendOf(t) == testdb.Postgres
		return slow
	}}, withCallerWait(wait))
	e.must(201, put("/Client/flood", `{"secret":"flood-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/flood", "engine: allow\nlink: [{resourceType: Client, id: flood}]"))
	e.must(201, put("/Patient/p1", `{"resourceType":"Patient","name":[{"family":"Other"}]}`))
	e.must(200, as("flood", "flood-secret", get("/Patient/p1")))

	pool := slow.PoolSize()
	share := max(1, pool/2)
	flood := pool + 5 // more than the pool
	results := make(chan *resp, flood)
	var wg sync.WaitGroup
	start := time.Now()
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- e.do(as("flood", "flood-secret", get("/Observation?code=x")))
		}()
	}
	defer func() {
		slow.finish()
		wg.Wait()
	}()
	waitFor(t, 10*time.Second, "the flood to take its share", func() bool { return int(slow.holding.Load()) >= share })

	// Another caller is served meanwhile, and so is /health.
	for _, r := range []req{get("/Patient/p1"), get("/fhir/Patient?name=other"), {method: http.MethodGet, path: "/health", anonymous: true}} {
		t0 := time.Now()
		done := make(chan *resp, 1)
		go func() { done <- e.do(r) }()
		select {
		case out := <-done:
			took := time.Since(t0)
			if out.status != 200 || took > 2*time.Second {
				t.Errorf("%s %s during the flood: %d after %s", r.method, r.path, out.status, took)
			}
			t.Logf("%s %s during the flood: %d after %s", r.method, r.path, out.status, took.Round(time.Microsecond))
		case <-time.After(5 * time.Second):
			t.Errorf("%s %s during the flood: no answer within 5s", r.method, r.path)
		}
	}

	// The requests beyond the share are turned away once they have waited.
	for range flood - share {
		select {
		case out := <-results:
			if out.status != 429 || out.header.Get("Retry-After") != "1" || at(out.doc, "issue", 0, "code") != "throttled" {
				t.Fatalf("a request beyond the share: %d Retry-After %q %s", out.status, out.header.Get("Retry-After"), out.raw)
			}
		case <-time.After(wait + 10*time.Second):
			t.Fatalf("requests beyond the share of %d were not turned away", share)
		}
	}
	if took := time.Since(start); took < wait {
		t.Errorf("requests beyond the share were turned away after %s, before waiting %s", took, wait)
	}
	if n := int(slow.holding.Load()); n != share {
		t.Errorf("%d slow searches under way, want the share, %d", n, share)
	}
	t.Logf("pool %d, share %d: %d of %d flood requests answered 429 after waiting %s", pool, share, flood-share, flood, wait)

	// Those in flight finish as usual.
	slow.finish()
	for range share {
		if out := <-results; out.status != 200 {
			t.Errorf("a flood request within the share: %d %s", out.status, out.raw)
		}
	}
}
