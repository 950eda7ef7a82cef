package server_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/format"
)

// conformance F14: _format overrides Accept; an unusable Accept is 406, an unusable
// Content-Type 415.
func TestContentNegotiation(t *testing.T) { forEachBackend(t, testContentNegotiation) }

func testContentNegotiation(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/n", strings.Replace(patientJSON, `"pat-1"`, `"n"`, 1)))
	tests := []struct {
		name   string
		r      req
		status int
		ctype  string
	}{
		{"default on /", get("/Patient/n"), 200, "application/json"},
		{"default on /fhir", get("/fhir/Patient/n"), 200, "application/fhir+json"},
		{"Accept yaml", get("/Patient/n", "Accept", "text/yaml"), 200, "text/yaml"},
		{"Accept fhir+json", get("/Patient/n", "Accept", "application/fhir+json"), 200, "application/fhir+json"},
		{"Accept with q", get("/Patient/n", "Accept", "text/html;q=0.9, text/yaml;q=0.5"), 200, "text/yaml"},
		{"Accept any", get("/Patient/n", "Accept", "*/*"), 200, "application/json"},
		{"_format beats Accept", get("/Patient/n?_format=json", "Accept", "text/yaml"), 200, "application/json"},
		{"_format yaml", get("/Patient/n?_format=yaml", "Accept", "application/json"), 200, "text/yaml"},
		{"_format mime", get("/Patient/n?_format=application/fhir%2Bjson"), 200, "application/fhir+json"},
		{"Accept unusable", get("/Patient/n", "Accept", "application/xml"), 406, ""},
		{"_format unusable", get("/Patient/n?_format=xml"), 406, ""},
		{"Content-Type unusable", put("/Patient/n", patientJSON, "Content-Type", "application/xml"), 415, ""},
		{"Content-Type malformed", put("/Patient/n", patientJSON, "Content-Type", "a/b/c;;"), 415, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.in(t).must(tt.status, tt.r)
			ct := r.header.Get("Content-Type")
			if tt.ctype != "" && !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
			}
			if tt.status >= 400 {
				outcomeText(t, r)
			}
		})
	}
}

// YAML in, YAML out: the document survives both ways, dates stay strings.
func TestYAMLRoundTrip(t *testing.T) { forEachBackend(t, testYAMLRoundTrip) }

func testYAMLRoundTrip(t *testing.T) {
	e := newEnv(t)
	body := "resourceType: Client\nid: myapp\nsecret: app-secret\ngrant_types:\n  - client_credentials\nbirth: 2020-01-01\nflag: 'true'\n"
	e.must(201, req{method: http.MethodPut, path: "/Client/myapp", body: body, hdr: []string{"Content-Type", "text/yaml"}})
	r := e.must(200, get("/Client/myapp", "Accept", "text/yaml"))
	doc, err := format.DecodeYAML(r.raw)
	if err != nil {
		t.Fatalf("YAML response does not parse: %v\n%s", err, r.raw)
	}
	if doc["birth"] != "2020-01-01" || doc["flag"] != "true" || at(doc, "grant_types", 0) != "client_credentials" {
		t.Errorf("YAML round trip changed the document:\n%s", r.raw)
	}
	// Secrets are hashed at rest and never returned, in either format.
	if strings.Contains(string(r.raw), "secret:") || strings.Contains(string(r.raw), "app-secret") {
		t.Errorf("secret returned:\n%s", r.raw)
	}
	oo := e.must(400, req{method: http.MethodPut, path: "/Client/myapp", body: "id: [", hdr: []string{"Content-Type", "text/yaml", "Accept", "text/yaml"}})
	if !strings.Contains(string(oo.raw), "OperationOutcome") {
		t.Errorf("YAML error is not an OperationOutcome in YAML:\n%s", oo.raw)
	}
}

// Secrets: stored as bcrypt hashes, never in reads, searches or history.
func TestSecretsNeverReturned(t *testing.T) { forEachBackend(t, testSecretsNeverReturned) }

func testSecretsNeverReturned(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/app", `{"resourceType":"Client","secret":"plain-secret-1"}`))
	e.must(201, put("/User/u", `{"resourceType":"User","password":"hunter2-hunter2"}`))
	for _, p := range []string{"/Client/app", "/Client", "/Client/app/_history", "/Client/app/_history/1", "/User/u", "/User", "/User/_history", "/Client/" + adminID} {
		r := e.must(200, get(p))
		for _, leak := range []string{"plain-secret-1", "hunter2", "$2a$", "$2b$", adminToken, `"secret"`, `"password"`} {
			if strings.Contains(string(r.raw), leak) {
				t.Errorf("%s returns %q: %s", p, leak, r.raw)
			}
		}
	}
	var stored string
	if err := e.store.SQL().QueryRow(`SELECT content->>'secret' FROM resource WHERE resource_type = 'Client' AND id = 'app'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$2") || strings.Contains(stored, "plain-secret-1") {
		t.Errorf("secret at rest is %q, want a bcrypt hash", stored)
	}
	// An update that omits the secret keeps the old one, so a client's read-modify-write
	// does not wipe it.
	e.must(200, put("/Client/app", `{"resourceType":"Client","description":"x"}`))
	var kept string
	if err := e.store.SQL().QueryRow(`SELECT content->>'secret' FROM resource WHERE resource_type = 'Client' AND id = 'app'`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	if kept != stored {
		t.Error("an update without secret dropped the stored hash")
	}
}

// Authentication: the API needs the admin's Basic credentials until policies exist;
// /health and /metadata are public. Wrong credentials are 401 with a challenge, and the
// answer is the same for an unknown client and a wrong secret.
func TestAuthentication(t *testing.T) { forEachBackend(t, testAuthentication) }

func testAuthentication(t *testing.T) {
	e := newEnv(t)
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	}
	tests := []struct {
		name   string
		path   string
		auth   string
		status int
	}{
		{"anonymous API", "/Patient", "", 401},
		{"anonymous health", "/health", "", 200},
		{"anonymous metadata", "/fhir/metadata", "", 200},
		{"admin", "/Patient", basic(adminID, adminToken), 200},
		{"wrong secret", "/Patient", basic(adminID, "nope"), 401},
		{"unknown client", "/Patient", basic("ghost", "nope"), 401},
		{"garbage basic", "/Patient", "Basic !!!", 401},
		{"other scheme", "/Patient", "Digest abc", 401},
	}
	var unknown, wrong string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.in(t).must(tt.status, req{method: http.MethodGet, path: tt.path, anonymous: true, hdr: []string{"Authorization", tt.auth}})
			if tt.status == 401 {
				if !strings.Contains(strings.Join(r.header.Values("WWW-Authenticate"), ","), `Basic realm="fhirbox"`) {
					t.Errorf("401 without a Basic challenge: %v", r.header)
				}
				msg := outcomeText(t, r)
				switch tt.name {
				case "wrong secret":
					wrong = msg
				case "unknown client":
					unknown = msg
				}
			}
		})
	}
	if unknown != wrong {
		t.Errorf("unknown client says %q, wrong secret says %q: they must not differ", unknown, wrong)
	}
	// Changing the admin's secret through the API takes effect at once.
	e.must(200, put("/Client/"+adminID, `{"resourceType":"Client","secret":"rotated-secret"}`))
	e.must(401, get("/Patient"))
	e.must(200, req{method: http.MethodGet, path: "/Patient", anonymous: true, hdr: []string{"Authorization", basic(adminID, "rotated-secret")}})
}

// Bodies past the limit are 413 and nothing is written.
func TestBodyLimit(t *testing.T) { forEachBackend(t, testBodyLimit) }

func testBodyLimit(t *testing.T) {
	e := newEnv(t, withMaxBody(4096))
	big := `{"resourceType":"Patient","text":{"div":"` + strings.Repeat("x", 5000) + `"}}`
	outcomeText(t, e.must(413, put("/Patient/big", big)))
	// Without Content-Length the reader still stops at the limit.
	r := req{method: http.MethodPut, path: "/Patient/big", body: big, hdr: []string{"Transfer-Encoding", "chunked"}}
	e.must(413, r)
	e.must(404, get("/Patient/big"))
	e.must(201, put("/Patient/small", `{"resourceType":"Patient"}`))
}

// /health reports the database; /metrics exposes request metrics by route pattern.
func TestHealthAndMetrics(t *testing.T) { forEachBackend(t, testHealthAndMetrics) }

func testHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	r := e.must(200, req{method: http.MethodGet, path: "/health", anonymous: true})
	if at(r.doc, "status") != "ok" {
		t.Errorf("health: %s", r.raw)
	}
	e.must(404, get("/Patient/x"))
	m := e.must(200, get("/metrics"))
	if !strings.Contains(string(m.raw), `fhirbox_http_requests_total{code="404",method="GET",route="/:type/:id"}`) {
		t.Errorf("metrics lack the 404 on /:type/:id:\n%.2000s", m.raw)
	}
	// The access log has the request but not the query string.
	e.must(200, get("/Patient?name=Secret-Name"))
	if strings.Contains(e.logs.String(), "Secret-Name") {
		t.Error("the access log contains a search parameter's value")
	}
	if !strings.Contains(e.logs.String(), `"route":"/:type"`) {
		t.Errorf("access log lacks the route: %.500s", e.logs.String())
	}
	e.store.Close()
	r = e.must(503, req{method: http.MethodGet, path: "/health", anonymous: true})
	if at(r.doc, "status") != "unavailable" {
		t.Errorf("health with the database closed: %s", r.raw)
	}
}

// TestContentLength: resources, bundles and outcomes go out with their length, over the
// wire, rather than chunked (net/http chunks any body over 2 KB that has none), in
// every format.
func TestContentLength(t *testing.T) { forEachBackend(t, testContentLength) }

func testContentLength(t *testing.T) {
	e := newEnv(t)
	doc := strings.Replace(string(readNDJSON(t, "patients.ndjson", 1)[0]), `"id":"`, `"id":"big","language":"`, 1)
	if len(doc) < 2048 {
		t.Fatalf("the Synthea patient has %d bytes; the test wants one over 2 KB", len(doc))
	}
	e.must(201, put("/Patient/big", doc))
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	for _, path := range []string{
		"/fhir/Patient/big", "/Patient/big?_format=yaml", "/Patient/big?_pretty=true",
		"/fhir/Patient/big/_history/1", "/fhir/Patient?_id=big", "/fhir/Patient/nothing",
	} {
		t.Run(path, func(t *testing.T) {
			rq, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
			rq.SetBasicAuth(adminID, adminToken)
			res, err := ts.Client().Do(rq)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.TransferEncoding) > 0 || res.ContentLength != int64(len(body)) {
				t.Errorf("status %d: Transfer-Encoding %v, Content-Length %d, body %d bytes", res.StatusCode, res.TransferEncoding, res.ContentLength, len(body))
			}
		})
	}
}
