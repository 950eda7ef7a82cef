package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/postgres/policyrole"
)

// What one policy query does to its connection does not reach the next: settings
// changed with set_config are rolled back, session advisory locks released.
func TestPolicySQLLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	if err := s.PolicySQLDisabled(); err != nil {
		t.Fatal(err)
	}
	eval := func(q string) bool {
		t.Helper()
		ok, err := s.EvalPolicySQL(ctx, q, nil)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return ok
	}
	// The pool is small: every connection gets used in turn.
	for range 8 {
		if !eval(`SELECT set_config('statement_timeout', '0', false) IS NOT NULL AND set_config('search_path', 'public', false) IS NOT NULL`) {
			t.Fatal("set_config")
		}
		if !eval(`SELECT current_setting('statement_timeout') = '500ms' AND current_setting('search_path') = 'fhirbox_policy' AND current_setting('transaction_read_only') = 'on'`) {
			t.Fatal("a setting changed by a policy outlived its query")
		}
		if !eval(fmt.Sprintf(`SELECT pg_advisory_lock(%d) IS NOT NULL`, signingKeyLock)) {
			t.Fatal("pg_advisory_lock")
		}
		var got bool
		if err := s.SQL().QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, signingKeyLock).Scan(&got); err != nil || !got {
			t.Fatalf("a policy still holds fhirbox's advisory lock: %v, %v", got, err)
		}
	}
}

// A policy query that runs too long is cut off by the statement timeout.
func TestPolicySQLTimeout(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	start := time.Now()
	_, err := s.EvalPolicySQL(context.Background(), `SELECT pg_sleep(5) IS NOT NULL`, nil)
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("pg_sleep(5): %v after %v", err, time.Since(start))
	}
	if ok, err := s.EvalPolicySQL(context.Background(), `SELECT true`, nil); !ok || err != nil {
		t.Errorf("the next query: %v, %v", ok, err)
	}
}

// The views show every column of the tables and every field but the secret and hidden
// ones; a second store on the database (another instance, a restart) reuses the role.
func TestPolicyViews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.URL(t)
	open := func() *Store {
		s, err := Open(ctx, url, WithMaxConns(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// Instances starting together.
	var wg sync.WaitGroup
	stores := make([]*Store, 3)
	for i := range stores {
		wg.Go(func() { stores[i] = open() })
	}
	wg.Wait()
	s := stores[0]
	for _, x := range stores {
		if err := x.PolicySQLDisabled(); err != nil {
			t.Fatal(err)
		}
	}
	doc := `{"resourceType":"Client","id":"c1","secret":"$2a$hash","grant_types":["basic"]}`
	if _, err := s.SQL().ExecContext(ctx, `INSERT INTO resource (resource_type, id, version_id, last_updated, content) VALUES ('Client', 'c1', 1, now(), $1)`, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SQL().ExecContext(ctx, `INSERT INTO resource_history (resource_type, id, version_id, last_updated, content) VALUES ('Client', 'c1', 1, now(), $1)`, doc); err != nil {
		t.Fatal(err)
	}
	for _, st := range stores {
		for _, table := range []string{"resource", "resource_history"} {
			ok, err := st.EvalPolicySQL(ctx, `SELECT content = '{"resourceType":"Client","id":"c1","grant_types":["basic"]}'::jsonb
				AND version_id = 1 AND NOT deleted AND last_updated IS NOT NULL FROM `+table+` WHERE resource_type = 'Client' AND id = 'c1'`, nil)
			if err != nil || !ok {
				t.Errorf("%s as seen by a policy: %v, %v", table, ok, err)
			}
		}
	}
	// Every secret and hidden field of the registry is in the view's definition.
	var def string
	if err := s.SQL().QueryRowContext(ctx, `SELECT pg_get_viewdef('fhirbox_policy.resource'::regclass)`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	reg := resources.DefaultRegistry()
	for _, typ := range reg.Types() {
		td, _ := reg.Type(typ)
		for _, f := range append(append([]string(nil), td.Secret...), td.Hidden...) {
			if !strings.Contains(def, "'"+f+"'") {
				t.Errorf("the view does not remove %s.%s: %s", typ, f, def)
			}
		}
	}
	var n int
	if err := s.SQL().QueryRowContext(ctx, `SELECT count(*) FROM policy_role`).Scan(&n); err != nil || n != 1 {
		t.Errorf("policy_role rows: %d, %v", n, err)
	}
	var name, db string
	if err := s.SQL().QueryRowContext(ctx, `SELECT name, current_database() FROM policy_role`).Scan(&name, &db); err != nil || name != policyrole.Name(db) {
		t.Errorf("policy role %q of %s, %v", name, db, err)
	}
}

// BenchmarkEvalPolicySQL measures one sql policy decision: a query on the policy pool.
func BenchmarkEvalPolicySQL(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	q := `SELECT EXISTS (SELECT 1 FROM resource WHERE resource_type = 'Patient' AND id = ($1::text))`
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.EvalPolicySQL(ctx, q, []any{"pt-1"}); err != nil {
			b.Fatal(err)
		}
	}
}
