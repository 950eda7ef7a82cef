package server_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// sql policies run as a role that reads two views of resource and resource_history
// without secret fields, and nothing else (issue 12, item 2): each query below returns
// true only if it reached a secret, a table or function it may not, or changed
// something. Stored as a policy it is refused (422) or denies; sent inline to
// POST /auth/test-policy it is refused or false, and no answer carries key material or
// a hash. A policy that reads resource as documented still allows.
func TestPolicySQLConfined(t *testing.T) { forEachBackend(t, testPolicySQLConfined) }

func testPolicySQLConfined(t *testing.T) {
	e := newEnv(t)
	e.postgresOnly(t, "the sql engine runs on PostgreSQL only; SQLite refuses it (TestPolicySQLOnSQLite)")
	ctx := context.Background()
	e.must(201, yamlPut("/Client/reader", "secret: reader-secret\ngrant_types: [basic]\n"))
	e.must(201, put("/User/u1", `{"password":"password-of-u1"}`))
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient","name":[{"family":"One"}]}`))
	// A Session, so that token hashes exist.
	r := token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(adminID, adminToken))
	if r.status != 200 {
		t.Fatalf("token: %s", r.raw)
	}
	// What must never come out: the key, as stored, and the secret hashes.
	var pemText string
	if err := e.store.SQL().QueryRowContext(ctx, `SELECT private_pem FROM signing_key`).Scan(&pemText); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	rows, err := e.store.SQL().QueryContext(ctx, `SELECT content->>'secret' FROM resource WHERE resource_type = 'Client'
		UNION ALL SELECT content->>'password' FROM resource WHERE resource_type = 'User'
		UNION ALL SELECT content->>'access_token_hash' FROM resource WHERE resource_type = 'Session'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, s)
	}
	rows.Close()
	if len(secrets) < 4 {
		t.Fatalf("only %d secrets to look for", len(secrets))
	}
	secrets = append(secrets, strings.Split(strings.TrimSpace(pemText), "\n")[1]) // a line of the key's body
	leaks := func(t *testing.T, raw []byte) {
		t.Helper()
		body := string(raw)
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("the answer carries a secret (%.12s…): %s", s, raw)
			}
		}
		if strings.Contains(body, "PRIVATE KEY") {
			t.Errorf("the answer carries key material: %s", raw)
		}
	}

	attacks := []struct{ name, query string }{
		{"signing_key by name", `SELECT EXISTS (SELECT 1 FROM signing_key)`},
		{"signing_key in public", `SELECT EXISTS (SELECT 1 FROM public.signing_key)`},
		{"key through a failed cast", `SELECT (SELECT private_pem FROM public.signing_key LIMIT 1)::int > 0`},
		{"client secret hash", `SELECT EXISTS (SELECT 1 FROM resource WHERE resource_type = 'Client' AND content ? 'secret')`},
		{"client secret through a cast", `SELECT (SELECT content->>'secret' FROM resource WHERE resource_type = 'Client' AND id = 'reader')::int > 0 IS NOT FALSE AND EXISTS (SELECT 1 FROM resource WHERE content ? 'secret')`},
		{"password hash in history", `SELECT EXISTS (SELECT 1 FROM resource_history WHERE resource_type = 'User' AND content ? 'password')`},
		{"token hashes", `SELECT EXISTS (SELECT 1 FROM resource WHERE resource_type = 'Session' AND content ?| ARRAY['access_token_hash', 'refresh_token_hash', 'ends'])`},
		{"search index", `SELECT EXISTS (SELECT 1 FROM public.search_token)`},
		{"the policy role's password", `SELECT EXISTS (SELECT 1 FROM public.policy_role)`},
		{"the application's resource table", `SELECT EXISTS (SELECT 1 FROM public.resource WHERE content ? 'secret')`},
		{"set_config role none and query_to_xml", `SELECT set_config('role', 'none', true) IS NOT NULL AND query_to_xml('SELECT private_pem FROM public.signing_key', false, false, '')::text LIKE '%PRIVATE%'`},
		{"set_config role postgres and query_to_xml", `SELECT set_config('role', 'postgres', true) IS NOT NULL AND query_to_xml('SELECT private_pem FROM public.signing_key', false, false, '')::text LIKE '%PRIVATE%'`},
		{"session authorization", `SELECT set_config('session_authorization', 'postgres', true) IS NOT NULL AND query_to_xml('SELECT 1 FROM public.signing_key', false, false, '')::text <> ''`},
		{"pg_read_file", `SELECT length(pg_read_file('PG_VERSION')) > 0`},
		{"pg_ls_dir", `SELECT EXISTS (SELECT 1 FROM pg_ls_dir('.'))`},
		{"a write", `WITH d AS (UPDATE resource SET deleted = true WHERE resource_type = 'Patient' RETURNING 1) SELECT count(*) > 0 FROM d`},
		{"a delete through the view", `WITH d AS (DELETE FROM resource WHERE resource_type = 'Patient' RETURNING 1) SELECT count(*) > 0 FROM d`},
		{"read-write by set_config", `SELECT set_config('default_transaction_read_only', 'off', false) IS NOT NULL AND set_config('transaction_read_only', 'off', true) IS NOT NULL`},
	}
	for i, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			e := e.in(t)
			policy, _ := json.Marshal(map[string]any{
				"engine": "sql", "link": []any{map[string]any{"resourceType": "Client", "id": "reader"}},
				"sql": map[string]any{"query": a.query},
			})
			id := "attack-" + string(rune('a'+i))
			out := e.do(put("/AccessPolicy/"+id, string(policy)))
			leaks(t, out.raw)
			switch out.status {
			case 422:
			case 201:
				got := e.do(as("reader", "reader-secret", get("/fhir/Patient/pt-1", "X-Debug", "policy")))
				leaks(t, got.raw)
				leaks(t, []byte(got.header.Get("X-Fhirbox-Policy-Trace")))
				if got.status != 403 {
					t.Errorf("the stored policy let the request through: %d %s", got.status, got.raw)
				}
				e.must(200, del("/AccessPolicy/"+id))
			default:
				t.Errorf("PUT: status %d, want 422 or 201: %s", out.status, out.raw)
			}

			body, _ := json.Marshal(map[string]any{
				"request": map[string]any{"request-method": "get", "uri": "/fhir/Patient/pt-1"},
				"policy":  map[string]any{"engine": "sql", "sql": map[string]any{"query": a.query}},
			})
			tp := e.do(post("/auth/test-policy", string(body)))
			leaks(t, tp.raw)
			switch {
			case tp.status == 422:
			case tp.status == 200 && tp.doc["result"] == false:
			default:
				t.Errorf("test-policy: %d %s", tp.status, tp.raw)
			}
		})
	}
	// Nothing was changed.
	e.must(200, get("/fhir/Patient/pt-1"))

	// A policy reading resource as documented still works, and it runs as the policy
	// role, at write (CheckPolicySQL) as at request time.
	e.must(201, yamlPut("/AccessPolicy/reads-resource", `
engine: sql
link: [{resourceType: Client, id: reader}]
sql:
  query: >-
    SELECT current_user LIKE '%\_policy' AND EXISTS (SELECT 1 FROM resource WHERE resource_type = 'Patient'
    AND NOT deleted AND id = {{.params.resource/id}} AND content->'name'->0->>'family' = 'One')
    AND EXISTS (SELECT 1 FROM resource_history WHERE resource_type = 'Client' AND id = 'reader')
`))
	e.must(200, as("reader", "reader-secret", get("/fhir/Patient/pt-1")))
	e.must(403, as("reader", "reader-secret", get("/fhir/Patient/pt-2")))
	// Other fields of a Client stay visible: only the secret is taken out.
	tp := e.must(200, post("/auth/test-policy", `{"request":{},"policy":{"engine":"sql","sql":{"query":
		"SELECT (SELECT content->'grant_types'->>0 = 'basic' AND NOT content ? 'secret' FROM resource WHERE resource_type = 'Client' AND id = 'reader')"}}}`))
	if tp.doc["result"] != true {
		t.Errorf("the Client without its secret: %s", tp.raw)
	}
}
