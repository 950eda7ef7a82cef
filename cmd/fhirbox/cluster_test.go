package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
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
	base   string
	cmd    *exec.Cmd
	out    *syncBuffer
	waited chan struct{} // closed when the process has ended
}

// startProcess starts a server process on a free port; every process of one test
// shares the public base URL (as instances behind one load balancer do), which JWTs
// name as their issuer.
func startProcess(t *testing.T, dbURL, secret string) *process {
	t.Helper()
	p := launch(t, dbURL, secret)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := http.Get(p.base + "/health"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return p
			}
		}
		if p.exited() {
			t.Fatalf("server process exited: %v\n%s", p.cmd.ProcessState, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("server process did not come up:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launch starts a server process and returns at once.
func launch(t *testing.T, dbURL, secret string) *process {
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
		"FHIRBOX_BASE_URL=https://fhirbox.cluster.test", "FHIRBOX_ADMIN_SECRET="+secret, "FHIRBOX_LOG_LEVEL=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.waited = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(p.waited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		<-p.waited
	})
	return p
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.waited:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as kill -9 does: no shutdown, nothing flushed
// that was not flushed already, and waits until it has gone.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.waited
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
	return eventuallyWithin(t, what, want, 5*time.Second, f)
}

// eventuallyWithin is eventually with a deadline of its own, for what only prepares a
// test (a load to be under), which a busy machine may take longer to reach.
func eventuallyWithin(t *testing.T, what string, want int, d time.Duration, f func() int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := f()
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("%s: still %d after %s, want %d", what, got, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two server processes on one database: a policy written, changed or deleted on one
// takes effect on the other at once (LISTEN/NOTIFY), so do client changes; and when the
// notification connection drops, the server reloads everything it may have missed.
// PostgreSQL only: a SQLite file has one process (TestSQLiteFileHasOneProcess).
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

// tokenOn asks process p for a token with a form body and Basic client credentials.
func (p *process) token(t *testing.T, clientID, secret string, form url.Values) map[string]any {
	t.Helper()
	return p.form(t, "/auth/token", clientID, secret, form)
}

// form posts form to path on process p with Basic client credentials, and returns the
// JSON answer (none for an empty body) with its status.
func (p *process) form(t *testing.T, path, clientID, secret string, form url.Values) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	status, _, body := send(t, req)
	out := map[string]any{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, body)
		}
	}
	out["status"] = float64(status)
	return out
}

// send does req and returns the answer's status, headers and body.
func send(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, r.Header, body
}

// bearer sends method path with a bearer token and returns the status.
func (p *process) bearer(t *testing.T, method, path, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}

// Tokens cross instances: a token issued by one process works on the other, and
// DELETE /Session or POST /auth/revoke on one revokes it on both at once, opaque and JWT
// alike, and introspection on the other says so (conformance R7); the
// JWT is verified on the other process with the key both share through the database.
// PostgreSQL only, as above.
func TestTokensAndRevocationAcrossInstances(t *testing.T) {
	dbURL := testdb.URL(t)
	const admin = "cluster-admin-secret"
	a := startProcess(t, dbURL, admin)
	b := startProcess(t, dbURL, admin)
	client := "secret: app-secret\ngrant_types: [password, client_credentials, refresh_token]\n" +
		"auth:\n  password: {token_format: jwt, refresh_token: true}\n  client_credentials: {token_format: opaque}\n"
	if s := a.call(t, "PUT", "/Client/app", "admin", admin, client); s != 201 {
		t.Fatalf("client: %d", s)
	}
	a.call(t, "PUT", "/User/u1", "admin", admin, "password: u1-password\n")
	a.call(t, "PUT", "/AccessPolicy/app-all", "admin", admin, "engine: allow\nlink: [{resourceType: Client, id: app}, {resourceType: User, id: u1}]\n")

	for _, grant := range []url.Values{
		{"grant_type": {"client_credentials"}},
		{"grant_type": {"password"}, "username": {"u1"}, "password": {"u1-password"}},
	} {
		t.Run(grant.Get("grant_type"), func(t *testing.T) {
			tok := a.token(t, "app", "app-secret", grant)
			if tok["status"] != 200.0 {
				t.Fatalf("token: %v", tok)
			}
			access := tok["access_token"].(string)
			eventually(t, "token issued on A, used on B", 200, func() int { return b.bearer(t, "GET", "/fhir/Patient", access) })
			if s := a.bearer(t, "GET", "/fhir/Patient", access); s != 200 {
				t.Fatalf("on A: %d", s)
			}
			if s := b.bearer(t, "DELETE", "/Session", access); s != 200 {
				t.Fatalf("DELETE /Session on B: %d", s)
			}
			took := eventually(t, "revoked on B, used on A", 401, func() int { return a.bearer(t, "GET", "/fhir/Patient", access) })
			t.Logf("revocation on one instance took effect on the other within %s", took)
			if s := b.bearer(t, "GET", "/fhir/Patient", access); s != 401 {
				t.Errorf("revoked token on B: %d", s)
			}
			if rt, ok := tok["refresh_token"].(string); ok {
				r := a.token(t, "app", "app-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				if r["status"] != 400.0 || r["error"] != "invalid_grant" {
					t.Errorf("refresh after revocation: %v", r)
				}
			}

			// The same through POST /auth/revoke on B (RFC 7009), seen by introspection
			// on A.
			access = a.token(t, "app", "app-secret", grant)["access_token"].(string)
			eventually(t, "second token issued on A, used on B", 200, func() int { return b.bearer(t, "GET", "/fhir/Patient", access) })
			introspect := func() map[string]any {
				return a.form(t, "/auth/introspect", "app", "app-secret", url.Values{"token": {access}})
			}
			if r := introspect(); r["active"] != true {
				t.Fatalf("introspection on A before revocation: %v", r)
			}
			if r := b.form(t, "/auth/revoke", "app", "app-secret", url.Values{"token": {access}}); r["status"] != 200.0 || len(r) != 1 {
				t.Fatalf("POST /auth/revoke on B: %v", r)
			}
			took = eventually(t, "revoked through /auth/revoke on B, used on A", 401, func() int { return a.bearer(t, "GET", "/fhir/Patient", access) })
			t.Logf("POST /auth/revoke on one instance took effect on the other within %s", took)
			if r := introspect(); len(r) != 2 || r["active"] != false {
				t.Errorf("introspection on A after revocation on B: %v", r)
			}
		})
	}
}

// A write acknowledged to the client survives kill -9 and a restart, on each backend:
// writers create patients without pause, the server is killed while they are still at
// it, and every patient whose 201 arrived before reads back from a new process on the
// same database, and is found by a search (its index rows committed with it).
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) { testWritesSurviveKill(t, b) })
	}
}

func testWritesSurviveKill(t *testing.T, backend testdb.Backend) {
	const admin = "durability-admin-secret"
	dbURL := backend.DatabaseURL(t)
	p := startProcess(t, dbURL, admin)

	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("kill-%d-%d", w, i)
				body := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"Durable"}]}`, id)
				req, _ := http.NewRequest(http.MethodPut, p.base+"/Patient/"+id, strings.NewReader(body))
				req.SetBasicAuth("admin", admin)
				req.Header.Set("Content-Type", "application/json")
				r, err := client.Do(req)
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if r.StatusCode == http.StatusCreated {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	// The writes only set the scene: the kill must find them under way.
	eventuallyWithin(t, "acknowledged writes", 1, time.Minute, func() int {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) >= 200 {
			return 1
		}
		return 0
	})
	p.kill(t)
	close(stop)
	wg.Wait()

	q := startProcess(t, dbURL, admin)
	for _, id := range acked {
		if s := q.call(t, "GET", "/Patient/"+id, "admin", admin, ""); s != 200 {
			t.Errorf("%s was acknowledged before kill -9 but reads %d after the restart", id, s)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, q.base+"/Patient?family=durable&_count=0", nil)
	req.SetBasicAuth("admin", admin)
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct{ Total int }
	err = json.NewDecoder(r.Body).Decode(&bundle)
	r.Body.Close()
	if err != nil || bundle.Total < len(acked) {
		t.Errorf("a search finds %d patients (%v), want at least the %d acknowledged", bundle.Total, err, len(acked))
	}
	t.Logf("%d writes acknowledged before kill -9, all read back; %d found by search", len(acked), bundle.Total)
}

// A SQLite file has one fhirbox process: a second one on the same file stops at once
// with a message that says so, and the first goes on serving.
func TestSQLiteFileHasOneProcess(t *testing.T) {
	const admin = "single-admin-secret"
	dbURL := testdb.SQLite.DatabaseURL(t)
	a := startProcess(t, dbURL, admin)
	b := launch(t, dbURL, admin)
	select {
	case <-b.waited:
	case <-time.After(30 * time.Second):
		t.Fatal("a second process on the file is still running")
	}
	if b.cmd.ProcessState.Success() || !strings.Contains(b.out.String(), "in use by another fhirbox process") {
		t.Errorf("second process: %v\n%s", b.cmd.ProcessState, b.out.String())
	}
	if s := a.call(t, "GET", "/Patient", "admin", admin, ""); s != 200 {
		t.Errorf("first process after the second's attempt: %d", s)
	}
}
