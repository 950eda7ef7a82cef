package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// When fhirbox's database user may not create roles, sql policies are refused with a
// 422 that says why, and the log says so once; FHIRBOX_POLICY_DATABASE_URL then names a
// role of the operator's, which fhirbox grants the policy views and refuses if it could
// reach anything else.
func TestPolicyRoleWithoutCreateRole(t *testing.T) {
	if !containsBackend(testdb.Postgres) {
		t.Skip("PostgreSQL is left out")
	}
	ctx := context.Background()
	raw := testdb.URL(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	dbname := strings.TrimPrefix(u.Path, "/")
	super, err := sql.Open("pgx", raw)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := super.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Roles named <database>_… go with the test database (pkg/testdb).
	appRole, polRole, wideRole, memberRole := dbname+"_app", dbname+"_pol", dbname+"_wide", dbname+"_member"
	exec(`CREATE ROLE "` + appRole + `" LOGIN NOSUPERUSER NOCREATEROLE`)
	exec(`ALTER DATABASE "` + dbname + `" OWNER TO "` + appRole + `"`)
	for _, r := range []string{polRole, wideRole, memberRole} {
		exec(`CREATE ROLE "` + r + `" LOGIN`)
	}
	exec(`GRANT "` + appRole + `" TO "` + memberRole + `"`)
	as := func(role string) string {
		c := *u
		c.User = url.User(role)
		return c.String()
	}

	// The application's user may not create roles: sql policies are off, and say why.
	logs := &bytes.Buffer{}
	e := envOn(t, app.Database{Backend: app.Postgres, Target: as(appRole)}, logs)
	r := e.must(422, yamlPut("/AccessPolicy/sql", "engine: sql\nsql: {query: SELECT true}\n"))
	msg := outcomeText(t, r)
	for _, want := range []string{"CREATEROLE", "FHIRBOX_POLICY_DATABASE_URL", appRole} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal %q does not name %s", msg, want)
		}
	}
	if n := strings.Count(logs.String(), "sql policies are off"); n != 1 {
		t.Errorf("%d log lines say sql policies are off, want 1:\n%s", n, logs)
	}
	tp := e.must(422, post("/auth/test-policy", `{"request":{},"policy":{"engine":"sql","sql":{"query":"SELECT true"}}}`))
	outcomeText(t, tp)
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient"}`))
	var n int
	if err := super.QueryRowContext(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, dbname+"_policy").Scan(&n); err != nil || n != 0 {
		t.Errorf("a policy role was made by a user without CREATEROLE: %d, %v", n, err)
	}

	// With the operator's role, they run as it, confined.
	e = envOn(t, app.Database{Backend: app.Postgres, Target: as(appRole), PolicyURL: as(polRole)}, &bytes.Buffer{})
	e.must(201, yamlPut("/AccessPolicy/sql", "engine: sql\nsql: {query: \"SELECT current_user = '"+polRole+"' AND EXISTS (SELECT 1 FROM resource WHERE resource_type = 'Patient' AND id = 'pt-1')\"}\n"))
	if doc := e.must(200, post("/auth/test-policy", `{"request":{},"policy":"sql"}`)).doc; doc["result"] != true {
		t.Errorf("the policy as %s: %v", polRole, doc)
	}
	for _, q := range []string{
		`SELECT EXISTS (SELECT 1 FROM public.signing_key)`,
		`SELECT set_config('role', '` + appRole + `', true) IS NOT NULL AND query_to_xml('SELECT 1 FROM public.signing_key', false, false, '')::text <> ''`,
		`SELECT EXISTS (SELECT 1 FROM resource WHERE content ? 'secret')`,
	} {
		out := e.do(post("/auth/test-policy", `{"request":{},"policy":{"engine":"sql","sql":{"query":`+jsonString(q)+`}}}`))
		if out.status != 422 && (out.status != 200 || out.doc["result"] != false) {
			t.Errorf("%s: %d %s", q, out.status, out.raw)
		}
	}

	// A role that can reach more is refused at start.
	exec(`GRANT SELECT ON public.signing_key TO "` + wideRole + `"`)
	for role, want := range map[string]string{
		"postgres": "SUPERUSER",
		wideRole:   "signing_key",
		memberRole: "member",
	} {
		_, err := app.OpenStore(ctx, app.Database{Backend: app.Postgres, Target: as(appRole), PolicyURL: as(role)})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "FHIRBOX_POLICY_DATABASE_URL") {
			t.Errorf("policy URL as %s: %v, want an error about %s", role, err, want)
		}
	}
}

func containsBackend(b testdb.Backend) bool {
	for _, x := range testdb.Backends() {
		if x == b {
			return true
		}
	}
	return false
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// envOn is newEnv on a given database, logging to logs.
func envOn(t *testing.T, db app.Database, logs *bytes.Buffer) *env {
	t.Helper()
	ctx := context.Background()
	st, err := app.OpenStore(ctx, db)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := server.Config{
		BaseURL: testBase, AdminClientID: adminID, Version: "test",
		Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, nil)),
	}
	a, err := app.New(ctx, st, app.Config{Server: cfg, AdminSecret: adminToken, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	return &env{t: t, backend: testdb.Postgres, srv: a.Server, app: a, svc: a.Service, store: st, logs: logs}
}
