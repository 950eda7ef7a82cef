package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// lockResources takes an ACCESS EXCLUSIVE lock on the resource table from a connection
// of its own, so that every statement of the server that touches it waits: a slow
// statement on demand. The returned function releases the lock.
func lockResources(t *testing.T, dbURL string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE resource IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			tx.Rollback()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// waitingBackends counts fhirbox's backends on the database of dbURL that are running a
// statement: those that wait for a lock, and all of them.
func waitingBackends(t *testing.T, dbURL string) (locked, active int) {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'fhirbox' AND state = 'active'`).Scan(&locked, &active)
	if err != nil {
		t.Fatal(err)
	}
	return locked, active
}

// A statement that runs past the statement timeout is stopped by the database and
// answered 503 with an OperationOutcome that says so (issue type timeout), on reads,
// searches and writes alike, and on the token endpoint as RFC 6749's
// temporarily_unavailable; the server goes on serving once the cause is gone. The slow
// statement is made by holding a lock on the resource table.
func TestStatementTimeout(t *testing.T) {
	t.Run(string(testdb.Postgres), func(t *testing.T) {
		dbURL := testdb.URL(t)
		const timeout = 300 * time.Millisecond
		e := newStoreEnv(t, storeEnv{url: dbURL, sopts: []app.StoreOption{app.WithStatementTimeout(timeout)}})
		setupMyapp(t, e)
		e.must(201, put("/Patient/p1", `{"resourceType":"Patient"}`))
		e.must(200, get("/Patient/p1")) // the root client's secret is remembered from here on
		cc := url.Values{"grant_type": {"client_credentials"}}
		checkTokenResponse(t, token(e, cc, "Authorization", basicAuth("myapp", "verysecret")))

		unlock := lockResources(t, dbURL)
		for _, r := range []req{get("/Patient/p1"), get("/fhir/Patient?name=x"), put("/Patient/p1", `{"resourceType":"Patient","active":true}`)} {
			start := time.Now()
			out := e.must(503, r)
			took := time.Since(start)
			if at(out.doc, "issue", 0, "code") != "timeout" || !strings.Contains(outcomeText(t, out), "statement timeout") {
				t.Errorf("%s %s: %s", r.method, r.path, out.raw)
			}
			if took < timeout || took > timeout+5*time.Second {
				t.Errorf("%s %s answered after %s, with a statement timeout of %s", r.method, r.path, took, timeout)
			}
			t.Logf("%s %s: 503 after %s", r.method, r.path, took.Round(time.Millisecond))
		}
		out := token(e, cc, "Authorization", basicAuth("myapp", "verysecret"))
		if out.status != 503 || at(out.doc, "error") != "temporarily_unavailable" {
			t.Errorf("token endpoint during a statement timeout: %d %s", out.status, out.raw)
		}
		if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
			t.Errorf("a statement timeout logged as an error:\n%s", e.logs)
		}
		unlock()
		e.must(200, get("/Patient/p1"))
		e.must(200, put("/Patient/p1", `{"resourceType":"Patient","active":true}`))
	})
}

// When the client goes away, PostgreSQL stops the statement that its request was
// running: the backend is gone from pg_stat_activity within a bound, instead of waiting
// on (for its lock, here) or running to its end.
func TestClientGoneCancelsTheStatement(t *testing.T) {
	t.Run(string(testdb.Postgres), func(t *testing.T) {
		dbURL := testdb.URL(t)
		e := newStoreEnv(t, storeEnv{url: dbURL})
		e.must(201, put("/Patient/p1", `{"resourceType":"Patient","name":[{"family":"Slow"}]}`))
		e.must(200, get("/Patient?name=slow"))
		ts := httptest.NewServer(e.srv)
		defer ts.Close()

		for _, path := range []string{"/Patient?name=slow", "/Patient/p1"} {
			unlock := lockResources(t, dbURL)
			ctx, cancel := context.WithCancel(context.Background())
			hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
			hr.SetBasicAuth(adminID, adminToken)
			done := make(chan error, 1)
			go func() {
				res, err := http.DefaultClient.Do(hr)
				if err == nil {
					res.Body.Close()
					err = errors.New("answered " + res.Status)
				}
				done <- err
			}()
			waitFor(t, 10*time.Second, "the request's statement waiting for the lock", func() bool {
				locked, _ := waitingBackends(t, dbURL)
				return locked == 1
			})
			cancel() // the client goes away
			gone := time.Now()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("GET %s: %v", path, err)
			}
			waitFor(t, 5*time.Second, "the statement to be cancelled", func() bool {
				_, active := waitingBackends(t, dbURL)
				return active == 0
			})
			t.Logf("GET %s: the backend's statement ended %s after the client left", path, time.Since(gone).Round(time.Millisecond))
			unlock()
		}
		e.must(200, get("/Patient/p1"))
		if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
			t.Errorf("a request whose client went away logged an error:\n%s", e.logs)
		}
	})
}

// waitFor polls cond until it holds, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proxy is a TCP proxy between fhirbox and PostgreSQL that a test cuts and restores.
// Cut, it closes the connections under way and every new one at once, counting them:
// the server is reachable but answers nothing, as PostgreSQL does while it restarts.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]bool
	refused atomic.Int64 // connections refused while cut
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			p.refused.Add(1)
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// setCut cuts (closing every connection under way) or restores the proxy.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// While PostgreSQL cannot be reached, the API answers 503 with Retry-After and an
// OperationOutcome of issue type transient, the token endpoint 503
// temporarily_unavailable with Retry-After; the outage is logged once when it starts
// and once when it ends, not per request; connection attempts back off; and once
// PostgreSQL is back the server serves again without a restart.
func TestDatabaseOutage(t *testing.T) {
	t.Run(string(testdb.Postgres), func(t *testing.T) {
		dbURL := testdb.URL(t)
		u, _ := url.Parse(dbURL)
		px := newProxy(t, u.Host)
		u.Host = px.ln.Addr().String()
		e := newStoreEnv(t, storeEnv{url: u.String()})
		feedCtx, stopFeed := context.WithCancel(context.Background())
		defer stopFeed()
		go e.app.Listen(feedCtx)
		setupMyapp(t, e)
		e.must(201, put("/Patient/p1", `{"resourceType":"Patient"}`))
		e.must(200, get("/Patient/p1"))
		cc := url.Values{"grant_type": {"client_credentials"}}
		checkTokenResponse(t, token(e, cc, "Authorization", basicAuth("myapp", "verysecret")))
		logsBefore := e.logs.Len()

		const outage = 3 * time.Second
		px.setCut(true)
		cutAt := time.Now()
		var first503 time.Duration
		requests := 0
		for time.Since(cutAt) < outage {
			api := e.do(get("/Patient/p1"))
			tok := token(e, cc, "Authorization", basicAuth("myapp", "verysecret"))
			requests += 2
			if api.status != 503 || at(api.doc, "issue", 0, "code") != "transient" || api.header.Get("Retry-After") == "" {
				t.Fatalf("GET /Patient/p1 while PostgreSQL is cut off: %d Retry-After %q %s", api.status, api.header.Get("Retry-After"), api.raw)
			}
			if n, err := strconv.Atoi(api.header.Get("Retry-After")); err != nil || n < 1 || n > 5 {
				t.Errorf("Retry-After %q", api.header.Get("Retry-After"))
			}
			if tok.status != 503 || at(tok.doc, "error") != "temporarily_unavailable" || tok.header.Get("Retry-After") == "" {
				t.Fatalf("token endpoint while PostgreSQL is cut off: %d Retry-After %q %s", tok.status, tok.header.Get("Retry-After"), tok.raw)
			}
			if first503 == 0 {
				first503 = time.Since(cutAt)
			}
			time.Sleep(2 * time.Millisecond)
		}
		e.must(503, req{method: http.MethodGet, path: "/health", anonymous: true})
		dials := px.refused.Load()

		px.setCut(false)
		restoredAt := time.Now()
		waitFor(t, 15*time.Second, "the server to serve again", func() bool { return e.do(get("/Patient/p1")).status == 200 })
		recovered := time.Since(restoredAt)
		checkTokenResponse(t, token(e, cc, "Authorization", basicAuth("myapp", "verysecret")))
		e.must(200, req{method: http.MethodGet, path: "/health", anonymous: true})

		var errorLines, otherLines, accessLines int
		var msgs []string
		for _, line := range strings.Split(strings.TrimSpace(e.logs.String()[logsBefore:]), "\n") {
			var l struct{ Level, Msg string }
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if l.Level == "ERROR" {
				errorLines++
			}
			if l.Msg == "request" {
				accessLines++
			} else {
				otherLines++
				msgs = append(msgs, l.Level+" "+l.Msg)
			}
		}
		t.Logf("outage of %s: %d requests, first 503 after %s, %d connection attempts, %d ERROR lines, %d lines besides the %d access lines (%v); served again %s after the restore",
			outage, requests, first503.Round(time.Millisecond), dials, errorLines, otherLines, accessLines, msgs, recovered.Round(time.Millisecond))
		if errorLines != 1 || otherLines > 3 {
			t.Errorf("the outage logged %d ERROR lines and %d lines besides the access log: %v", errorLines, otherLines, msgs)
		}
		if !strings.Contains(e.logs.String(), "database unreachable") || !strings.Contains(e.logs.String(), "database reachable again") {
			t.Errorf("the outage's start or end is not logged: %v", msgs)
		}
		// Without back-off every request dialled; with it, some ten attempts in 3 s
		// (0.1 s doubling to 5 s), however many requests came.
		if dials > 20 {
			t.Errorf("%d connection attempts for %d requests in %s", dials, requests, outage)
		}
		if first503 > time.Second {
			t.Errorf("the first 503 came %s after the cut", first503)
		}
	})
}
