package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

func withExport(o export.Options) envOption { return func(c *app.Config) { c.Export = o } }

// kickoff starts an export at path and returns the status path it names.
func (e *env) kickoff(r req) string {
	e.t.Helper()
	r.hdr = append(r.hdr, "Prefer", "respond-async")
	out := e.must(http.StatusAccepted, r)
	loc := out.header.Get("Content-Location")
	if !strings.HasPrefix(loc, testBase+"/fhir/$export-status/") {
		e.t.Fatalf("Content-Location %q", loc)
	}
	return strings.TrimPrefix(loc, testBase)
}

// runExports runs the queued export jobs to their end on e's instance.
func (e *env) runExports() {
	e.t.Helper()
	for {
		ran, err := e.app.Exports.RunOnce(context.Background())
		if err != nil {
			e.t.Fatalf("export job: %v", err)
		}
		if !ran {
			return
		}
	}
}

// exported fetches the manifest at status (200) and every file of its output, and
// returns the manifest and the ids of each type's resources, in file order.
func (e *env) exported(status string, as func(req) req) (export.Manifest, map[string][]string) {
	e.t.Helper()
	r := e.must(200, as(get(status)))
	var m export.Manifest
	if err := json.Unmarshal(r.raw, &m); err != nil {
		e.t.Fatalf("manifest: %v\n%s", err, r.raw)
	}
	ids := map[string][]string{}
	for _, f := range append(slices.Clone(m.Output), m.Error...) {
		fr := e.must(200, as(get(strings.TrimPrefix(f.URL, testBase))))
		if ct := fr.header.Get("Content-Type"); ct != export.NDJSON {
			e.t.Errorf("file %s: Content-Type %q", f.URL, ct)
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(fr.raw))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			var doc struct{ ResourceType, ID string }
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				e.t.Fatalf("file %s line %d: %v", f.URL, n+1, err)
			}
			if doc.ResourceType != f.Type {
				e.t.Errorf("file %s of %s holds a %s", f.URL, f.Type, doc.ResourceType)
			}
			ids[f.Type] = append(ids[f.Type], doc.ID)
			n++
		}
		if n != f.Count && f.Type != "OperationOutcome" {
			e.t.Errorf("file %s: %d lines, manifest says %d", f.URL, n, f.Count)
		}
	}
	return m, ids
}

func self(r req) req { return r }

// Kick-off → status (202, then 200) → manifest → files; _type and _since; what a
// kick-off refuses; another caller is told nothing (conformance E1–E7).
func TestExport(t *testing.T) { forEachBackend(t, testExport) }

func testExport(t *testing.T) {
	e := newEnv(t, withExport(export.Options{FileResources: 2}))
	for _, id := range []string{"p1", "p2", "p3"} {
		e.must(201, put("/fhir/Patient/"+id, `{"resourceType":"Patient","gender":"female"}`))
	}
	e.must(201, put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`))
	e.must(201, put("/fhir/Patient/gone", `{"resourceType":"Patient"}`))
	e.must(200, del("/fhir/Patient/gone"))

	// What a kick-off refuses.
	for _, tt := range []struct {
		r    req
		want string
	}{
		{get("/fhir/$export"), "respond-async"},
		{get("/fhir/$export?_type=Nope", "Prefer", "respond-async"), "Nope"},
		{get("/fhir/$export?_type=Client", "Prefer", "respond-async"), "Client"},
		{get("/fhir/$export?_since=yesterday", "Prefer", "respond-async"), "_since"},
		{get("/fhir/$export?_outputFormat=text/csv", "Prefer", "respond-async"), "_outputFormat"},
		{get("/fhir/$export?_typeFilter=Patient%3Fgender%3Dmale", "Prefer", "respond-async"), "_typeFilter"},
		{get("/fhir/$export?bogus=1", "Prefer", "respond-async"), "bogus"},
		{get("/fhir/Patient/$export?_type=Organization", "Prefer", "respond-async"), "compartment"},
	} {
		r := e.must(400, tt.r)
		if msg := outcomeText(t, r); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %q does not name %s", tt.r.path, msg, tt.want)
		}
	}

	status := e.kickoff(get("/fhir/$export?_type=Patient,Observation&_outputFormat=application/fhir%2Bndjson"))
	r := e.must(202, get(status))
	if r.header.Get("X-Progress") == "" || r.header.Get("Retry-After") == "" {
		t.Errorf("running status without X-Progress or Retry-After: %v", r.header)
	}
	e.runExports()
	m, ids := e.exported(status, self)
	if !m.RequiresAccessToken || m.TransactionTime == "" || !strings.HasSuffix(m.Request, "/fhir/$export?_type=Patient,Observation&_outputFormat=application/fhir%2Bndjson") {
		t.Errorf("manifest %+v", m)
	}
	// Three Patients in files of two; the deleted one is not exported.
	if !slices.Equal(ids["Patient"], []string{"p1", "p2", "p3"}) || !slices.Equal(ids["Observation"], []string{"o1"}) {
		t.Errorf("exported %v", ids)
	}
	if len(m.Output) != 3 || len(m.Error) != 0 {
		t.Errorf("files %+v, errors %+v", m.Output, m.Error)
	}

	// _since keeps what was written at or after it; the lenient kick-off ignores what
	// it cannot apply, and says so.
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	e.must(200, put("/fhir/Patient/p2", `{"resourceType":"Patient","gender":"male"}`))
	e.must(201, put("/fhir/Patient/p4", `{"resourceType":"Patient"}`))
	r = e.must(202, get("/fhir/$export?_since="+url.QueryEscape(since.Format(time.RFC3339Nano))+"&_elements=id",
		"Prefer", "respond-async, handling=lenient"))
	if !strings.Contains(string(r.raw), "_elements") {
		t.Errorf("lenient kick-off does not say what it ignored: %s", r.raw)
	}
	status2 := strings.TrimPrefix(r.header.Get("Content-Location"), testBase)
	e.runExports()
	if _, ids := e.exported(status2, self); len(ids) != 1 || !slices.Equal(ids["Patient"], []string{"p2", "p4"}) {
		t.Errorf("_since: %v", ids)
	}

	// A POSTed Parameters resource kicks off the same.
	status3 := e.kickoff(post("/fhir/$export", `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Observation"}]}`))
	e.runExports()
	if _, ids := e.exported(status3, self); len(ids) != 1 || len(ids["Observation"]) != 1 {
		t.Errorf("POST kick-off: %v", ids)
	}

	// Another caller, even one whose policies allow everything under /fhir, learns
	// nothing: 404 on the status, the files and DELETE.
	e.must(201, put("/Client/other", `{"secret":"other-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/other-fhir", `
engine: matcho
link: [{resourceType: Client, id: other}]
matcho: {uri: '#^/fhir/'}
`))
	other := func(r req) req { return as("other", "other-secret", r) }
	e.must(404, other(get(status)))
	e.must(404, other(get(strings.TrimPrefix(m.Output[0].URL, testBase))))
	e.must(404, other(del(status)))
	e.must(404, other(get("/fhir/$export-status/nosuchjob")))
	e.must(200, get(status))
	e.must(404, get(strings.TrimPrefix(m.Output[0].URL, testBase)+"9"))

	// DELETE removes the job and its files.
	e.must(202, del(status))
	e.must(404, get(status))
	e.must(404, get(strings.TrimPrefix(m.Output[0].URL, testBase)))
	e.must(404, del(status))

	// The CapabilityStatement names the three operations.
	caps := string(e.must(200, get("/fhir/metadata")).raw)
	for _, def := range []string{"OperationDefinition/export", "OperationDefinition/patient-export", "OperationDefinition/group-export"} {
		if !strings.Contains(caps, def) {
			t.Errorf("the CapabilityStatement lacks %s", def)
		}
	}

	// The routes beside it still work.
	e.must(200, get("/fhir/Patient/p1/_history"))
	e.must(200, get("/fhir/Group?_count=1"))
}

// A caller exports only the types its policies let it search: the others are named
// in the manifest's error file. With none allowed, the kick-off is refused.
func TestExportPolicies(t *testing.T) { forEachBackend(t, testExportPolicies) }

func testExportPolicies(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	e.must(201, put("/fhir/Practitioner/d1", `{"resourceType":"Practitioner"}`))
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	app := func(r req) req { return as("app", "app-secret", r) }
	e.must(403, app(get("/fhir/$export", "Prefer", "respond-async")))
	e.must(201, yamlPut("/AccessPolicy/app-export", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {uri: '#^/fhir/\$export'}
`))
	e.must(403, app(get("/fhir/$export?_type=Patient", "Prefer", "respond-async")))
	e.must(201, yamlPut("/AccessPolicy/app-patients", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, uri: /fhir/Patient}
`))
	status := e.in(t).kickoff(app(get("/fhir/$export?_type=Patient,Practitioner")))
	e.runExports()
	m, ids := e.exported(status, app)
	if !slices.Equal(ids["Patient"], []string{"p1"}) || ids["Practitioner"] != nil {
		t.Errorf("exported %v", ids)
	}
	if len(m.Error) != 1 || len(ids["OperationOutcome"]) != 1 {
		t.Fatalf("errors %+v", m.Error)
	}
	body := e.must(200, app(get(strings.TrimPrefix(m.Error[0].URL, testBase)))).raw
	if !strings.Contains(string(body), "Practitioner") {
		t.Errorf("error file %s", body)
	}
	// The admin's job is not app's, and app's is not the admin's.
	e.must(404, get(status))
}

// Group-level: the members and the resources of their compartments; patient-level:
// the compartment's types.
func TestExportGroup(t *testing.T) { forEachBackend(t, testExportGroup) }

func testExportGroup(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"p1", "p2", "p3"} {
		e.must(201, put("/fhir/Patient/"+id, `{"resourceType":"Patient"}`))
		e.must(201, put("/fhir/Observation/o-"+id, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+id+`"}}`))
	}
	// Referring to two members through two parameters: exported once.
	e.must(201, put("/fhir/Observation/both", `{"resourceType":"Observation","status":"final","code":{"text":"x"},
		"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Patient/p2"}]}`))
	e.must(201, put("/fhir/Practitioner/d1", `{"resourceType":"Practitioner"}`))
	e.must(201, put("/fhir/Group/g1", `{"resourceType":"Group","type":"person","actual":true,
		"member":[{"entity":{"reference":"Patient/p1"}},{"entity":{"reference":"Patient/p2"}}]}`))
	e.must(404, get("/fhir/Group/nope/$export", "Prefer", "respond-async"))

	status := e.kickoff(get("/fhir/Group/g1/$export?_type=Patient,Observation"))
	e.runExports()
	_, ids := e.exported(status, self)
	slices.Sort(ids["Observation"])
	if !slices.Equal(ids["Patient"], []string{"p1", "p2"}) || !slices.Equal(ids["Observation"], []string{"both", "o-p1", "o-p2"}) {
		t.Errorf("group export: %v", ids)
	}

	// Lenient: a type outside the compartment is left out, and the answer says so.
	r := e.must(202, get("/fhir/Patient/$export?_type=Patient,Practitioner", "Prefer", "respond-async, handling=lenient"))
	if !strings.Contains(string(r.raw), "Practitioner is not in the Patient compartment") {
		t.Errorf("lenient kick-off: %s", r.raw)
	}
	e.must(202, del(strings.TrimPrefix(r.header.Get("Content-Location"), testBase)))

	status = e.kickoff(get("/fhir/Patient/$export"))
	e.runExports()
	_, ids = e.exported(status, self)
	// Group is in the R4 Patient compartment (member); Practitioner is not.
	if len(ids["Patient"]) != 3 || len(ids["Observation"]) != 4 || ids["Practitioner"] != nil || len(ids["Group"]) != 1 {
		t.Errorf("patient export: %v", ids)
	}
}

// A job whose instance died (its lease ran out) is claimed by another and completes;
// the dead instance's files and renewals count for nothing. Finished jobs go with
// their files when their time is up.
func TestExportRestart(t *testing.T) { forEachBackend(t, testExportRestart) }

func testExportRestart(t *testing.T) {
	e := newEnv(t, withExport(export.Options{TTL: 50 * time.Millisecond}))
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	status := e.kickoff(get("/fhir/$export"))
	jobID := strings.TrimPrefix(status, "/fhir/$export-status/")
	ctx := context.Background()

	// "dead" claims the job, writes a file and dies: kill -9, no finish.
	now := time.Now()
	job, err := e.store.ClaimExportJob(ctx, "dead", now, now.Add(100*time.Millisecond), now.Add(time.Hour))
	if err != nil || job == nil || job.ID != jobID || job.Attempt != 1 {
		t.Fatalf("claim: %+v, %v", job, err)
	}
	if err := e.store.AddExportFile(ctx, &exportjob.File{JobID: jobID, Attempt: 1, Seq: 1, Type: "Patient", Count: 1, Content: []byte(`{"resourceType":"Patient","id":"stale"}` + "\n")}); err != nil {
		t.Fatal(err)
	}
	// While its lease holds, nobody else takes it.
	if ran, err := e.app.Exports.RunOnce(ctx); ran || err != nil {
		t.Fatalf("claimed a leased job: %v %v", ran, err)
	}
	e.must(202, get(status))
	time.Sleep(150 * time.Millisecond)
	e.runExports()
	_, ids := e.exported(status, self)
	if !slices.Equal(ids["Patient"], []string{"p1"}) {
		t.Errorf("after the takeover: %v", ids)
	}
	later := time.Now()
	if ok, err := e.store.RenewExportLease(ctx, jobID, "dead", 1, later, later, ""); ok || err != nil {
		t.Errorf("the dead instance renewed its lease: %v %v", ok, err)
	}
	if ok, err := e.store.FinishExportJob(ctx, jobID, "dead", 1, exportjob.Failed, nil, "x", later); ok || err != nil {
		t.Errorf("the dead instance finished the job: %v %v", ok, err)
	}
	e.must(200, get(status))

	// Past its TTL, the sweep removes it.
	time.Sleep(100 * time.Millisecond)
	if _, err := e.app.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	e.must(404, get(status))
	if _, err := e.store.ExportFile(ctx, jobID, 2, 1); err == nil {
		t.Error("the file outlived its job")
	}
}

// Two instances on one PostgreSQL claiming at once: each job is claimed once.
func TestExportTwoInstances(t *testing.T) { forEachBackend(t, testExportTwoInstances) }

func testExportTwoInstances(t *testing.T) {
	if backendOf(t) != testdb.Postgres {
		t.Skip("on PostgreSQL only: a SQLite file has one process")
	}
	dbURL := testdb.URL(t)
	a := newStoreEnv(t, storeEnv{url: dbURL})
	b := newStoreEnv(t, storeEnv{url: dbURL})
	a.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	const jobs = 20
	var statuses []string
	for range jobs {
		statuses = append(statuses, a.kickoff(get("/fhir/$export")))
	}
	ctx := context.Background()
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for i, st := range []app.Store{a.store, b.store, a.store, b.store} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				now := time.Now()
				job, err := st.ClaimExportJob(ctx, fmt.Sprint("claimer-", i), now, now.Add(time.Hour), now.Add(time.Hour))
				if err != nil {
					t.Error(err)
					return
				}
				if job == nil {
					return
				}
				mu.Lock()
				claimed[job.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}

	// Through the runners: a job kicked off on a is run by b, once, and served by both.
	status := a.kickoff(get("/fhir/$export"))
	b.runExports()
	if ran, _ := a.app.Exports.RunOnce(ctx); ran {
		t.Error("a ran a job b had finished")
	}
	_, ids := a.exported(status, self)
	if _, idsB := b.exported(status, self); !slices.Equal(ids["Patient"], []string{"p1"}) || !slices.Equal(idsB["Patient"], ids["Patient"]) {
		t.Errorf("a: %v, b: %v", ids, idsB)
	}
}

// A job reads as its caller: a patient-scoped token's Patient-level export holds that
// patient's compartment alone; a session closed before the job runs fails it.
func TestExportScoped(t *testing.T) { forEachBackend(t, testExportScoped) }

func testExportScoped(t *testing.T) {
	e := scopeEnv(t)
	e.must(201, yamlPut("/AccessPolicy/u1-export", "engine: matcho\nlink: [{resourceType: User, id: u1}]\nmatcho: {uri: '#^/fhir/\\$export'}\n"))
	tok := scopedToken(t, e, "patient/*.rs", "p1")
	bearer := func(r req) req {
		r.anonymous = true
		r.hdr = append(r.hdr, "Authorization", "Bearer "+tok)
		return r
	}
	status := e.kickoff(bearer(get("/fhir/Patient/$export?_type=Patient,Observation,Encounter")))
	e.runExports()
	_, ids := e.exported(status, bearer)
	slices.Sort(ids["Observation"])
	if !slices.Equal(ids["Patient"], []string{"p1"}) || !slices.Equal(ids["Observation"], []string{"o1", "o3", "o4"}) ||
		!slices.Equal(ids["Encounter"], []string{"e1"}) {
		t.Errorf("patient-scoped export: %v", ids)
	}

	// Signed out before the job runs: the job fails, and says why.
	status = e.kickoff(bearer(get("/fhir/$export?_type=Patient")))
	tok2 := scopedToken(t, e, "patient/*.rs", "p1") // the first session's status stays readable to u1
	e.must(200, bearer(del("/Session")))
	tok = tok2
	e.runExports()
	r := e.must(500, bearer(get(status)))
	if msg := outcomeText(t, r); !strings.Contains(msg, "session") {
		t.Errorf("failed job says %q", msg)
	}
}

// A group-level export is confined as its caller's reads are (conformance E9): a Group
// the caller could not GET is refused at the kick-off with that GET's answer, whichever
// policy allowed the kick-off itself; the walk reads the Group again as that GET, so a
// Group changed after the kick-off to members beyond the caller's reach is refused
// rather than walked; and the members' resources are those the caller reaches.
func TestExportGroupConfined(t *testing.T) { forEachBackend(t, testExportGroupConfined) }

func testExportGroupConfined(t *testing.T) {
	e := templateEnv(t)
	// u1 (for the scoped token) may do anything under /fhir again.
	e.must(201, yamlPut("/AccessPolicy/u1-fhir", "engine: matcho\nlink: [{resourceType: User, id: u1}]\nmatcho: {uri: '#^/fhir/'}\n"))
	// pat1x is patient p1 too, under the template, and an unconfined policy of its own
	// allows its kick-offs and its searches of Observation: neither decision carries the
	// compartment that a GET of a Group gets from the template.
	e.must(201, put("/User/pat1x", `{"password":"pat1x-password-long","fhirUser":{"reference":"Patient/p1"}}`))
	e.must(201, yamlPut("/AccessPolicy/pat1x-export", "engine: matcho\nlink: [{resourceType: User, id: pat1x}]\nmatcho: {request-method: get, uri: '#(/\\$export$|^/fhir/Observation$)'}\n"))
	group := func(members ...string) string {
		var ms []string
		for _, m := range members {
			ms = append(ms, `{"entity":{"reference":"Patient/`+m+`"}}`)
		}
		return `{"resourceType":"Group","type":"person","actual":true,"member":[` + strings.Join(ms, ",") + `]}`
	}
	e.must(201, put("/fhir/Group/g12", group("p1", "p2")))
	e.must(201, put("/fhir/Group/g2", group("p2")))
	login := func(user string) string {
		r := e.must(200, tokenForm(url.Values{"grant_type": {"password"}, "client_id": {"app"}, "client_secret": {"app-secret"},
			"username": {user}, "password": {user + "-password-long"}}))
		return r.doc["access_token"].(string)
	}
	// obs are the Observations of g12's members the caller reaches: pat1x searches
	// every Observation.
	callers := []struct {
		name string
		tok  string
		obs  []string
	}{
		{"patient scope", scopedToken(t, e, "patient/*.rs", "p1"), []string{"o1", "o3", "o4"}},
		{"compartment policy", login("pat1"), []string{"o1", "o3", "o4"}},
		{"compartment policy, kick-off allowed unconfined", login("pat1x"), []string{"o1", "o2", "o3", "o4"}},
	}
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			e := e.in(t)
			as := func(r req) req { return bearer(c.tok, r) }
			// The kick-off answers as the GET of the Group does.
			for _, g := range []string{"g2", "nope"} {
				read := e.do(as(get("/fhir/Group/" + g)))
				if read.status != 403 && read.status != 404 {
					t.Fatalf("GET Group/%s: %d, want a refusal", g, read.status)
				}
				r := e.do(as(get("/fhir/Group/"+g+"/$export", "Prefer", "respond-async")))
				if r.status != read.status || outcomeText(t, r) == "" {
					t.Errorf("kick-off on Group/%s: %d %s, want %d as its GET", g, r.status, r.raw, read.status)
				}
			}
			// g12 is in p1's compartment (member p1): exported, but only what the caller
			// reaches of its members' resources.
			status := e.kickoff(as(get("/fhir/Group/g12/$export?_type=Patient,Observation,Encounter")))
			e.runExports()
			m, ids := e.exported(status, as)
			slices.Sort(ids["Observation"])
			if !slices.Equal(ids["Patient"], []string{"p1"}) || !slices.Equal(ids["Observation"], c.obs) ||
				!slices.Equal(ids["Encounter"], []string{"e1"}) || len(m.Error) != 0 {
				t.Errorf("group export: %v, errors %v", ids, m.Error)
			}

			// Kicked off on g12, which then loses p1: the walk reads it as the caller's
			// GET would, refused, and exports none of its members' resources.
			status = e.kickoff(as(get("/fhir/Group/g12/$export?_type=Patient,Observation")))
			e.must(200, put("/fhir/Group/g12", group("p2")))
			defer e.must(200, put("/fhir/Group/g12", group("p1", "p2")))
			e.runExports()
			_, ids = e.exported(status, as)
			if len(ids["Patient"]) != 0 || len(ids["Observation"]) != 0 || len(ids["OperationOutcome"]) != 2 {
				t.Errorf("walk of a Group beyond the caller's reach: %v", ids)
			}
		})
	}
}

// A patient-level export is the Patient compartment of all patients (conformance E10):
// every Patient, and a resource of another of the compartment's types only when one of
// its compartment parameters refers to a Patient — each such resource once, in id
// order across pages; a system-level export has them all.
func TestExportPatientLevel(t *testing.T) { forEachBackend(t, testExportPatientLevel) }

func testExportPatientLevel(t *testing.T) {
	e := newEnv(t, withExport(export.Options{PageSize: 2}))
	all, want := map[string][]string{}, map[string][]string{}
	obs := func(refs string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"}` + refs + `}`
	}
	for _, tt := range []struct {
		path, doc string
		in        bool // in some Patient's compartment
	}{
		{"Patient/p1", `{"resourceType":"Patient"}`, true},
		{"Patient/p2", `{"resourceType":"Patient"}`, true},
		{"Patient/p3", `{"resourceType":"Patient","link":[{"other":{"reference":"Patient/p1"},"type":"seealso"}]}`, true},
		{"Practitioner/d1", `{"resourceType":"Practitioner"}`, false},
		{"Observation/o-subject", obs(`,"subject":{"reference":"Patient/p1"}`), true},
		{"Observation/o-performer", obs(`,"performer":[{"reference":"Patient/p2"}]`), true},
		{"Observation/o-both", obs(`,"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Patient/p2"},{"reference":"Patient/p1"}]`), true},
		{"Observation/o-none", obs(``), false},
		{"Observation/o-group", obs(`,"subject":{"reference":"Group/g-patients"}`), false},
		{"Observation/o-practitioner", obs(`,"performer":[{"reference":"Practitioner/d1"}]`), false},
		{"Encounter/e-patient", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"}}`, true},
		{"Encounter/e-none", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"}}`, false},
		{"Condition/c-asserter", `{"resourceType":"Condition","subject":{"reference":"Group/g-patients"},"asserter":{"reference":"Patient/p2"}}`, true},
		{"Condition/c-group", `{"resourceType":"Condition","subject":{"reference":"Group/g-patients"},"asserter":{"reference":"Practitioner/d1"}}`, false},
		{"CareTeam/ct-participant", `{"resourceType":"CareTeam","participant":[{"member":{"reference":"Patient/p2"}}]}`, true},
		{"CareTeam/ct-none", `{"resourceType":"CareTeam","participant":[{"member":{"reference":"Practitioner/d1"}}]}`, false},
		{"Group/g-patients", `{"resourceType":"Group","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p1"}}]}`, true},
		{"Group/g-practitioners", `{"resourceType":"Group","type":"practitioner","actual":true,"member":[{"entity":{"reference":"Practitioner/d1"}}]}`, false},
	} {
		e.must(201, put("/fhir/"+tt.path, tt.doc))
		typ, id, _ := strings.Cut(tt.path, "/")
		all[typ] = append(all[typ], id)
		if tt.in {
			want[typ] = append(want[typ], id)
		}
	}
	types := "_type=Patient,Practitioner,Observation,Encounter,Condition,CareTeam,Group"
	for _, level := range []struct {
		path string
		want map[string][]string
	}{
		{"/fhir/Patient/$export?" + strings.Replace(types, "Practitioner,", "", 1), want},
		{"/fhir/$export?" + types, all},
	} {
		status := e.kickoff(get(level.path))
		e.runExports()
		_, ids := e.exported(status, self)
		for typ, got := range ids {
			// In id order, as the walk pages: each once.
			if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
				t.Errorf("%s: %s not in id order, or repeated: %v", level.path, typ, got)
			}
		}
		for typ := range level.want {
			w := slices.Sorted(slices.Values(level.want[typ]))
			if !slices.Equal(ids[typ], w) {
				t.Errorf("%s: %s exported %v, want %v", level.path, typ, ids[typ], w)
			}
		}
		if len(ids) != len(level.want) {
			t.Errorf("%s: types %v", level.path, ids)
		}
	}
}
