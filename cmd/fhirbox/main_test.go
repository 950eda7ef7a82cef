package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigErrors(t *testing.T) {
	good := map[string]string{"FHIRBOX_DATABASE_URL": "postgres://u@h/db"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		says string
	}{
		{"not postgres", with("FHIRBOX_DATABASE_URL", "mysql://x"), nil, "postgres://"},
		{"plain path", with("FHIRBOX_DATABASE_URL", "./fhirbox.db"), nil, "sqlite:<path>"},
		{"sqlite without a file", with("FHIRBOX_DATABASE_URL", "sqlite:"), nil, "sqlite:<path>"},
		{"relative base", with("FHIRBOX_BASE_URL", "localhost:8080"), nil, "FHIRBOX_BASE_URL"},
		{"base with query", with("FHIRBOX_BASE_URL", "http://h/?a=1"), nil, "FHIRBOX_BASE_URL"},
		{"bad addr", with("FHIRBOX_ADDR", "8080"), nil, "FHIRBOX_ADDR"},
		{"bad admin id", with("FHIRBOX_ADMIN_CLIENT_ID", "a b"), nil, "FHIRBOX_ADMIN_CLIENT_ID"},
		{"bad admin secret", with("FHIRBOX_ADMIN_SECRET", "has:colon"), nil, "FHIRBOX_ADMIN_SECRET"},
		{"long admin secret", with("FHIRBOX_ADMIN_SECRET", strings.Repeat("a", 73)), nil, "FHIRBOX_ADMIN_SECRET"},
		{"small body limit", with("FHIRBOX_MAX_BODY_BYTES", "10"), nil, "FHIRBOX_MAX_BODY_BYTES"},
		{"bad log level", with("FHIRBOX_LOG_LEVEL", "loud"), nil, "FHIRBOX_LOG_LEVEL"},
		{"bad session retention", with("FHIRBOX_SESSION_RETENTION", "7d"), nil, "FHIRBOX_SESSION_RETENTION"},
		{"tiny session retention", with("FHIRBOX_SESSION_RETENTION", "1s"), nil, "FHIRBOX_SESSION_RETENTION"},
		{"bad export lease", with("FHIRBOX_EXPORT_LEASE", "30"), nil, "FHIRBOX_EXPORT_LEASE"},
		{"tiny export lease", with("FHIRBOX_EXPORT_LEASE", "10ms"), nil, "FHIRBOX_EXPORT_LEASE"},
		{"zero max conns", with("FHIRBOX_MAX_CONNS", "0"), nil, "FHIRBOX_MAX_CONNS"},
		{"bad max conns per addr", with("FHIRBOX_MAX_CONNS_PER_ADDR", "-1"), nil, "FHIRBOX_MAX_CONNS_PER_ADDR"},
		{"bad transfer timeout", with("FHIRBOX_TRANSFER_TIMEOUT", "30"), nil, "FHIRBOX_TRANSFER_TIMEOUT"},
		{"tiny transfer timeout", with("FHIRBOX_TRANSFER_TIMEOUT", "1ms"), nil, "FHIRBOX_TRANSFER_TIMEOUT"},
		{"zero transfer rate", with("FHIRBOX_TRANSFER_MIN_RATE", "0"), nil, "FHIRBOX_TRANSFER_MIN_RATE"},
		{"wildcard origin", with("FHIRBOX_CORS_ORIGINS", "https://*.example"), nil, "FHIRBOX_CORS_ORIGINS"},
		{"any origin", with("FHIRBOX_CORS_ORIGINS", "*"), nil, "FHIRBOX_CORS_ORIGINS"},
		{"origin with path", with("FHIRBOX_CORS_ORIGINS", "https://a.example/app"), nil, "FHIRBOX_CORS_ORIGINS"},
		{"origin in upper case", with("FHIRBOX_CORS_ORIGINS", "https://A.example"), nil, "FHIRBOX_CORS_ORIGINS"},
		{"origin without scheme", with("FHIRBOX_CORS_ORIGINS", "a.example"), nil, "FHIRBOX_CORS_ORIGINS"},
		{"bad search limits", with("FHIRBOX_SEARCH_LIMITS", "clauses=1000"), nil, "FHIRBOX_SEARCH_LIMITS"},
		{"zero bundle entries", with("FHIRBOX_BUNDLE_MAX_ENTRIES", "0"), nil, "FHIRBOX_BUNDLE_MAX_ENTRIES"},
		{"flag beats env", good, []string{"--database-url", "mysql://x"}, "postgres://"},
		{"stray argument", good, []string{"extra"}, "unexpected argument"},
		{"unknown flag", good, []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseConfig("serve", tt.args, envOf(tt.env), &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.says) {
				t.Errorf("err %v (stderr %q), want one saying %q", err, stderr.String(), tt.says)
			}
		})
	}
	c, err := parseConfig("serve", []string{"--addr", "127.0.0.1:9"}, envOf(with("FHIRBOX_BASE_URL", "https://x.test/base/")), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9" || c.BaseURL != "https://x.test/base" || c.AdminClientID != "admin" || c.MaxBodyBytes != 10<<20 ||
		c.SessionRetention != 7*24*time.Hour || c.MaxConns != 4096 || c.MaxConnsPerAddr != 256 ||
		c.TransferTimeout != 10*time.Second || c.TransferMinRate != 32<<10 || c.CORSOrigins != nil ||
		c.SearchLimits != resources.DefaultLimits() || c.BundleMaxEntries != resources.DefaultBundleMaxEntries {
		t.Errorf("config %+v", c)
	}
	c, err = parseConfig("serve", []string{"--cors-origins", "https://app.example, http://localhost:3000"}, envOf(good), io.Discard)
	if err != nil || strings.Join(c.CORSOrigins, " ") != "https://app.example http://localhost:3000" {
		t.Errorf("CORS origins %q, %v", c.CORSOrigins, err)
	}
	if c, err = parseConfig("serve", nil, envOf(with("FHIRBOX_SEARCH_LIMITS", "clauses=30")), io.Discard); err != nil || c.SearchLimits.Clauses != 30 {
		t.Errorf("FHIRBOX_SEARCH_LIMITS=clauses=30: %+v, %v", c, err)
	}
}

// Without FHIRBOX_DATABASE_URL fhirbox runs on a SQLite file in the data directory;
// sqlite:<path> names another file, a postgres:// URL PostgreSQL.
func TestConfigDatabase(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		args    []string
		backend string
		target  string
	}{
		{"default", nil, nil, app.SQLite, filepath.Join("data", "fhirbox.db")},
		{"data dir", map[string]string{"FHIRBOX_DATA_DIR": "/var/lib/fhirbox"}, nil, app.SQLite, "/var/lib/fhirbox/fhirbox.db"},
		{"data dir flag", nil, []string{"--data-dir", "d"}, app.SQLite, filepath.Join("d", "fhirbox.db")},
		{"sqlite file", map[string]string{"FHIRBOX_DATABASE_URL": "sqlite:/tmp/x.db", "FHIRBOX_DATA_DIR": "/ignored"}, nil, app.SQLite, "/tmp/x.db"},
		{"sqlite relative", map[string]string{"FHIRBOX_DATABASE_URL": "sqlite:x/y.db"}, nil, app.SQLite, "x/y.db"},
		{"sqlite URL form", map[string]string{"FHIRBOX_DATABASE_URL": "sqlite:///tmp/x.db"}, nil, app.SQLite, "/tmp/x.db"},
		{"postgres", map[string]string{"FHIRBOX_DATABASE_URL": "postgres://u:pw@h/db"}, nil, app.Postgres, "postgres://u:pw@h/db"},
		{"postgresql", map[string]string{"FHIRBOX_DATABASE_URL": "postgresql://u@h/db"}, nil, app.Postgres, "postgresql://u@h/db"},
		{"flag beats env", map[string]string{"FHIRBOX_DATABASE_URL": "postgres://u@h/db"}, []string{"--database-url", "sqlite:f.db"}, app.SQLite, "f.db"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("serve", tt.args, envOf(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.Database.Backend != tt.backend || c.Database.Target != tt.target {
				t.Errorf("database %+v, want %s %s", c.Database, tt.backend, tt.target)
			}
			if strings.Contains(c.Database.String(), "pw") {
				t.Errorf("the database's name for logs shows the password: %s", c.Database)
			}
		})
	}
}

func TestHelpAndCommands(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "--help"}, envOf(nil), &out, &errb)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("serve --help: %v", err)
	}
	for _, v := range []string{"FHIRBOX_DATABASE_URL", "FHIRBOX_DATA_DIR", "FHIRBOX_ADDR", "FHIRBOX_BASE_URL", "FHIRBOX_ADMIN_CLIENT_ID", "FHIRBOX_ADMIN_SECRET"} {
		if !strings.Contains(errb.String(), v) {
			t.Errorf("serve --help does not mention %s", v)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, envOf(nil), &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "fhirbox ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, envOf(nil), io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
	if err := run(context.Background(), nil, envOf(nil), io.Discard, io.Discard); err == nil {
		t.Error("no command accepted")
	}
}

// fhirbox migrate applies the migrations of the configured backend and says where.
func TestMigrate(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			dbURL := b.DatabaseURL(t)
			for range 2 { // the second run finds nothing to do
				var out bytes.Buffer
				if err := run(context.Background(), []string{"migrate"}, envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL}), &out, io.Discard); err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(out.String(), "migrations applied") || !strings.Contains(out.String(), string(b)) {
					t.Errorf("migrate says %q", out.String())
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe starts the real server on a free port, on each backend: the start line
// names the backend and the database, the admin secret is generated and printed once,
// the API answers with it, and cancelling the context shuts down cleanly.
func TestServe(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) { testServe(t, b) })
	}
}

func testServe(t *testing.T, backend testdb.Backend) {
	dbURL := backend.DatabaseURL(t)
	start := func(ctx context.Context) (string, *syncBuffer, chan error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		out := &syncBuffer{}
		done := make(chan error, 1)
		env := envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL, "FHIRBOX_ADDR": addr, "FHIRBOX_BASE_URL": "http://" + addr})
		go func() { done <- run(ctx, []string{"serve"}, env, out, io.Discard) }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := http.Get("http://" + addr + "/health")
			if err == nil {
				r.Body.Close()
				if r.StatusCode == 200 {
					return addr, out, done
				}
			}
			select {
			case err := <-done:
				t.Fatalf("serve stopped: %v\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("server did not come up\n%s", out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	addr, out, done := start(ctx)
	var secret string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "with secret "); ok {
			secret, _, _ = strings.Cut(after, " ")
		}
	}
	if len(secret) < 32 {
		t.Fatalf("no generated admin secret printed:\n%s", out.String())
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/Patient", nil)
	req.SetBasicAuth("admin", secret)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var bundle map[string]any
	_ = json.NewDecoder(r.Body).Decode(&bundle)
	r.Body.Close()
	if r.StatusCode != 200 || bundle["type"] != "searchset" {
		t.Fatalf("GET /Patient with the printed secret: %d %v", r.StatusCode, bundle)
	}
	// HEAD through net/http: GET's status and headers, no body (issue 12 item 15).
	req.Method = http.MethodHead
	h, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(h.Body)
	h.Body.Close()
	if h.StatusCode != 200 || len(body) != 0 || h.Header.Get("Content-Length") != r.Header.Get("Content-Length") ||
		h.Header.Get("X-Content-Type-Options") != "nosniff" || h.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("HEAD /Patient: %d %v, %d bytes; GET's Content-Length %s", h.StatusCode, h.Header, len(body), r.Header.Get("Content-Length"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(35 * time.Second):
		t.Fatal("no shutdown")
	}
	if strings.Count(out.String(), secret) != 1 {
		t.Errorf("the secret appears %d times in the output, want once", strings.Count(out.String(), secret))
	}
	db, err := app.ParseDatabase(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	started := startLine(t, out.String())
	if started["backend"] != string(backend) || started["database"] != db.String() {
		t.Errorf("start line names backend %v, database %v; want %s, %s", started["backend"], started["database"], backend, db)
	}

	// A second start keeps the existing admin and prints no secret.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	_, out2, done2 := start(ctx2)
	if strings.Contains(out2.String(), "with secret") {
		t.Errorf("a restart printed a new secret:\n%s", out2.String())
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
}

// startLine returns the fields of the "fhirbox started" log line in out.
func startLine(t *testing.T, out string) map[string]any {
	t.Helper()
	for line := range strings.Lines(out) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "fhirbox started" {
			return m
		}
	}
	t.Fatalf("no start line in the output:\n%s", out)
	return nil
}
