package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The forms of the sign-in pages carry CSRF tokens tied to the browser's cookie: a
// missing or wrong token, or a form posted without the cookie, is refused with a 403
// page and changes nothing (conformance A6).
func TestSignInCSRF(t *testing.T) { forEachBackend(t, testSignInCSRF) }

func testSignInCSRF(t *testing.T) {
	ce := newCodeEnv(t)
	_, challenge := pkcePair(t)
	b := ce.browser(t)
	login := b.get(authorizeQuery(challenge))
	good := login.fields()

	bad := func(f url.Values, mutate func(url.Values)) url.Values {
		c := url.Values{}
		for k, v := range f {
			c[k] = append([]string(nil), v...)
		}
		mutate(c)
		return c
	}
	creds := func(f url.Values) {
		f.Set("username", "user1")
		f.Set("password", "password1")
	}
	cases := []struct {
		name string
		form url.Values
		who  *testBrowser
	}{
		{"no token", bad(good, func(f url.Values) { creds(f); f.Del("csrf") }), b},
		{"wrong token", bad(good, func(f url.Values) { creds(f); f.Set("csrf", wrongToken(f.Get("csrf"))) }), b},
		{"token of another browser", bad(good, creds), ce.browser(t)},
	}
	for _, tc := range cases {
		t.Run("login "+tc.name, func(t *testing.T) {
			p := tc.who.post("/auth/login", tc.form)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "did not come from this site") {
				t.Fatalf("%d %s", p.status, p.body)
			}
			checkPageHeaders(t, p)
		})
	}
	if n := len(entryIDs(ce.must(200, get("/Session?type=browser")))); n != 0 {
		t.Fatalf("%d browser sessions opened by refused forms", n)
	}

	consent := b.login(login, "user1", "password1")
	cf := consent.fields()
	cf.Set("decision", "allow")
	for name, f := range map[string]url.Values{
		"no token":    bad(cf, func(f url.Values) { f.Del("csrf") }),
		"login token": bad(cf, func(f url.Values) { f.Set("csrf", good.Get("csrf")) }),
	} {
		t.Run("consent "+name, func(t *testing.T) {
			p := b.post("/auth/consent", f)
			if p.status != http.StatusForbidden || p.header.Get("Location") != "" {
				t.Fatalf("%d %v %s", p.status, p.header, p.body)
			}
		})
	}
	// The other browser has no session at all: its consent is refused too.
	if p := ce.browser(t).post("/auth/consent", cf); p.status != http.StatusForbidden {
		t.Errorf("consent without a session: %d", p.status)
	}
	// Sign-out without the token is refused and keeps the session.
	if p := b.post("/auth/logout", url.Values{"csrf": {"nope"}}); p.status != http.StatusForbidden {
		t.Errorf("logout with a wrong token: %d", p.status)
	}
	if n := len(entryIDs(ce.must(200, get("/Session?type=browser")))); n != 1 {
		t.Errorf("%d browser sessions after a refused sign-out, want 1", n)
	}
	// A form that is no form.
	r, _ := http.NewRequest(http.MethodPost, ce.base+"/auth/login", strings.NewReader(`{"username":"user1"}`))
	r.Header.Set("Content-Type", "application/json")
	if p := b.do(r); p.status != http.StatusBadRequest {
		t.Errorf("JSON login: %d", p.status)
	}
	// And the good consent still works.
	if to := b.post("/auth/consent", cf).redirect(t); to == nil || to.Query().Get("code") == "" {
		t.Errorf("consent: %v", to)
	}
}

// The login form answers an unknown user and a wrong password alike, and draws on the
// password grant's guessing budget: failures on either count for both
// (conformance T6, T9, A7).
func TestSignInGuessing(t *testing.T) { forEachBackend(t, testSignInGuessing) }

func testSignInGuessing(t *testing.T) {
	ce := newCodeEnv(t)
	_, challenge := pkcePair(t)
	b := ce.browser(t)
	login := b.get(authorizeQuery(challenge))
	unknown := b.login(login, "nobody", "password1")
	wrong := b.login(login, "user1", "wrong")
	if unknown.status != http.StatusUnauthorized || wrong.status != unknown.status {
		t.Fatalf("statuses %d %d", unknown.status, wrong.status)
	}
	// The pages differ only in the name typed back into the form.
	if strings.Replace(unknown.body, "nobody", "user1", 1) != wrong.body || !strings.Contains(wrong.body, "Wrong user name or password.") {
		t.Errorf("unknown user and wrong password answered differently:\n%s\n---\n%s", unknown.body, wrong.body)
	}
	// One failure for user1 here (the unknown name counts apart), four more through the
	// password grant, then the sixth sets the wait: the right password is refused on both.
	ce.must(200, yamlPut("/Client/codeapp", strings.Replace(codeAppYAML, "grant_types: [authorization_code, refresh_token]", "grant_types: [authorization_code, refresh_token, password]", 1)))
	for i := 0; i < 4; i++ {
		oauthErrorOf(t, token(ce.env, url.Values{"grant_type": {"password"}, "client_id": {"codeapp"}, "username": {"user1"}, "password": {"nope"}}), 400)
	}
	if p := b.login(login, "user1", "wrong"); p.status != http.StatusUnauthorized {
		t.Fatalf("sixth failure: %d", p.status)
	}
	p := b.login(login, "user1", "password1")
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed sign-ins") {
		t.Fatalf("login while waiting: %d %v %s", p.status, p.header, p.body)
	}
	oauthErrorOf(t, token(ce.env, url.Values{"grant_type": {"password"}, "client_id": {"codeapp"}, "username": {"user1"}, "password": {"password1"}}), 429)
}

// Behind https the cookies take the __Host- prefix and Secure; the stylesheet is served
// to anyone (conformance A6).
func TestSignInCookiesOverHTTPS(t *testing.T) { forEachBackend(t, testSignInCookiesOverHTTPS) }

func testSignInCookiesOverHTTPS(t *testing.T) {
	e := newEnv(t, withBaseURL("https://fhirbox.example"))
	e.must(201, yamlPut("/Client/codeapp", codeAppYAML))
	_, challenge := pkcePair(t)
	r := e.do(req{method: http.MethodGet, path: authorizeQuery(challenge), anonymous: true})
	sc := r.header.Get("Set-Cookie")
	if r.status != http.StatusOK || !strings.HasPrefix(sc, "__Host-fhirbox-login=") || !strings.Contains(sc, "; Secure") ||
		!strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "Path=/;") || strings.Contains(sc, "Domain=") {
		t.Errorf("login cookie over https: %d %q", r.status, sc)
	}
	css := e.do(req{method: http.MethodGet, path: "/ui/static/style.css", anonymous: true})
	if css.status != http.StatusOK || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %v", css.status, css.header)
	}
	if r := e.do(req{method: http.MethodGet, path: "/ui/static/nope.css", anonymous: true}); r.status != http.StatusNotFound {
		t.Errorf("missing static file: %d", r.status)
	}
}

// The authorization endpoint and the sign-in pages answer no CORS, even to a configured
// origin: they are for a browser navigating, not for scripts (conformance S6).
func TestCORSSkipsSignIn(t *testing.T) { forEachBackend(t, testCORSSkipsSignIn) }

func testCORSSkipsSignIn(t *testing.T) {
	const origin = "https://app.example"
	e := newEnv(t, withCORS(origin))
	e.must(201, yamlPut("/Client/codeapp", codeAppYAML))
	_, challenge := pkcePair(t)
	for _, path := range []string{authorizeQuery(challenge), "/auth/login", "/auth/logout", "/ui/static/style.css", "/fhir/metadata"} {
		r := e.do(req{method: http.MethodGet, path: path, anonymous: true, hdr: []string{"Origin", origin}})
		got := r.header.Get("Access-Control-Allow-Origin")
		if want := path == "/fhir/metadata"; (got != "") != want {
			t.Errorf("%s: Access-Control-Allow-Origin %q", path, got)
		}
	}
}
