package main

import (
	"database/sql"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// asServerEnv makes the test binary act as the fhirbox binary, so that a test can run
// real server processes without building one.
const asServerEnv = "FHIRBOX_TEST_AS_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(asServerEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// process is a fhirbox server running as a child process.
type process struct {
	base string
	cmd  *exec.Cmd
	out  *syncBuffer
}

func startProcess(t *testing.T, dbURL, secret string) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &process{base: "http://" + addr, out: &syncBuffer{}}
	p.cmd = exec.Command(os.Args[0], "serve")
	p.cmd.Env = append(os.Environ(), asServerEnv+"=1", "FHIRBOX_DATABASE_URL="+dbURL, "FHIRBOX_ADDR="+addr,
		"FHIRBOX_BASE_URL="+p.base, "FHIRBOX_ADMIN_SECRET="+secret, "FHIRBOX_LOG_LEVEL=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		_ = p.cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := http.Get(p.base + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server process did not come up:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends method path with Basic credentials id:secret and returns the status.
func (p *process) call(t *testing.T, method, path, id, secret, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.SetBasicAuth(id, secret)
	if body != "" {
		req.Header.Set("Content-Type", "text/yaml")
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode >= 500 {
		t.Fatalf("%s %s: %d %s", method, path, r.StatusCode, msg)
	}
	return r.StatusCode
}

// eventually polls until f returns want, failing after five seconds; it returns how
// long that took.
func eventually(t *testing.T, what string, want int, f func() int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := f()
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s: still %d after 5s, want %d", what, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two server processes on one database: a policy written, changed or deleted on one
// takes effect on the other at once (LISTEN/NOTIFY), so do client changes; and when the
// notification connection drops, the server reloads everything it may have missed.
func TestPolicyChangesReachEveryInstance(t *testing.T) {
	dbURL := testdb.URL(t)
	const admin = "cluster-admin-secret"
	a := startProcess(t, dbURL, admin)
	b := startProcess(t, dbURL, admin)

	if s := a.call(t, "PUT", "/Client/app", "admin", admin, "secret: app-secret\ngrant_types: [basic]\n"); s != 201 {
		t.Fatalf("create client: %d", s)
	}
	readOnB := func() int { return b.call(t, "GET", "/fhir/Patient", "app", "app-secret", "") }
	if s := readOnB(); s != 403 {
		t.Fatalf("before any policy: %d, want 403", s)
	}
	policy := "engine: matcho\nlink: [{resourceType: Client, id: app}]\nmatcho: {request-method: get}\n"
	if s := a.call(t, "PUT", "/AccessPolicy/app-read", "admin", admin, policy); s != 201 {
		t.Fatalf("write policy on A: %d", s)
	}
	took := eventually(t, "policy written on A, read on B", 200, readOnB)
	t.Logf("a new policy took effect on the other instance within %s", took)

	narrowed := "engine: matcho\nlink: [{resourceType: Client, id: app}]\nmatcho: {request-method: get, uri: '#^/fhir/Observation'}\n"
	a.call(t, "PUT", "/AccessPolicy/app-read", "admin", admin, narrowed)
	eventually(t, "policy narrowed on A", 403, readOnB)
	eventually(t, "narrowed policy still allows Observation", 200, func() int {
		return b.call(t, "GET", "/fhir/Observation", "app", "app-secret", "")
	})
	a.call(t, "DELETE", "/AccessPolicy/app-read", "admin", admin, "")
	eventually(t, "policy deleted on A", 403, func() int {
		return b.call(t, "GET", "/fhir/Observation", "app", "app-secret", "")
	})

	// B remembers app's verified secret; changing it on A makes B forget it.
	a.call(t, "PUT", "/Client/app", "admin", admin, "secret: new-secret\ngrant_types: [basic]\n")
	eventually(t, "old secret on B after rotation on A", 401, readOnB)

	// A policy that arrives without a notification (written while nobody listened) is
	// picked up by the full reload that follows a dropped notification connection.
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	content := `{"resourceType":"AccessPolicy","id":"quiet","engine":"allow","link":[{"resourceType":"Client","id":"app"}],"meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z"}}`
	if _, err := db.Exec(`INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
		VALUES ('AccessPolicy', 'quiet', 1, now(), false, $1)`, content); err != nil {
		t.Fatal(err)
	}
	readNew := func() int { return b.call(t, "GET", "/fhir/Patient", "app", "new-secret", "") }
	if s := readNew(); s != 403 {
		t.Fatalf("a policy written behind the servers' backs is in force already: %d", s)
	}
	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'fhirbox-listener' AND datname = current_database()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("terminated %d listener connections, want 2 (one per process)", n)
	}
	took = eventually(t, "reload after the listener reconnects", 200, readNew)
	t.Logf("after the notification connection dropped, a full reload took effect within %s", took)
}
