package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The whole authorization code flow through the router, as a browser with a cookie jar:
// authorize → login form → consent → code → token (with an ID token) → API; the code
// used again revokes what it issued; sign-out ends the browser's Session
// (conformance A1–A6, A8, T11, P3, S1).
func TestAuthorizationCodeFlow(t *testing.T) { forEachBackend(t, testAuthorizationCodeFlow) }

func testAuthorizationCodeFlow(t *testing.T) {
	ce := newCodeEnv(t)
	b := ce.browser(t)
	verifier, challenge := pkcePair(t)
	query := authorizeQuery(challenge, "scope", "openid patient/*.read offline_access", "nonce", "n-0S6_WzA2Mj")

	// Not signed in: the login page, with its cookie and the page headers.
	p := b.get(query)
	if p.status != http.StatusOK || !strings.Contains(p.body, `action="/auth/login"`) || !strings.Contains(p.body, "Code App") {
		t.Fatalf("login page: %d %s", p.status, p.body)
	}
	checkPageHeaders(t, p)
	checkCookie(t, b, "fhirbox-login")

	// Signed in: the consent page lists the scopes.
	p = b.login(p, "user1@example.com", "password1")
	checkCookie(t, b, "fhirbox-session")
	if p.status != http.StatusOK || !strings.Contains(p.body, `action="/auth/consent"`) ||
		!strings.Contains(p.body, "<code>openid</code>") || !strings.Contains(p.body, "<code>patient/*.read</code>") {
		t.Fatalf("consent page: %d %s", p.status, p.body)
	}
	checkPageHeaders(t, p)
	f := p.fields()
	f.Set("decision", "allow")
	p = b.post("/auth/consent", f)
	to := p.redirect(t)
	if p.status != http.StatusSeeOther || to == nil || !strings.HasPrefix(to.String(), codeRedirect+"?") {
		t.Fatalf("consent answer: %d %v", p.status, p.header)
	}
	q := to.Query()
	code := q.Get("code")
	if code == "" || q.Get("state") != "st-1" || q.Get("iss") != ce.base {
		t.Fatalf("redirect %s", to)
	}

	// The exchange.
	r := ce.exchange(code, verifier)
	checkTokenResponse(t, r)
	access, _ := r.doc["access_token"].(string)
	if r.doc["refresh_token"] == nil || r.doc["scope"] != "openid patient/*.read offline_access" {
		t.Errorf("token response %s", r.raw)
	}
	idt, _ := r.doc["id_token"].(string)
	_, claims := jwtParts(t, idt)
	sum := sha256.Sum256([]byte(access))
	for k, want := range map[string]any{"iss": ce.base, "sub": "user1", "aud": "codeapp", "nonce": "n-0S6_WzA2Mj",
		"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16])} {
		if claims[k] != want {
			t.Errorf("id_token %s = %v, want %v", k, claims[k], want)
		}
	}
	for _, k := range []string{"exp", "iat", "auth_time"} {
		if _, ok := claims[k].(float64); !ok {
			t.Errorf("id_token has no numeric %s: %v", k, claims)
		}
	}
	// An ID token is no access token (conformance J7).
	ce.must(401, bearer(idt, get("/auth/userinfo")))
	ui := ce.must(200, bearer(access, get("/auth/userinfo")))
	if ui.doc["id"] != "user1" {
		t.Errorf("userinfo %s", ui.raw)
	}
	ss := ce.must(200, get("/Session?type=authorization_code&user=User/user1"))
	if len(entryIDs(ss)) != 1 {
		t.Errorf("sessions of the grant: %s", ss.raw)
	}
	refresh, _ := r.doc["refresh_token"].(string)
	rr := token(ce.env, url.Values{"grant_type": {"refresh_token"}, "client_id": {"codeapp"}, "refresh_token": {refresh}})
	checkTokenResponse(t, rr)
	access2, _ := rr.doc["access_token"].(string)

	// The code again: refused, and the tokens it issued are revoked.
	if got := oauthErrorOf(t, ce.exchange(code, verifier), 400); got != "invalid_grant" {
		t.Errorf("reused code: %s", got)
	}
	ce.must(401, bearer(access2, get("/auth/userinfo")))

	// Signed in still: a new request goes to consent at once, without the login form.
	p = b.get(authorizeQuery(challenge))
	if !strings.Contains(p.body, `action="/auth/consent"`) {
		t.Fatalf("second authorize: %d %s", p.status, p.body)
	}

	// The browser's Session: its cookie is no bearer token, and sign-out closes it.
	bs := ce.must(200, get("/Session?type=browser&user=User/user1"))
	if len(entryIDs(bs)) != 1 {
		t.Fatalf("browser sessions: %s", bs.raw)
	}
	u, _ := url.Parse(ce.base)
	for _, ck := range b.http.Jar.Cookies(u) {
		if ck.Name == "fhirbox-session" {
			ce.must(401, bearer(ck.Value, get("/auth/userinfo")))
		}
	}
	p = b.get("/auth/logout")
	if p.status != http.StatusOK || !strings.Contains(p.body, "uone") {
		t.Fatalf("signed-in page: %d %s", p.status, p.body)
	}
	checkPageHeaders(t, p)
	p = b.post("/auth/logout", p.fields())
	if p.status != http.StatusOK || !strings.Contains(p.body, "signed out") {
		t.Fatalf("sign-out: %d %s", p.status, p.body)
	}
	if len(entryIDs(ce.must(200, get("/Session?type=browser&user=User/user1")))) != 0 {
		t.Error("the browser Session is still open after sign-out")
	}
	if p = b.get(authorizeQuery(challenge)); !strings.Contains(p.body, `action="/auth/login"`) {
		t.Errorf("after sign-out, authorize shows %d %s", p.status, p.body)
	}
}

// checkPageHeaders asserts the headers of every sign-in page (conformance A10).
func checkPageHeaders(t *testing.T, p *page) {
	t.Helper()
	h := p.header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("page headers %v", h)
	}
}

// checkCookie asserts that the browser was given cookie name HttpOnly, SameSite=Lax,
// Path=/ (conformance A6).
func checkCookie(t *testing.T, b *testBrowser, name string) {
	t.Helper()
	for _, sc := range b.setCookies {
		if strings.HasPrefix(sc, name+"=") {
			if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || !strings.Contains(sc, "Path=/") {
				t.Errorf("cookie %s", sc)
			}
			return
		}
	}
	t.Errorf("no cookie %s set: %v", name, b.setCookies)
}

// Every error of /auth/authorize: an error page for an unknown client or redirect URI,
// never a redirect; a redirect with error, error_description, state and iss for the rest
// (conformance T12, A3, S1, P5).
func TestAuthorizeCodeErrors(t *testing.T) { forEachBackend(t, testAuthorizeCodeErrors) }

func testAuthorizeCodeErrors(t *testing.T) {
	ce := newCodeEnv(t)
	ce.must(201, yamlPut("/Client/pwonly", "grant_types: [password]\n"))
	_, challenge := pkcePair(t)
	cases := []struct {
		name  string
		query string
		// page: an error page; else the error redirected.
		page bool
		code string
	}{
		{"unknown client", authorizeQuery(challenge, "client_id", "nope"), true, ""},
		{"no client_id", authorizeQuery(challenge, "client_id", ""), true, ""},
		{"malformed client_id", authorizeQuery(challenge, "client_id", "../Client/x\x00"), true, ""},
		{"client without the grant", authorizeQuery(challenge, "client_id", "pwonly"), true, ""},
		{"unregistered redirect_uri", authorizeQuery(challenge, "redirect_uri", "https://evil.example/cb"), true, ""},
		{"redirect_uri with a trailing slash", authorizeQuery(challenge, "redirect_uri", codeRedirect+"/"), true, ""},
		{"response_type token", authorizeQuery(challenge, "response_type", "token"), false, "unsupported_response_type"},
		{"no PKCE from a public client", authorizeQuery("", "code_challenge_method", ""), false, "invalid_request"},
		{"plain", authorizeQuery(challenge, "code_challenge_method", "plain"), false, "invalid_request"},
		{"challenge without method", authorizeQuery(challenge, "code_challenge_method", ""), false, "invalid_request"},
		{"scope not allowed", authorizeQuery(challenge, "scope", "system/*.write"), false, "invalid_scope"},
		{"repeated state", authorizeQuery(challenge) + "&scope=openid&scope=openid", false, "invalid_request"},
		{"prompt none, not signed in", authorizeQuery(challenge, "prompt", "none"), false, "login_required"},
	}
	b := ce.browser(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get(tc.query)
			if tc.page {
				if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, `role="alert"`) {
					t.Fatalf("want an error page: %d %v %s", p.status, p.header, p.body)
				}
				checkPageHeaders(t, p)
				return
			}
			to := p.redirect(t)
			if p.status != http.StatusFound || to == nil || !strings.HasPrefix(to.String(), codeRedirect+"?") {
				t.Fatalf("want a redirect: %d %v %s", p.status, p.header, p.body)
			}
			q := to.Query()
			if q.Get("error") != tc.code || q.Get("error_description") == "" || q.Get("iss") != ce.base || q.Get("code") != "" {
				t.Errorf("redirect %s", to)
			}
			if q.Get("state") != "st-1" {
				t.Errorf("state lost: %s", to)
			}
		})
	}

	// Signed in, prompt=none for a client that needs consent: consent_required; Deny:
	// access_denied.
	p := b.login(b.get(authorizeQuery(challenge)), "user1", "password1")
	f := p.fields()
	if q := b.get(authorizeQuery(challenge, "prompt", "none")).redirect(t); q == nil || q.Query().Get("error") != "consent_required" {
		t.Errorf("prompt=none needing consent: %v", q)
	}
	f.Set("decision", "deny")
	if q := b.post("/auth/consent", f).redirect(t); q == nil || q.Query().Get("error") != "access_denied" || q.Query().Get("state") != "st-1" {
		t.Errorf("deny: %v", q)
	}
	// The password flow of /auth/authorize is unchanged: JSON errors, never HTML.
	r := ce.do(req{method: http.MethodGet, path: "/auth/authorize?client_id=nope&grant_type=password", anonymous: true})
	if r.status != 400 || r.doc["error"] != "invalid_request" {
		t.Errorf("password flow: %d %s", r.status, r.raw)
	}
}

// The token request of the grant: PKCE (conformance P2–P4), redirect_uri (RFC 6749
// §4.1.3), the client, expiry with an injected clock (conformance T11), a first-party
// client without consent, and a confidential client that must authenticate.
func TestAuthorizationCodeGrantErrors(t *testing.T) {
	forEachBackend(t, testAuthorizationCodeGrantErrors)
}

func testAuthorizationCodeGrantErrors(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	ce := newCodeEnv(t, withClock(clk))
	ce.must(200, yamlPut("/Client/codeapp", codeAppYAML+"first_party: true\n"))
	ce.must(201, yamlPut("/Client/other", codeAppYAML))
	b := ce.browser(t)
	verifier, challenge := pkcePair(t)
	other, _ := pkcePair(t)
	fresh := func() string { return b.signInForCode(authorizeQuery(challenge)) }

	cases := []struct {
		name  string
		extra []string
		code  string
	}{
		{"wrong verifier", []string{"code_verifier", other}, "invalid_grant"},
		{"no verifier", []string{"code_verifier", ""}, "invalid_grant"},
		{"short verifier", []string{"code_verifier", "abc"}, "invalid_request"},
		{"verifier with bad characters", []string{"code_verifier", strings.Repeat("+", 43)}, "invalid_request"},
		{"other redirect_uri", []string{"redirect_uri", "https://app.example/other"}, "invalid_grant"},
		{"no redirect_uri", []string{"redirect_uri", ""}, "invalid_grant"},
		{"another client", []string{"client_id", "other"}, "invalid_grant"},
		{"unknown code", []string{"code", "nope"}, "invalid_grant"},
		{"no code", []string{"code", ""}, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := fresh()
			if got := oauthErrorOf(t, ce.exchange(code, verifier, tc.extra...), 400); got != tc.code {
				t.Errorf("error %s, want %s", got, tc.code)
			}
		})
	}
	// The first-party client got its codes without a consent page; a good exchange works.
	checkTokenResponse(t, ce.exchange(fresh(), verifier))

	// Ten minutes on, a code is dead.
	code := fresh()
	clk.Advance(10*time.Minute + time.Second)
	if got := oauthErrorOf(t, ce.exchange(code, verifier), 400); got != "invalid_grant" {
		t.Errorf("expired code: %s", got)
	}

	// A verifier for a code issued without a challenge (conformance P4): a confidential
	// client, which needs no PKCE, and must authenticate.
	ce.must(201, yamlPut("/Client/conf", "secret: conf-secret\nfirst_party: true\ngrant_types: [authorization_code]\nauth:\n  authorization_code: {redirect_uri: 'https://app.example/cb'}\n"))
	nopkce := func() string {
		return b.signInForCode(authorizeQuery("", "client_id", "conf", "code_challenge_method", ""))
	}
	if got := oauthErrorOf(t, token(ce.env, url.Values{"grant_type": {"authorization_code"}, "code": {nopkce()}, "redirect_uri": {codeRedirect}, "code_verifier": {verifier}},
		"Authorization", basicAuth("conf", "conf-secret")), 400); got != "invalid_grant" {
		t.Errorf("verifier without challenge: %s", got)
	}
	if got := oauthErrorOf(t, token(ce.env, url.Values{"grant_type": {"authorization_code"}, "client_id": {"conf"}, "code": {nopkce()}, "redirect_uri": {codeRedirect}}), 400); got != "invalid_client" {
		t.Errorf("confidential client without its secret: %s", got)
	}
	checkTokenResponse(t, token(ce.env, url.Values{"grant_type": {"authorization_code"}, "code": {nopkce()}, "redirect_uri": {codeRedirect}},
		"Authorization", basicAuth("conf", "conf-secret")))
}
