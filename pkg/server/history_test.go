package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// histClock is a clock a little in the past (tokens and keys stay valid), on a whole
// hour, so that each write's lastUpdated is known to the test.
func histClock() *clock {
	return &clock{t: time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)}
}

// histEntries lists a history Bundle's entries as "Type/id/version METHOD".
func histEntries(r *resp) []string {
	var out []string
	entries, _ := at(r.doc, "entry").([]any)
	for _, en := range entries {
		full, _ := at(en, "fullUrl").(string)
		full = full[strings.LastIndex(full[:strings.LastIndex(full, "/")], "/")+1:]
		etag, _ := at(en, "response", "etag").(string)
		out = append(out, fmt.Sprint(full, "/", strings.Trim(strings.TrimPrefix(etag, "W/"), `"`), " ", at(en, "request", "method")))
	}
	return out
}

// histWrites makes the writes the history tests read, one minute apart from t0:
// +1 Patient/p1 created, +2 Observation/o1 created, +3 Patient/p1 updated,
// +4 Practitioner/d1 created, +5 Observation/o1 deleted, +6 Client/c1 created.
func histWrites(e *env, clk *clock) time.Time {
	t0 := clk.Now()
	for _, w := range []req{
		put("/fhir/Patient/p1", `{"resourceType":"Patient","gender":"male"}`),
		put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`),
		put("/fhir/Patient/p1", `{"resourceType":"Patient","gender":"female"}`),
		put("/fhir/Practitioner/d1", `{"resourceType":"Practitioner"}`),
		del("/fhir/Observation/o1"),
		put("/Client/c1", `{"secret":"c1-secret","grant_types":["basic"]}`),
	} {
		clk.Advance(time.Minute)
		if r := e.do(w); r.status >= 300 {
			e.t.Fatalf("%s %s: %d %s", w.method, w.path, r.status, r.raw)
		}
	}
	return t0
}

// conformance H1: GET [base]/_history lists the versions of every type served at the
// base, newest first, deletions included, as a history Bundle like the other levels'.
func TestSystemHistory(t *testing.T) { forEachBackend(t, testSystemHistory) }

func testSystemHistory(t *testing.T) {
	clk := histClock()
	e := newEnv(t, withClock(clk))
	histWrites(e, clk)

	r := e.must(200, get("/fhir/_history"))
	want := "Observation/o1/2 DELETE, Practitioner/d1/1 POST, Patient/p1/2 PUT, Observation/o1/1 POST, Patient/p1/1 POST"
	if got := strings.Join(histEntries(r), ", "); got != want {
		t.Errorf("/fhir/_history:\n got %s\nwant %s", got, want)
	}
	if at(r.doc, "type") != "history" || at(r.doc, "total") != 5.0 {
		t.Errorf("bundle type %v total %v", at(r.doc, "type"), at(r.doc, "total"))
	}
	if u := at(r.doc, "entry", 0, "fullUrl"); u != testBase+"/fhir/Observation/o1" {
		t.Errorf("fullUrl %v", u)
	}
	if at(r.doc, "entry", 0, "resource") != nil || at(r.doc, "entry", 0, "response", "status") != "204 No Content" {
		t.Errorf("deletion entry: %v", at(r.doc, "entry", 0))
	}
	if at(r.doc, "entry", 2, "resource", "gender") != "female" || at(r.doc, "entry", 4, "resource", "gender") != "male" {
		t.Errorf("versions' contents: %s", r.raw)
	}
	if s := link(r, "self"); s != testBase+"/fhir/_history" {
		t.Errorf("self link %q", s)
	}

	// At fhirbox's own base its own types are there too, secrets and hidden fields never.
	clk.Advance(time.Minute)
	e.must(201, put("/Client/cc", `{"secret":"cc-secret","grant_types":["client_credentials"]}`))
	clk.Advance(time.Minute)
	if r := token(e, url.Values{"grant_type": {"client_credentials"}, "client_id": {"cc"}, "client_secret": {"cc-secret"}}); r.status != 200 {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	r = e.must(200, get("/_history?_count=1000"))
	got := strings.Join(histEntries(r), ", ")
	for _, w := range []string{"Client/c1/1 POST", "Patient/p1/2 PUT", "Session/"} {
		if !strings.Contains(got, w) {
			t.Errorf("/_history lacks %s: %s", w, got)
		}
	}
	for _, secret := range []string{`"secret"`, `"password"`, "access_token_hash", "refresh_token_hash", "$2a$"} {
		if strings.Contains(string(r.raw), secret) {
			t.Errorf("/_history shows %s", secret)
		}
	}
	if u := at(r.doc, "entry", 0, "fullUrl").(string); !strings.HasPrefix(u, testBase+"/Session/") {
		t.Errorf("newest at / is %s, want the Session", u)
	}

	// HEAD answers as GET, without the body; the CapabilityStatement says it is served.
	if h := e.must(200, req{method: http.MethodHead, path: "/fhir/_history"}); len(h.raw) != 0 {
		t.Errorf("HEAD has a body")
	}
	caps := e.must(200, get("/fhir/metadata"))
	if !strings.Contains(fmt.Sprint(at(caps.doc, "rest", 0, "interaction")), "history-system") {
		t.Errorf("metadata interactions %v", at(caps.doc, "rest", 0, "interaction"))
	}
	if !strings.Contains(fmt.Sprint(at(caps.doc, "rest", 0, "resource", 0, "interaction")), "history-type") {
		t.Errorf("type interactions %v", at(caps.doc, "rest", 0, "resource", 0, "interaction"))
	}
}

// conformance H1: the system-level history holds the versions of the types whose
// type-level history the caller's policies allow, and only those.
func TestSystemHistoryPolicies(t *testing.T) { forEachBackend(t, testSystemHistoryPolicies) }

func testSystemHistoryPolicies(t *testing.T) {
	clk := histClock()
	e := newEnv(t, withClock(clk))
	histWrites(e, clk)
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	app := func(r req) req { return as("app", "app-secret", r) }

	e.must(403, app(get("/fhir/_history")))
	e.must(201, yamlPut("/AccessPolicy/app-base", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, uri: /fhir/_history}
`))
	msg := outcomeText(t, e.must(403, app(get("/fhir/_history"))))
	if !strings.Contains(msg, "history") || !strings.Contains(msg, "Patient") {
		t.Errorf("403 says %q", msg)
	}
	e.must(201, yamlPut("/AccessPolicy/app-types", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, uri: '#^/fhir/(Patient|Observation)/_history$'}
`))
	for _, tt := range []struct {
		path, want string
	}{
		{"/fhir/_history", "Observation/o1/2 DELETE, Patient/p1/2 PUT, Observation/o1/1 POST, Patient/p1/1 POST"},
		{"/fhir/_history?_count=1", "Observation/o1/2 DELETE"},
	} {
		if got := strings.Join(histEntries(e.must(200, app(get(tt.path)))), ", "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.path, got, tt.want)
		}
	}
	// The type-level histories agree with what the system level let through.
	e.must(200, app(get("/fhir/Patient/_history")))
	e.must(403, app(get("/fhir/Practitioner/_history")))
	// A policy that reads the type sees the one decided.
	e.must(201, yamlPut("/AccessPolicy/app-practitioners", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, params: {resource/type: Practitioner}}
`))
	if got := histEntries(e.must(200, app(get("/fhir/_history")))); len(got) != 5 {
		t.Errorf("with Practitioner allowed: %v", got)
	}
	e.must(401, anon(get("/fhir/_history")))
	e.must(403, app(get("/_history"))) // the policies name /fhir only
}

// conformance H2, H3: _at keeps the versions current at some instant of the period its
// value covers, _since those written at or after an instant, at each level, together
// or apart.
func TestHistoryAtAndSince(t *testing.T) { forEachBackend(t, testHistoryAtAndSince) }

func testHistoryAtAndSince(t *testing.T) {
	clk := histClock()
	e := newEnv(t, withClock(clk))
	t0 := histWrites(e, clk)
	ts := func(d time.Duration) string { return url.QueryEscape(t0.Add(d).Format(time.RFC3339Nano)) }
	m := time.Minute
	for _, tt := range []struct {
		path, want string
	}{
		{"/fhir/Patient/p1/_history?_at=" + ts(2*m), "Patient/p1/1 POST"},
		{"/fhir/Patient/p1/_history?_at=" + ts(3*m), "Patient/p1/2 PUT"},
		{"/fhir/Patient/p1/_history?_at=" + ts(3*m-time.Millisecond), "Patient/p1/1 POST"},
		{"/fhir/Patient/p1/_history?_at=" + ts(-m), ""},
		{"/fhir/Patient/_history?_at=" + ts(150*time.Second), "Patient/p1/1 POST"},
		{"/fhir/Observation/_history?_at=" + ts(6*m), "Observation/o1/2 DELETE"},
		{"/fhir/_history?_at=" + ts(270*time.Second), "Practitioner/d1/1 POST, Patient/p1/2 PUT, Observation/o1/1 POST"},
		{"/fhir/_history?_at=" + ts(330*time.Second), "Observation/o1/2 DELETE, Practitioner/d1/1 POST, Patient/p1/2 PUT"},
		// A period: every version current at some instant of it.
		{"/fhir/_history?_at=" + t0.Format("2006-01-02"), "Observation/o1/2 DELETE, Practitioner/d1/1 POST, Patient/p1/2 PUT, Observation/o1/1 POST, Patient/p1/1 POST"},
		{"/fhir/_history?_at=" + t0.Add(-24*time.Hour).Format("2006-01-02"), ""},
		{"/fhir/_history?_since=" + ts(3*m), "Observation/o1/2 DELETE, Practitioner/d1/1 POST, Patient/p1/2 PUT"},
		{"/fhir/_history?_since=" + url.QueryEscape(t0.Add(3*m).In(time.FixedZone("", 2*3600)).Format(time.RFC3339)), "Observation/o1/2 DELETE, Practitioner/d1/1 POST, Patient/p1/2 PUT"},
		{"/fhir/Observation/_history?_since=" + ts(3*m), "Observation/o1/2 DELETE"},
		{"/fhir/Patient/p1/_history?_since=" + ts(3*m+time.Millisecond), ""},
		{"/fhir/Patient/p1/_history?_since=" + ts(m) + "&_at=" + ts(4*m), "Patient/p1/2 PUT"},
		{"/fhir/_history?_since=" + ts(2*m) + "&_at=" + ts(270*time.Second), "Practitioner/d1/1 POST, Patient/p1/2 PUT, Observation/o1/1 POST"},
	} {
		t.Run(tt.path, func(t *testing.T) {
			r := e.in(t).must(200, get(tt.path))
			if got := strings.Join(histEntries(r), ", "); got != tt.want {
				t.Errorf("\n got %s\nwant %s", got, tt.want)
			}
			if n := len(histEntries(r)); at(r.doc, "total") != float64(n) {
				t.Errorf("total %v, %d entries", at(r.doc, "total"), n)
			}
			q, _ := url.Parse(tt.path)
			self, _ := url.Parse(link(r, "self"))
			for k := range q.Query() {
				if self.Query().Get(k) != q.Query().Get(k) {
					t.Errorf("self link %s drops %s", link(r, "self"), k)
				}
			}
		})
	}
}

// conformance H3, H4: a malformed value is a 400 naming its parameter at every level;
// an unknown parameter is ignored and named in a Warning (lenient) or refused (strict);
// _since on a search is reported as the history parameter it is.
func TestHistoryParameters(t *testing.T) { forEachBackend(t, testHistoryParameters) }

func testHistoryParameters(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	for _, level := range []string{"/fhir/_history", "/fhir/Patient/_history", "/fhir/Patient/p1/_history", "/_history"} {
		for _, tt := range []struct{ query, param string }{
			{"_since=yesterday", "_since"},
			{"_since=2024-02-30", "_since"},
			{"_at=2024-13", "_at"},
			{"_at=", "_at"},
			{"_count=-1", "_count"},
			{"_count=ten", "_count"},
			{"_page=0", "_page"},
			{"_cursor=nonsense", "_cursor"},
			{"_cursor=1_0_Patient_p1", "_cursor"},
			{"_since=2024&_since=2025", "_since"},
		} {
			t.Run(level+"?"+tt.query, func(t *testing.T) {
				r := e.in(t).must(400, get(level+"?"+tt.query))
				if msg := outcomeText(t, r); !strings.Contains(msg, tt.param) {
					t.Errorf("400 says %q, not naming %s", msg, tt.param)
				}
			})
		}
		// Unknown and unsupported parameters: lenient names them, strict refuses them.
		r := e.must(200, get(level+"?colour=blue&_list=l1&_count=5"))
		w := strings.Join(r.header.Values("Warning"), " | ")
		if !strings.Contains(w, `\"colour\"`) || !strings.Contains(w, "_list") || !strings.HasPrefix(w, "299 ") {
			t.Errorf("%s: Warning %q", level, w)
		}
		if s := link(r, "self"); strings.Contains(s, "colour") || !strings.Contains(s, "_count=5") {
			t.Errorf("%s: self link %s", level, s)
		}
		msg := outcomeText(t, e.must(400, get(level+"?colour=blue", "Prefer", "handling=strict")))
		if !strings.Contains(msg, "colour") {
			t.Errorf("%s strict: %q", level, msg)
		}
		if w := e.must(200, get(level+"?_count=5")).header.Get("Warning"); w != "" {
			t.Errorf("%s: Warning %q without unknown parameters", level, w)
		}
	}
	e.must(404, get("/fhir/Patient/nobody/_history"))
	e.must(404, get("/fhir/Client/_history"))

	// _since is no search parameter in R4: a search reports it and points at _lastUpdated.
	r := e.must(200, get("/fhir/Patient?_since=2024-01-01"))
	if d := fmt.Sprint(at(r.doc, "entry", 0, "resource", "issue", 0, "diagnostics")); !strings.Contains(d, "_lastUpdated") {
		t.Errorf("search with _since: outcome %s", r.raw)
	}
	msg := outcomeText(t, e.must(400, get("/fhir/Patient?_since=2024-01-01", "Prefer", "handling=strict")))
	if !strings.Contains(msg, "_since") {
		t.Errorf("strict search with _since: %q", msg)
	}
	if ids := entryIDs(e.must(200, get("/fhir/Patient?_lastUpdated=ge2000-01-01"))); len(ids) != 1 {
		t.Errorf("_lastUpdated=ge: %v", ids)
	}
}

// conformance H4: following next links while versions are written neither repeats nor
// skips a version of the first page's moment, at each level; _page keeps offsets.
func TestHistoryPagingAcrossWrites(t *testing.T) { forEachBackend(t, testHistoryPagingAcrossWrites) }

func testHistoryPagingAcrossWrites(t *testing.T) {
	clk := histClock()
	e := newEnv(t, withClock(clk))
	write := func(path string) {
		clk.Advance(time.Second)
		if r := e.do(put(path, `{"resourceType":"Patient"}`)); r.status >= 300 {
			t.Fatalf("PUT %s: %d %s", path, r.status, r.raw)
		}
	}
	for i := 1; i <= 5; i++ {
		write(fmt.Sprintf("/fhir/Patient/p%d", i))
	}
	write("/fhir/Patient/p1") // p1 has two versions
	// Each history is read whole first, then page by page with writes between pages.
	for _, tt := range []struct {
		path  string
		count int
	}{
		{"/fhir/Patient/_history", 2},
		{"/fhir/_history", 2},
		{"/fhir/Patient/p1/_history", 1},
	} {
		t.Run(tt.path, func(t *testing.T) {
			e := e.in(t)
			want := strings.Join(histEntries(e.must(200, get(tt.path+"?_count=100"))), ", ")
			if strings.Count(want, ",") < 1 {
				t.Fatalf("too short a history to page: %s", want)
			}
			var got []string
			path := fmt.Sprintf("%s?_count=%d", tt.path, tt.count)
			for pages := 0; path != ""; pages++ {
				if pages > 10 {
					t.Fatal("next links do not end")
				}
				r := e.must(200, get(path))
				got = append(got, histEntries(r)...)
				if link(r, "previous") != "" {
					t.Errorf("cursor page with a previous link")
				}
				// Versions written between pages come first and shift nothing.
				write("/fhir/Patient/p1")
				write(fmt.Sprintf("/fhir/Patient/new%d", pages))
				path = strings.TrimPrefix(link(r, "next"), testBase)
				if path != "" && !strings.Contains(path, "_cursor=") {
					t.Fatalf("next link %s has no cursor", path)
				}
			}
			if s := strings.Join(got, ", "); s != want {
				t.Errorf("\n got %s\nwant %s", s, want)
			}
		})
	}
	// A page asked for by _page is an offset, with previous and next links as before.
	r := e.must(200, get("/fhir/Patient/p2/_history?_count=1&_page=1"))
	if len(histEntries(r)) != 1 || link(r, "next") != "" {
		t.Errorf("_page=1: %v next %q", histEntries(r), link(r, "next"))
	}
	r = e.must(200, get("/fhir/Patient/_history?_count=2&_page=2"))
	if len(histEntries(r)) != 2 || link(r, "previous") != testBase+"/fhir/Patient/_history?_count=2" || !strings.Contains(link(r, "next"), "_page=3") {
		t.Errorf("_page=2: %v links %v", histEntries(r), at(r.doc, "link"))
	}
}

// conformance F3, H5: If-Modified-Since on read and vread answers 304 (no body, ETag and
// Last-Modified) when the resource has not changed since, to the second; If-None-Match,
// when present, decides alone; a malformed date is ignored.
func TestIfModifiedSince(t *testing.T) { forEachBackend(t, testIfModifiedSince) }

func testIfModifiedSince(t *testing.T) {
	clk := histClock()
	clk.Advance(1500 * time.Millisecond) // lastUpdated has a fraction an HTTP-date lacks
	e := newEnv(t, withClock(clk))
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	written := clk.Now()
	lm := e.must(200, get("/fhir/Patient/p1")).header.Get("Last-Modified")
	if lm != written.Truncate(time.Second).Format(http.TimeFormat) {
		t.Fatalf("Last-Modified %q", lm)
	}
	date := func(d time.Duration) string { return written.Truncate(time.Second).Add(d).Format(http.TimeFormat) }
	for _, tt := range []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"same second", "/fhir/Patient/p1", []string{"If-Modified-Since", lm}, 304},
		{"later", "/fhir/Patient/p1", []string{"If-Modified-Since", date(time.Hour)}, 304},
		{"a second before", "/fhir/Patient/p1", []string{"If-Modified-Since", date(-time.Second)}, 200},
		{"RFC 850 form", "/fhir/Patient/p1", []string{"If-Modified-Since", written.Format("Monday, 02-Jan-06 15:04:05 GMT")}, 304},
		{"asctime form", "/fhir/Patient/p1", []string{"If-Modified-Since", written.Format(time.ANSIC)}, 304},
		{"malformed", "/fhir/Patient/p1", []string{"If-Modified-Since", "yesterday"}, 200},
		{"ISO date is no HTTP-date", "/fhir/Patient/p1", []string{"If-Modified-Since", written.Add(time.Hour).Format(time.RFC3339)}, 200},
		{"If-None-Match decides: match", "/fhir/Patient/p1", []string{"If-None-Match", `W/"1"`, "If-Modified-Since", date(-time.Hour)}, 304},
		{"If-None-Match decides: no match", "/fhir/Patient/p1", []string{"If-None-Match", `W/"7"`, "If-Modified-Since", date(time.Hour)}, 200},
		{"If-None-Match alone", "/fhir/Patient/p1", []string{"If-None-Match", `W/"1"`}, 304},
		{"vread", "/fhir/Patient/p1/_history/1", []string{"If-Modified-Since", lm}, 304},
		{"vread If-None-Match", "/fhir/Patient/p1/_history/1", []string{"If-None-Match", `W/"1"`}, 304},
		{"vread older", "/fhir/Patient/p1/_history/1", []string{"If-Modified-Since", date(-time.Second)}, 200},
		{"own base", "/Patient/p1", []string{"If-Modified-Since", lm}, 304},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.in(t).must(tt.want, get(tt.path, tt.hdr...))
			if r.header.Get("ETag") != `W/"1"` || r.header.Get("Last-Modified") != lm {
				t.Errorf("headers ETag %q Last-Modified %q", r.header.Get("ETag"), r.header.Get("Last-Modified"))
			}
			if tt.want == 304 && len(r.raw) != 0 {
				t.Errorf("304 with a body: %s", r.raw)
			}
		})
	}
	if r := e.must(304, req{method: http.MethodHead, path: "/fhir/Patient/p1", hdr: []string{"If-Modified-Since", lm}}); len(r.raw) != 0 {
		t.Error("HEAD 304 with a body")
	}
	// A change after the date: the read answers in full again, the old version still 304.
	clk.Advance(2 * time.Second)
	e.must(200, put("/fhir/Patient/p1", `{"resourceType":"Patient","gender":"male"}`))
	if r := e.must(200, get("/fhir/Patient/p1", "If-Modified-Since", lm)); at(r.doc, "gender") != "male" {
		t.Errorf("changed resource: %s", r.raw)
	}
	e.must(304, get("/fhir/Patient/p1/_history/1", "If-Modified-Since", lm))
	e.must(200, del("/fhir/Patient/p1"))
	e.must(410, get("/fhir/Patient/p1", "If-Modified-Since", date(time.Hour)))
}
