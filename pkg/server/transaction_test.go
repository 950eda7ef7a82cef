package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/app"
)

// txEntry is one entry of a test Bundle.
type txEntry struct {
	fullURL, method, url string
	resource             string // JSON, "" for none
	extra                map[string]string
}

// bundleBody is a batch or transaction Bundle of entries, as JSON.
func bundleBody(t testing.TB, typ string, entries ...txEntry) string {
	t.Helper()
	var list []map[string]any
	for _, en := range entries {
		m := map[string]any{}
		if en.fullURL != "" {
			m["fullUrl"] = en.fullURL
		}
		req := map[string]any{"method": en.method, "url": en.url}
		for k, v := range en.extra {
			req[k] = v
		}
		m["request"] = req
		if en.resource != "" {
			var doc map[string]any
			if err := json.Unmarshal([]byte(en.resource), &doc); err != nil {
				t.Fatalf("bad test resource %s: %v", en.resource, err)
			}
			m["resource"] = doc
		}
		list = append(list, m)
	}
	b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": typ, "entry": list})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withBundleMax(n int) envOption {
	return func(c *app.Config) { c.Server.BundleMaxEntries = n }
}

// total is the number of live resources a search finds.
func (e *env) total(path string) int {
	e.t.Helper()
	r := e.must(200, get(path))
	n, _ := at(r.doc, "total").(float64)
	return int(n)
}

// status of entry i of a response Bundle.
func entryStatus(r *resp, i int) string {
	s, _ := at(r.doc, "entry", i, "response", "status").(string)
	return s
}

// A transaction's urn:uuid fullUrls become the ids assigned, in every reference of the
// Bundle: plain, inside contained resources and inside extensions (conformance F40, F43).
// The answer is a transaction-response with each entry's status, location, etag and
// lastModified, in the Bundle's order.
func TestTransactionResolvesReferences(t *testing.T) {
	forEachBackend(t, testTransactionResolvesReferences)
}

func testTransactionResolvesReferences(t *testing.T) {
	e := newEnv(t)
	pt, enc := "urn:uuid:2b3f1c2e-0000-4000-8000-000000000001", "urn:uuid:2b3f1c2e-0000-4000-8000-000000000002"
	body := bundleBody(t, "transaction",
		txEntry{fullURL: "urn:uuid:2b3f1c2e-0000-4000-8000-000000000003", method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final",
			"code":{"text":"x"},"subject":{"reference":"` + pt + `"},"encounter":{"reference":"` + enc + `"},
			"contained":[{"resourceType":"Provenance","id":"p1","target":[{"reference":"` + pt + `"}],"recorded":"2020-01-01T00:00:00Z","agent":[{"who":{"reference":"` + pt + `"}}],
				"entity":[{"role":"source","what":{"reference":"` + enc + `"}}]}],
			"extension":[{"url":"http://example.org/x","valueReference":{"reference":"` + pt + `"}}]}`},
		txEntry{fullURL: pt, method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Urn"}]}`},
		txEntry{fullURL: enc, method: "POST", url: "Encounter", resource: `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"` + pt + `"}}`},
	)
	r := e.must(200, post("/fhir", body))
	if at(r.doc, "type") != "transaction-response" {
		t.Fatalf("type %v, want transaction-response: %s", at(r.doc, "type"), r.raw)
	}
	ids := entryIDs(r)
	if len(ids) != 3 {
		t.Fatalf("%d entries, want 3: %s", len(ids), r.raw)
	}
	for i := range ids {
		if s := entryStatus(r, i); s != "201 Created" {
			t.Errorf("entry %d status %q, want 201 Created", i, s)
		}
		loc, _ := at(r.doc, "entry", i, "response", "location").(string)
		if !strings.HasPrefix(loc, testBase+"/fhir/") || !strings.Contains(loc, ids[i]+"/_history/1") {
			t.Errorf("entry %d location %q", i, loc)
		}
		if at(r.doc, "entry", i, "response", "etag") != `W/"1"` || at(r.doc, "entry", i, "response", "lastModified") == nil {
			t.Errorf("entry %d lacks etag or lastModified: %v", i, at(r.doc, "entry", i, "response"))
		}
	}
	obs := e.must(200, get("/fhir/Observation/"+ids[0])).doc
	ptRef, encRef := "Patient/"+ids[1], "Encounter/"+ids[2]
	for _, c := range []struct {
		where string
		got   any
		want  string
	}{
		{"subject", at(obs, "subject", "reference"), ptRef},
		{"encounter", at(obs, "encounter", "reference"), encRef},
		{"contained target", at(obs, "contained", 0, "target", 0, "reference"), ptRef},
		{"contained agent", at(obs, "contained", 0, "agent", 0, "who", "reference"), "Patient/" + ids[1]},
		{"contained entity", at(obs, "contained", 0, "entity", 0, "what", "reference"), encRef},
		{"extension", at(obs, "extension", 0, "valueReference", "reference"), ptRef},
	} {
		if c.got != c.want {
			t.Errorf("%s: reference %v, want %s", c.where, c.got, c.want)
		}
	}
	if n := e.total("/fhir/Observation?subject=" + ptRef); n != 1 {
		t.Errorf("search by the rewritten subject finds %d, want 1", n)
	}
	if at(e.must(200, get("/fhir/Encounter/"+ids[2])).doc, "subject", "reference") != ptRef {
		t.Error("the Encounter's subject was not rewritten")
	}

	// A urn:uuid that is no entry's fullUrl fails the transaction, naming the entry.
	r = e.must(400, post("/fhir", bundleBody(t, "transaction",
		txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:nowhere"}}`})))
	if msg := outcomeText(t, r); !strings.Contains(msg, "entry 0") || !strings.Contains(msg, "urn:uuid:nowhere") {
		t.Errorf("unresolved reference: %s", msg)
	}
}

// A transaction whose last entry fails leaves nothing behind: not the creates, not the
// update, not the delete before it (conformance F41). The answer names the entry by
// index and fullUrl.
func TestTransactionIsAtomic(t *testing.T) { forEachBackend(t, testTransactionIsAtomic) }

func testTransactionIsAtomic(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/keep", `{"resourceType":"Patient","name":[{"family":"Before"}]}`))
	e.must(201, put("/fhir/Patient/gone", `{"resourceType":"Patient","name":[{"family":"Stays"}]}`))
	e.must(201, put("/fhir/Patient/stale", `{"resourceType":"Patient"}`))
	last := []struct {
		name  string
		entry txEntry
		want  int
	}{
		{"stale ifMatch", txEntry{fullURL: "urn:uuid:last", method: "PUT", url: "Patient/stale", resource: `{"resourceType":"Patient","id":"stale"}`,
			extra: map[string]string{"ifMatch": `W/"9"`}}, 412},
		{"type mismatch", txEntry{fullURL: "urn:uuid:last", method: "POST", url: "Patient", resource: `{"resourceType":"Observation"}`}, 400},
		{"read of a missing resource", txEntry{fullURL: "urn:uuid:last", method: "GET", url: "Patient/nope"}, 404},
		{"bad id", txEntry{fullURL: "urn:uuid:last", method: "PUT", url: "Patient/bad_id", resource: `{"resourceType":"Patient"}`}, 400},
	}
	for _, tt := range last {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			body := bundleBody(t, "transaction",
				txEntry{fullURL: "urn:uuid:a", method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Atomic"}]}`},
				txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"atomic"},"subject":{"reference":"urn:uuid:a"}}`},
				txEntry{method: "PUT", url: "Patient/keep", resource: `{"resourceType":"Patient","id":"keep","name":[{"family":"After"}]}`},
				txEntry{method: "DELETE", url: "Patient/gone"},
				tt.entry,
			)
			r := e.must(tt.want, post("/fhir", body))
			msg := outcomeText(t, r)
			if !strings.Contains(msg, "entry 4") || !strings.Contains(msg, "urn:uuid:last") {
				t.Errorf("the failure does not name entry 4 and its fullUrl: %s", msg)
			}
			if at(r.doc, "issue", 0, "expression", 0) == nil || !strings.HasPrefix(at(r.doc, "issue", 0, "expression", 0).(string), "Bundle.entry[4]") {
				t.Errorf("expression %v, want Bundle.entry[4]…", at(r.doc, "issue", 0, "expression"))
			}
			if n := e.total("/fhir/Patient?family=Atomic"); n != 0 {
				t.Errorf("%d Patients of the failed transaction were stored", n)
			}
			if n := e.total("/fhir/Observation?code:text=atomic"); n != 0 {
				t.Errorf("%d Observations of the failed transaction were stored", n)
			}
			keep := e.must(200, get("/fhir/Patient/keep")).doc
			if at(keep, "name", 0, "family") != "Before" || at(keep, "meta", "versionId") != "1" {
				t.Errorf("the update was kept: %v", keep)
			}
			e.must(200, get("/fhir/Patient/gone"))
			if n := e.total("/fhir/Patient/keep/_history"); n != 1 {
				t.Errorf("history of Patient/keep has %d versions, want 1", n)
			}
		})
	}
}

// The writes of a committed transaction reach the caches after the commit: an
// AccessPolicy and a Client written in one transaction at / let the client in at once.
func TestTransactionCommitHooks(t *testing.T) { forEachBackend(t, testTransactionCommitHooks) }

func testTransactionCommitHooks(t *testing.T) {
	e := newEnv(t)
	e.must(401, as("txapp", "txapp-secret", get("/fhir/Patient")))
	body := bundleBody(t, "transaction",
		txEntry{method: "PUT", url: "Client/txapp", resource: `{"resourceType":"Client","secret":"txapp-secret","grant_types":["basic"]}`},
		txEntry{method: "PUT", url: "AccessPolicy/txapp", resource: `{"resourceType":"AccessPolicy","engine":"allow","link":[{"resourceType":"Client","id":"txapp"}]}`},
	)
	r := e.must(200, post("/", body))
	if entryStatus(r, 0) != "201 Created" || entryStatus(r, 1) != "201 Created" {
		t.Fatalf("statuses %q %q: %s", entryStatus(r, 0), entryStatus(r, 1), r.raw)
	}
	if at(r.doc, "entry", 0, "resource", "secret") != nil {
		t.Error("the Client's secret is in the answer")
	}
	e.must(200, as("txapp", "txapp-secret", get("/fhir/Patient")))

	// Under /fhir, fhirbox's own types are not served: the entry is a 404.
	r = e.must(404, post("/fhir", bundleBody(t, "transaction",
		txEntry{method: "PUT", url: "Client/other", resource: `{"resourceType":"Client","secret":"x-secret","grant_types":["basic"]}`})))
	if !strings.Contains(outcomeText(t, r), "entry 0") {
		t.Errorf("own type under /fhir: %s", r.raw)
	}
}

// ifNoneExist inside a transaction: a match is answered 200 and the entry's fullUrl
// resolves to it; no match creates. A conditional reference resolves to its one match;
// none or several fail the transaction with 412 naming the reference
// (conformance F6 and F43).
func TestTransactionConditional(t *testing.T) { forEachBackend(t, testTransactionConditional) }

func testTransactionConditional(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/known", `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"1"}]}`))
	e.must(201, put("/fhir/Patient/twin1", `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"2"}]}`))
	e.must(201, put("/fhir/Patient/twin2", `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"2"}]}`))
	body := bundleBody(t, "transaction",
		txEntry{fullURL: "urn:uuid:p1", method: "POST", url: "Patient", resource: `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"1"}]}`,
			extra: map[string]string{"ifNoneExist": "identifier=urn:sys|1"}},
		txEntry{fullURL: "urn:uuid:p3", method: "POST", url: "Patient", resource: `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"3"}]}`,
			extra: map[string]string{"ifNoneExist": "identifier=urn:sys|3"}},
		txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"c1"},"subject":{"reference":"urn:uuid:p1"}}`},
		txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"c3"},"subject":{"reference":"urn:uuid:p3"}}`},
		txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"cr"},"subject":{"reference":"Patient?identifier=urn:sys|1"}}`},
	)
	r := e.must(200, post("/fhir", body))
	if s := entryStatus(r, 0); s != "200 OK" {
		t.Errorf("matched ifNoneExist: %q, want 200 OK", s)
	}
	if id := entryIDs(r)[0]; id != "known" {
		t.Errorf("matched ifNoneExist answers %q, want known", id)
	}
	if s := entryStatus(r, 1); s != "201 Created" {
		t.Errorf("unmatched ifNoneExist: %q, want 201 Created", s)
	}
	ids := entryIDs(r)
	for i, want := range map[int]string{2: "Patient/known", 3: "Patient/" + ids[1], 4: "Patient/known"} {
		if got := at(r.doc, "entry", i, "resource", "subject", "reference"); got != want {
			t.Errorf("entry %d subject %v, want %s", i, got, want)
		}
	}
	if n := e.total("/fhir/Patient?identifier=urn:sys|3"); n != 1 {
		t.Errorf("%d Patients with identifier 3, want 1", n)
	}

	for _, tt := range []struct{ ref, want string }{
		{"Patient?identifier=urn:sys|2", "more than one"},
		{"Patient?identifier=urn:sys|none", "matches no"},
	} {
		r := e.must(412, post("/fhir", bundleBody(t, "transaction",
			txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Condref"}]}`},
			txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"` + tt.ref + `"}}`})))
		if msg := outcomeText(t, r); !strings.Contains(msg, tt.want) || !strings.Contains(msg, tt.ref) || !strings.Contains(msg, "entry 1") {
			t.Errorf("%s: %s", tt.ref, msg)
		}
		if n := e.total("/fhir/Patient?family=Condref"); n != 0 {
			t.Errorf("%s: the transaction's Patient was stored", tt.ref)
		}
	}
}

// Entries run in the spec's order, whatever their order in the Bundle: DELETE, POST,
// PUT, GET (conformance F42); the answer keeps the Bundle's order.
func TestTransactionOrder(t *testing.T) { forEachBackend(t, testTransactionOrder) }

func testTransactionOrder(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/old", `{"resourceType":"Patient","name":[{"family":"Old"}]}`))
	body := bundleBody(t, "transaction",
		txEntry{method: "GET", url: "Patient?family=Order"},
		txEntry{method: "GET", url: "Patient/p1"},
		txEntry{method: "PUT", url: "Patient/p1", resource: `{"resourceType":"Patient","name":[{"family":"Order"}]}`},
		txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Order"}]}`},
		txEntry{method: "GET", url: "Patient/old/_history"},
		txEntry{method: "DELETE", url: "Patient/old"},
	)
	r := e.must(200, post("/fhir", body))
	want := []string{"200 OK", "200 OK", "201 Created", "201 Created", "200 OK", "200 OK"}
	for i, w := range want {
		if s := entryStatus(r, i); s != w {
			t.Errorf("entry %d: %q, want %q", i, s, w)
		}
	}
	if n := at(r.doc, "entry", 0, "resource", "total"); n != 2.0 {
		t.Errorf("the search ran before the writes: total %v, want 2", n)
	}
	if at(r.doc, "entry", 1, "resource", "name", 0, "family") != "Order" {
		t.Errorf("the read ran before the PUT: %v", at(r.doc, "entry", 1))
	}
	if n := at(r.doc, "entry", 4, "resource", "total"); n != 2.0 {
		t.Errorf("the history ran before the DELETE: total %v, want 2", n)
	}
	e.must(410, get("/fhir/Patient/old"))
}

// A batch applies each entry on its own: failures are answered in their entries, with
// an OperationOutcome, and do not stop the others (conformance F45). An entry may not
// refer to another by urn:uuid. A PATCH entry is read as a patch (an empty FHIRPath
// Patch is a 400) and a conditional update that matches nothing creates.
func TestBatchMixed(t *testing.T) { forEachBackend(t, testBatchMixed) }

func testBatchMixed(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/b1", `{"resourceType":"Patient"}`))
	e.must(201, put("/fhir/Patient/b2", `{"resourceType":"Patient"}`))
	body := bundleBody(t, "batch",
		txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Batch"}]}`},
		txEntry{method: "PUT", url: "Patient/b1", resource: `{"resourceType":"Patient","id":"b1"}`, extra: map[string]string{"ifMatch": `W/"7"`}},
		txEntry{method: "GET", url: "Patient/missing"},
		txEntry{fullURL: "urn:uuid:x", method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:y"}}`},
		txEntry{method: "GET", url: "Patient/b1", extra: map[string]string{"ifNoneMatch": `W/"1"`}},
		txEntry{method: "DELETE", url: "Patient/b1"},
		txEntry{method: "PATCH", url: "Patient/b1", resource: `{"resourceType":"Parameters"}`},
		txEntry{method: "PUT", url: "Patient?identifier=x", resource: `{"resourceType":"Patient"}`},
		txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Batch"}]}`},
		txEntry{method: "GET", url: "Patient/b2", extra: map[string]string{"ifModifiedSince": "Fri, 01 Jan 2100 00:00:00 GMT"}},
		txEntry{method: "HEAD", url: "Patient/b2", extra: map[string]string{"ifModifiedSince": "2001-01-01T00:00:00Z"}},
	)
	r := e.must(200, post("/fhir", body))
	if at(r.doc, "type") != "batch-response" {
		t.Fatalf("type %v: %s", at(r.doc, "type"), r.raw)
	}
	want := []string{"201 Created", "412 Precondition Failed", "404 Not Found", "400 Bad Request", "304 Not Modified", "200 OK",
		"400 Bad Request", "201 Created", "201 Created", "304 Not Modified", "200 OK"}
	for i, w := range want {
		if s := entryStatus(r, i); s != w {
			t.Errorf("entry %d: %q, want %q", i, s, w)
		}
		if strings.HasPrefix(w, "4") && w != "304 Not Modified" {
			if at(r.doc, "entry", i, "response", "outcome", "issue", 0, "diagnostics") == nil {
				t.Errorf("entry %d has no outcome: %v", i, at(r.doc, "entry", i))
			}
		}
	}
	if at(r.doc, "entry", 10, "resource") != nil || at(r.doc, "entry", 10, "response", "etag") != `W/"1"` {
		t.Errorf("HEAD entry: %v", at(r.doc, "entry", 10))
	}
	if n := e.total("/fhir/Patient?family=Batch"); n != 2 {
		t.Errorf("%d Patients created by the batch, want 2", n)
	}
	if d, _ := at(r.doc, "entry", 3, "response", "outcome", "issue", 0, "diagnostics").(string); !strings.Contains(d, "transaction") {
		t.Errorf("urn reference in a batch: %q", d)
	}
}

// Every entry is decided by the policies as its own request would be
// (conformance F44): a client that may do everything to Patients but delete them gets a 403 for a
// transaction with a delete, naming the entry, and nothing is written; in a batch only
// that entry is refused. The POST to the base needs a policy of its own.
func TestBundlePolicies(t *testing.T) { forEachBackend(t, testBundlePolicies) }

func testBundlePolicies(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/nodel", `{"secret":"nodel-secret","grant_types":["basic"]}`))
	e.must(201, put("/fhir/Patient/d1", `{"resourceType":"Patient"}`))
	e.must(201, yamlPut("/AccessPolicy/nodel-patients", `
engine: matcho
link: [{resourceType: Client, id: nodel}]
matcho:
  request-method: {$enum: [get, post, put]}
  uri: '#^/fhir/Patient'
`))
	tx := bundleBody(t, "transaction",
		txEntry{fullURL: "urn:uuid:n1", method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Denied"}]}`},
		txEntry{method: "DELETE", url: "Patient/d1"},
	)
	r := e.must(403, as("nodel", "nodel-secret", post("/fhir", tx)))
	if !strings.Contains(outcomeText(t, r), "POST /fhir") {
		t.Errorf("the POST to the base: %s", r.raw)
	}
	e.must(201, yamlPut("/AccessPolicy/nodel-base", `
engine: matcho
link: [{resourceType: Client, id: nodel}]
matcho: {request-method: post, uri: /fhir}
`))
	r = e.must(403, as("nodel", "nodel-secret", post("/fhir", tx)))
	if msg := outcomeText(t, r); !strings.Contains(msg, "entry 1") || !strings.Contains(msg, "DELETE /fhir/Patient/d1") {
		t.Errorf("denied entry: %s", msg)
	}
	if n := e.total("/fhir/Patient?family=Denied"); n != 0 {
		t.Error("the denied transaction wrote its create")
	}
	r = e.must(401, anon(post("/fhir", tx)))
	batch := strings.Replace(tx, `"transaction"`, `"batch"`, 1)
	batch = strings.Replace(batch, `"fullUrl":"urn:uuid:n1",`, "", 1)
	r = e.must(200, as("nodel", "nodel-secret", post("/fhir", batch)))
	if entryStatus(r, 0) != "201 Created" || entryStatus(r, 1) != "403 Forbidden" {
		t.Errorf("batch statuses %q %q: %s", entryStatus(r, 0), entryStatus(r, 1), r.raw)
	}
	e.must(200, get("/fhir/Patient/d1"))
	// A conditional reference is a search the caller must be allowed.
	r = e.must(403, as("nodel", "nodel-secret", post("/fhir", bundleBody(t, "transaction",
		txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","generalPractitioner":[{"reference":"Practitioner?name=x"}]}`}))))
	if msg := outcomeText(t, r); !strings.Contains(msg, "entry 0") || !strings.Contains(msg, "GET /fhir/Practitioner?name=x") {
		t.Errorf("conditional reference without the search allowed: %s", msg)
	}
}

// Malformed Bundles, and Bundles past the entry limit, are 400s that say what is wrong;
// nothing is written.
func TestBundleRefused(t *testing.T) { forEachBackend(t, testBundleRefused) }

func testBundleRefused(t *testing.T) {
	e := newEnv(t, withBundleMax(3))
	ok := txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Refused"}]}`}
	for _, tt := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"not a Bundle", `{"resourceType":"Patient"}`, 400, "not a \"Patient\""},
		{"searchset", `{"resourceType":"Bundle","type":"searchset"}`, 400, "not \"searchset\""},
		{"entry not a list", `{"resourceType":"Bundle","type":"batch","entry":{}}`, 400, "must be a list"},
		{"no request", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]}`, 400, "entry 0"},
		{"bad method", bundleBody(t, "transaction", ok, txEntry{method: "TRACE", url: "Patient"}), 400, "entry 1"},
		{"POST without resource", bundleBody(t, "transaction", txEntry{method: "POST", url: "Patient"}), 400, "needs a resource"},
		{"GET with resource", bundleBody(t, "transaction", txEntry{method: "GET", url: "Patient/x", resource: `{"resourceType":"Patient"}`}), 400, "takes no resource"},
		{"foreign absolute URL", bundleBody(t, "transaction", txEntry{method: "GET", url: "http://elsewhere/Patient/x"}), 400, "not under this server's base"},
		{"operation", bundleBody(t, "transaction", txEntry{method: "GET", url: "Patient/$everything"}), 400, "not supported"},
		{"unknown request element", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient","ifFoo":"x"}}]}`, 400, "ifFoo"},
		{"duplicate fullUrl", bundleBody(t, "transaction", txEntry{fullURL: "urn:uuid:d", method: "POST", url: "Patient", resource: `{"resourceType":"Patient"}`},
			txEntry{fullURL: "urn:uuid:d", method: "POST", url: "Patient", resource: `{"resourceType":"Patient"}`}), 400, "same fullUrl"},
		{"one resource written twice", bundleBody(t, "transaction", ok, txEntry{method: "PUT", url: "Patient/w", resource: `{"resourceType":"Patient"}`},
			txEntry{method: "DELETE", url: "Patient/w"}), 400, "also written by entry 1"},
		{"too many entries", bundleBody(t, "transaction", ok, ok, ok, ok), 400, "limit is 3"},
		{"empty FHIRPath Patch", bundleBody(t, "transaction", ok, txEntry{method: "PATCH", url: "Patient/x", resource: `{"resourceType":"Parameters"}`}), 400, "entry 1"},
		{"conditional delete with an unknown criterion", bundleBody(t, "transaction", ok, txEntry{method: "DELETE", url: "Patient?nosuch=x"}), 400, "nosuch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.in(t).must(tt.status, post("/fhir", tt.body))
			if msg := outcomeText(t, r); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
		})
	}
	if n := e.total("/fhir/Patient?family=Refused"); n != 0 {
		t.Errorf("%d Patients of refused Bundles were stored", n)
	}
	// The body limit applies as to every write.
	big := newEnv(t, withMaxBody(200))
	big.must(413, post("/fhir", bundleBody(t, "batch", ok, ok, ok)))
}

// A transaction in YAML, answered in YAML; Prefer: return= applies to every entry.
func TestBundleYAMLAndPrefer(t *testing.T) { forEachBackend(t, testBundleYAMLAndPrefer) }

func testBundleYAMLAndPrefer(t *testing.T) {
	e := newEnv(t)
	body := `resourceType: Bundle
type: transaction
entry:
- fullUrl: urn:uuid:y1
  request: {method: POST, url: Patient}
  resource: {resourceType: Patient, name: [{family: Yaml}]}
- request: {method: POST, url: Observation}
  resource:
    resourceType: Observation
    status: final
    code: {text: yaml}
    subject: {reference: "urn:uuid:y1"}
`
	r := e.must(200, post("/fhir", body, "Content-Type", "text/yaml", "Accept", "text/yaml"))
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/yaml") || !strings.Contains(string(r.raw), "transaction-response") {
		t.Fatalf("not a YAML transaction-response: %s %s", r.header.Get("Content-Type"), r.raw)
	}
	if n := e.total("/fhir/Observation?subject:Patient.family=Yaml"); n != 1 {
		t.Errorf("%d Observations of the YAML patient, want 1", n)
	}
	for _, tt := range []struct {
		prefer string
		check  func(en any) error
	}{
		{"return=minimal", func(en any) error {
			if at(en, "resource") != nil || at(en, "response", "outcome") != nil {
				return fmt.Errorf("minimal entry has a body: %v", en)
			}
			return nil
		}},
		{"return=OperationOutcome", func(en any) error {
			if at(en, "resource") != nil || at(en, "response", "outcome", "resourceType") != "OperationOutcome" {
				return fmt.Errorf("no outcome: %v", en)
			}
			return nil
		}},
		{"return=representation", func(en any) error {
			if at(en, "resource", "resourceType") != "Patient" {
				return fmt.Errorf("no resource: %v", en)
			}
			return nil
		}},
	} {
		r := e.must(200, post("/fhir", bundleBody(t, "batch", txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient"}`}), "Prefer", tt.prefer))
		if err := tt.check(at(r.doc, "entry", 0)); err != nil {
			t.Errorf("%s: %v", tt.prefer, err)
		}
		if at(r.doc, "entry", 0, "response", "location") == nil {
			t.Errorf("%s: no location", tt.prefer)
		}
	}
}

// The CapabilityStatement of each base lists transaction and batch at rest level.
func TestBundleCapability(t *testing.T) { forEachBackend(t, testBundleCapability) }

func testBundleCapability(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/fhir/metadata", "/metadata"} {
		cs := e.must(200, get(path))
		got := map[string]bool{}
		list, _ := at(cs.doc, "rest", 0, "interaction").([]any)
		for _, in := range list {
			code, _ := at(in, "code").(string)
			got[code] = true
		}
		if !got["transaction"] || !got["batch"] {
			t.Errorf("%s: rest interactions %v lack transaction or batch", path, list)
		}
	}
}
