package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/app"
)

func withCORS(origins ...string) envOption {
	return func(c *app.Config) { c.Server.CORSOrigins = origins }
}

// Issue 12 item 15: every answer, errors included, carries nosniff; every answer but the
// public discovery documents carries Cache-Control: no-store; HEAD answers every GET
// route with GET's status and headers and no body.
func TestResponseHeaders(t *testing.T) { forEachBackend(t, testResponseHeaders) }

func testResponseHeaders(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/p1", `{"resourceType":"Patient","name":[{"family":"Hd"}]}`))
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	tests := []struct {
		name      string
		r         req
		status    int
		cacheable bool // may be cached: no no-store
	}{
		{"read", get("/Patient/p1"), 200, false},
		{"read fhir", get("/fhir/Patient/p1"), 200, false},
		{"read yaml", get("/Patient/p1?_format=yaml"), 200, false},
		{"read not modified", get("/Patient/p1", "If-None-Match", `W/"1"`), 304, false},
		{"vread", get("/fhir/Patient/p1/_history/1"), 200, false},
		{"search", get("/fhir/Patient?family=hd"), 200, false},
		{"search root", get("/Patient"), 200, false},
		{"history", get("/Patient/p1/_history"), 200, false},
		{"type history", get("/fhir/Patient/_history"), 200, false},
		{"POST _search", post("/fhir/Patient/_search", "family=hd", form...), 200, false},
		{"create", post("/fhir/Patient", `{"resourceType":"Patient"}`), 201, false},
		{"update", put("/Patient/p2", `{"resourceType":"Patient"}`), 201, false},
		{"delete", del("/Patient/p2"), 200, false},
		{"own type", get("/Client/" + adminID), 200, false},
		{"health", get("/health"), 200, false},
		{"metrics", get("/metrics"), 200, false},
		{"metadata", get("/metadata"), 200, true},
		{"metadata fhir", get("/fhir/metadata"), 200, true},
		{"jwks", get("/.well-known/jwks.json"), 200, true},
		{"discovery", get("/.well-known/openid-configuration"), 200, true},
		{"token error", post("/auth/token", "grant_type=nope", form...), 400, false},
		{"not found", get("/fhir/Patient/nope"), 404, false},
		{"unknown type", get("/fhir/Spaceship"), 404, false},
		{"no route", get("/a/b/c/d/e/f"), 404, false},
		{"anonymous", anon(get("/fhir/Patient/p1")), 401, false},
		{"not acceptable", get("/Patient/p1", "Accept", "application/xml"), 406, false},
		{"bad body", put("/Patient/p3", `{`), 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.in(t).must(tt.status, tt.r)
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			cc := r.header.Get("Cache-Control")
			if tt.cacheable && strings.Contains(cc, "no-store") {
				t.Errorf("Cache-Control %q on a public document", cc)
			}
			if !tt.cacheable && cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
			if tt.r.method != http.MethodGet {
				return
			}
			h := tt.r
			h.method = http.MethodHead
			hr := e.in(t).do(h)
			if hr.status != r.status {
				t.Fatalf("HEAD: status %d, GET %d", hr.status, r.status)
			}
			if len(hr.raw) != 0 {
				t.Errorf("HEAD answered a body: %s", hr.raw)
			}
			same := []string{"X-Content-Type-Options", "Cache-Control", "ETag", "Last-Modified", "Location", "WWW-Authenticate"}
			if r.status < 400 {
				// Error answers to HEAD are headers only (no Content-Type for no body).
				same = append(same, "Content-Type", "Content-Length")
			}
			for _, k := range same {
				if hr.header.Get(k) != r.header.Get(k) {
					t.Errorf("HEAD %s %q, GET %q", k, hr.header.Get(k), r.header.Get(k))
				}
			}
		})
	}
}

// CORS: no CORS headers unless origins are configured, and then for exactly those
// origins; a preflight from one of them is answered without credentials (it never
// reaches the authorize middleware).
func TestCORS(t *testing.T) { forEachBackend(t, testCORS) }

func testCORS(t *testing.T) {
	const app = "https://app.example"
	preflight := func(path, origin string) req {
		return anon(req{method: http.MethodOptions, path: path, hdr: []string{"Origin", origin,
			"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "authorization,content-type"}})
	}
	off := newEnv(t)
	off.must(201, put("/Patient/p1", `{"resourceType":"Patient"}`))
	for _, r := range []req{get("/fhir/Patient/p1", "Origin", app), anon(get("/fhir/Patient/p1", "Origin", app)), preflight("/fhir/Patient/p1", app)} {
		got := off.do(r)
		for k := range got.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("without configured origins, %s %s answers %s: %v", r.method, r.path, k, got.header[k])
			}
		}
	}

	on := newEnv(t, withCORS(app, "http://localhost:3000"))
	on.must(201, put("/Patient/p1", `{"resourceType":"Patient"}`))
	tests := []struct {
		name   string
		r      req
		status int
		allow  string // Access-Control-Allow-Origin wanted, "" for none
	}{
		{"allowed origin", get("/fhir/Patient/p1", "Origin", app), 200, app},
		{"second origin", get("/fhir/Patient/p1", "Origin", "http://localhost:3000"), 200, "http://localhost:3000"},
		{"error to allowed origin", anon(get("/fhir/Patient/p1", "Origin", app)), 401, app},
		{"other origin", get("/fhir/Patient/p1", "Origin", "https://evil.example"), 200, ""},
		{"subdomain", get("/fhir/Patient/p1", "Origin", "https://x.app.example"), 200, ""},
		{"suffix", get("/fhir/Patient/p1", "Origin", "https://app.example.evil.example"), 200, ""},
		{"other scheme", get("/fhir/Patient/p1", "Origin", "http://app.example"), 200, ""},
		{"other port", get("/fhir/Patient/p1", "Origin", "http://localhost:3001"), 200, ""},
		{"null", get("/fhir/Patient/p1", "Origin", "null"), 200, ""},
		{"no origin", get("/fhir/Patient/p1"), 200, ""},
		{"preflight", preflight("/fhir/Patient/p1", app), 204, app},
		{"preflight token", preflight("/auth/token", app), 204, app},
		{"preflight other origin", preflight("/fhir/Patient/p1", "https://evil.example"), 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := on.in(t).must(tt.status, tt.r)
			if got := r.header.Get("Access-Control-Allow-Origin"); got != tt.allow {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.allow)
			}
			if r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials allowed: fhirbox sends no cookies")
			}
			if tt.allow == "" {
				return
			}
			if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary %v lacks Origin", r.header.Values("Vary"))
			}
			if tt.r.method == http.MethodOptions {
				if m := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "PUT") {
					t.Errorf("Access-Control-Allow-Methods %q", m)
				}
				if h := strings.ToLower(r.header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") || !strings.Contains(h, "content-type") {
					t.Errorf("Access-Control-Allow-Headers %q", h)
				}
			} else if !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "ETag") {
				t.Errorf("Access-Control-Expose-Headers %q lacks ETag", r.header.Get("Access-Control-Expose-Headers"))
			}
		})
	}
}

// Policies decide HEAD as they decide GET: HEAD tells what GET tells but the body
// (existence, ETag, Last-Modified, length), so a policy that allows or denies get must
// do the same for head.
func TestHeadDecidedLikeGet(t *testing.T) { forEachBackend(t, testHeadDecidedLikeGet) }

func testHeadDecidedLikeGet(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/reader", `{"secret":"reader-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/reader-get", "engine: matcho\nlink: [{resourceType: Client, id: reader}]\nmatcho: {request-method: get}\n"))
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	reader := func(r req) req { return as("reader", "reader-secret", r) }
	for _, p := range []string{"/fhir/Patient/p1", "/fhir/Patient", "/fhir/Patient/p1/_history"} {
		e.must(200, reader(get(p)))
		e.must(200, reader(req{method: http.MethodHead, path: p}))
	}
	e.must(403, reader(del("/fhir/Patient/p1")))
}
