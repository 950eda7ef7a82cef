package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

const (
	testBase   = "http://fhirbox.test"
	adminID    = "root"
	adminToken = "s3cret-for-tests"
)

// env is one server on its own fresh database, driven through the real router
// (httptest, no network).
type env struct {
	t       testing.TB
	backend testdb.Backend
	srv     *server.Server
	app     *app.App
	svc     *resources.Service
	store   app.Store
	logs    *bytes.Buffer
}

// forEachBackend runs test once on each backend (testdb.Backends), as parallel subtests
// named after them; newEnv inside test opens the subtest's backend. Every scenario of
// this package runs this way: what passes on PostgreSQL must pass on SQLite.
func forEachBackend(t *testing.T, test func(t *testing.T)) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			test(t)
		})
	}
}

// benchEachBackend is forEachBackend for benchmarks.
func benchEachBackend(b *testing.B, bench func(b *testing.B)) {
	for _, be := range testdb.Backends() {
		b.Run(string(be), bench)
	}
}

// backendOf returns the backend of the forEachBackend subtest that t is, or is inside.
func backendOf(t testing.TB) testdb.Backend {
	t.Helper()
	if parts := strings.Split(t.Name(), "/"); len(parts) > 1 {
		for _, b := range testdb.Backends() {
			if parts[1] == string(b) {
				return b
			}
		}
	}
	t.Fatalf("%s: newEnv runs under forEachBackend, which names the backend", t.Name())
	return ""
}

// postgresOnly skips t on every backend but PostgreSQL, saying why.
func (e *env) postgresOnly(t testing.TB, why string) {
	t.Helper()
	if e.backend != testdb.Postgres {
		t.Skipf("on PostgreSQL only: %s", why)
	}
}

type envOption func(*app.Config)

func withMaxBody(n int64) envOption { return func(c *app.Config) { c.Server.MaxBodyBytes = n } }

// newEnv starts a server on a fresh database of the backend that t runs on (see
// forEachBackend).
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newStoreEnv(t, storeEnv{}, opts...)
}

// storeEnv says how newStoreEnv opens and wraps the store.
type storeEnv struct {
	url   string                    // the database (default: a fresh one of the backend)
	sopts []app.StoreOption         // options of app.OpenStore
	wrap  func(app.Store) app.Store // wraps the opened store (nil: none)
}

// newStoreEnv is newEnv with a say in how the store is opened; the store logs to the
// env's log, as the server does.
func newStoreEnv(t testing.TB, se storeEnv, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	backend := backendOf(t)
	if se.url == "" {
		se.url = backend.DatabaseURL(t)
	}
	db, err := app.ParseDatabase(se.url)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, nil))
	st, err := app.OpenStore(ctx, db, append([]app.StoreOption{app.WithStoreLog(log)}, se.sopts...)...)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if se.wrap != nil {
		st = se.wrap(st)
	}
	cfg := server.Config{BaseURL: testBase, AdminClientID: adminID, Version: "test", Logger: log}
	acfg := app.Config{Server: cfg, AdminSecret: adminToken, BcryptCost: bcrypt.MinCost}
	for _, o := range opts {
		o(&acfg)
	}
	a, err := app.New(ctx, st, acfg)
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	return &env{t: t, backend: backend, srv: a.Server, app: a, svc: a.Service, store: st, logs: logs}
}

// lockedWriter lets parallel requests share the log buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// in returns the env reporting to t, for use inside subtests.
func (e *env) in(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// req describes one request; hdr holds header name/value pairs.
type req struct {
	method, path string
	body         string
	hdr          []string
	anonymous    bool
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	doc    map[string]any
}

func (e *env) do(r req) *resp {
	e.t.Helper()
	return e.doFrom("", r)
}

// doFrom is do with the request coming from the IP address addr ("" for httptest's
// default), for what keys on the peer (the guessing limits). It is safe to call from
// several goroutines: a response that is not JSON is an error, not a fatal one.
func (e *env) doFrom(addr string, r req) *resp {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if addr != "" {
		hr.RemoteAddr = addr + ":40000"
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if !r.anonymous {
		hr.SetBasicAuth(adminID, adminToken)
	}
	for i := 0; i+1 < len(r.hdr); i += 2 {
		if r.hdr[i+1] == "" {
			hr.Header.Del(r.hdr[i])
			continue
		}
		hr.Header.Set(r.hdr[i], r.hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, hr)
	out := &resp{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	// NDJSON ($export's files) is lines of JSON, not one document.
	if ct := rec.Header().Get("Content-Type"); strings.Contains(ct, "json") && !strings.Contains(ct, "ndjson") && len(out.raw) > 0 {
		if err := json.Unmarshal(out.raw, &out.doc); err != nil {
			e.t.Errorf("%s %s: response is not JSON: %v\n%s", r.method, r.path, err, out.raw)
		}
	}
	return out
}

// must performs r and fails the test unless the status is want.
func (e *env) must(want int, r req) *resp {
	e.t.Helper()
	out := e.do(r)
	if out.status != want {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", r.method, r.path, out.status, want, out.raw)
	}
	return out
}

func get(path string, hdr ...string) req { return req{method: http.MethodGet, path: path, hdr: hdr} }
func put(path, body string, hdr ...string) req {
	return req{method: http.MethodPut, path: path, body: body, hdr: hdr}
}
func post(path, body string, hdr ...string) req {
	return req{method: http.MethodPost, path: path, body: body, hdr: hdr}
}
func del(path string, hdr ...string) req { return req{method: http.MethodDelete, path: path, hdr: hdr} }

// at walks doc along keys (strings for objects, ints for arrays) and returns the
// value found, or nil.
func at(doc any, path ...any) any {
	cur := doc
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[k]
		case int:
			a, ok := cur.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			cur = a[k]
		}
	}
	return cur
}

// outcomeText is the diagnostics of the first issue of an OperationOutcome (conformance F15).
func outcomeText(t testing.TB, r *resp) string {
	t.Helper()
	if at(r.doc, "resourceType") != "OperationOutcome" {
		t.Fatalf("status %d body is not an OperationOutcome: %s", r.status, r.raw)
	}
	d, _ := at(r.doc, "issue", 0, "diagnostics").(string)
	if d == "" {
		d, _ = at(r.doc, "issue", 0, "details", "text").(string)
	}
	if d == "" {
		t.Fatalf("OperationOutcome without diagnostics: %s", r.raw)
	}
	return d
}

// entryIDs lists the ids of a Bundle's entries in order.
func entryIDs(r *resp) []string {
	var ids []string
	entries, _ := at(r.doc, "entry").([]any)
	for _, en := range entries {
		id, _ := at(en, "resource", "id").(string)
		ids = append(ids, id)
	}
	return ids
}

func link(r *resp, rel string) string {
	links, _ := at(r.doc, "link").([]any)
	for _, l := range links {
		if at(l, "relation") == rel {
			s, _ := at(l, "url").(string)
			return s
		}
	}
	return ""
}
