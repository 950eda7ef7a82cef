package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The Auth Sandbox through the real router, as a browser with a cookie jar reaches it:
// anonymous browsers go to the login page and come back; a signed-in User whom no
// policy allows GET /ui/sandbox gets a 403 page; one who is allowed gets the page, with
// the pages' security headers.
func TestSandboxAccess(t *testing.T) { forEachBackend(t, testSandboxAccess) }

func testSandboxAccess(t *testing.T) {
	ce := newCodeEnv(t)
	if !contains(entryIDs(ce.must(200, get("/AccessPolicy?_count=50"))), "fhirbox-public-sandbox") {
		t.Fatal("the shipped policy fhirbox-public-sandbox is missing")
	}
	b := ce.browser(t)
	// The browser follows the redirect to the login page, which carries next along.
	p := b.get("/ui/sandbox")
	if p.status != http.StatusOK || p.url.Path != "/auth/login" || p.url.Query().Get("next") != "/ui/sandbox" {
		t.Fatalf("anonymous: %d at %v", p.status, p.url)
	}
	if p.fields().Get("next") != "/ui/sandbox" {
		t.Fatalf("the login form does not carry next: %s", p.body)
	}
	// A wrong password keeps next in the form.
	if again := b.login(p, "user1", "wrong"); again.status != http.StatusUnauthorized || again.fields().Get("next") != "/ui/sandbox" {
		t.Fatalf("failed sign-in: %d %v", again.status, again.fields())
	}
	p = b.login(p, "user1", "password1")
	if p.url.Path != "/ui/sandbox" || p.status != http.StatusForbidden || !strings.Contains(p.body, `No access policy allows user &#34;user1&#34; to GET /ui/sandbox`) {
		t.Fatalf("user without a policy: %d at %v\n%s", p.status, p.url, p.body)
	}
	checkPageHeaders(t, p)

	ce.must(201, yamlPut("/AccessPolicy/sandbox-user1", `
engine: matcho
link: [{resourceType: User, id: user1}]
matcho: {request-method: get, uri: /ui/sandbox}
`))
	for _, path := range []string{"/ui/sandbox", "/ui/sandbox/callback?code=x&state=y"} {
		p = b.get(path)
		if p.status != http.StatusOK || !strings.Contains(p.body, `id="sandbox"`) || !strings.Contains(p.body, `src="/ui/static/sandbox.js"`) {
			t.Fatalf("%s: %d\n%s", path, p.status, p.body)
		}
		checkPageHeaders(t, p)
		if csp := p.header.Get("Content-Security-Policy"); strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q", csp)
		}
	}
	if m := regexp.MustCompile(`data-redirect-uri="([^"]+)"`).FindStringSubmatch(p.body); m == nil || m[1] != ce.base+"/ui/sandbox/callback" {
		t.Errorf("redirect URI %v", m)
	}
	// Signed in already, the login page sends the browser on to next.
	if p := b.get("/auth/login?next=/ui/sandbox"); p.url.Path != "/ui/sandbox" {
		t.Errorf("signed in, login?next=: landed at %v", p.url)
	}
	for _, path := range []string{"/ui/static/sandbox.js", "/ui/static/sandbox.css"} {
		if p := b.get(path); p.status != http.StatusOK || len(p.body) < 500 {
			t.Errorf("%s: %d, %d bytes", path, p.status, len(p.body))
		}
	}
	// The probe is as the User: the public policy that lets the cookie's request in does
	// not allow another signed-in User.
	ce.must(201, put("/User/user2", `{"userName":"utwo","password":"password2"}`))
	b2 := ce.browser(t)
	if p := b2.login(b2.get("/ui/sandbox"), "user2", "password2"); p.status != http.StatusForbidden {
		t.Errorf("user2: %d", p.status)
	}
}

// next never names another site: the login form drops anything but a path of
// fhirbox's own pages.
func TestSandboxLoginNext(t *testing.T) { forEachBackend(t, testSandboxLoginNext) }

func testSandboxLoginNext(t *testing.T) {
	ce := newCodeEnv(t)
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/x", "/ui//evil", "/ui/x?y=1", `/ui/\evil`, "/auth/logout", "/ui/../Client"} {
		b := ce.browser(t)
		p := b.get("/auth/login?" + url.Values{"next": {next}}.Encode())
		if got := p.fields().Get("next"); got != "" {
			t.Errorf("next=%q kept as %q", next, got)
		}
		if p = b.login(p, "user1", "password1"); p.url.Path != "/auth/logout" {
			t.Errorf("next=%q: landed at %v", next, p.url)
		}
	}
}

// sandboxAPI calls the sandbox's JSON API as the test browser b.
func sandboxAPI(t *testing.T, b *testBrowser, method, body string, hdr ...string) (*page, map[string]any) {
	t.Helper()
	var r *http.Request
	var err error
	if body == "" {
		r, err = http.NewRequest(method, b.ce.base+"/ui/sandbox/api/clients", nil)
	} else {
		r, err = http.NewRequest(method, b.ce.base+"/ui/sandbox/api/clients", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	p := b.do(r)
	var doc map[string]any
	if strings.Contains(p.header.Get("Content-Type"), "json") {
		if err := json.Unmarshal([]byte(p.body), &doc); err != nil {
			t.Fatalf("%s: not JSON: %s", method, p.body)
		}
	}
	return p, doc
}

// sandboxCSRF signs b in as user1 and returns the sandbox page's CSRF token.
func sandboxCSRF(t *testing.T, b *testBrowser) string {
	t.Helper()
	p := b.login(b.get("/ui/sandbox"), "user1", "password1")
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		t.Fatalf("sandbox page: %d %s", p.status, p.body)
	}
	return m[1]
}

// The sandbox's JSON API acts as the signed-in User: GET /Client and POST /Client are
// decided for that User; writes need the page's CSRF token; secrets never come back.
func TestSandboxClientsAPI(t *testing.T) { forEachBackend(t, testSandboxClientsAPI) }

func testSandboxClientsAPI(t *testing.T) {
	ce := newCodeEnv(t)
	ce.must(201, put("/Client/conf", `{"secret":"conf-secret-1","grant_types":["client_credentials"]}`))
	ce.must(201, yamlPut("/AccessPolicy/sandbox-user1", `
engine: matcho
link: [{resourceType: User, id: user1}]
matcho: {request-method: get, uri: '#^/(ui/sandbox|Client)$'}
`))
	// Not signed in: refused, without a challenge that would make a browser ask for a
	// password.
	anon := ce.browser(t)
	if p, doc := sandboxAPI(t, anon, http.MethodGet, ""); p.status != http.StatusForbidden || doc["resourceType"] != "OperationOutcome" || p.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("anonymous list: %d %v %s", p.status, p.header, p.body)
	}
	b := ce.browser(t)
	csrf := sandboxCSRF(t, b)

	p, doc := sandboxAPI(t, b, http.MethodGet, "")
	if p.status != http.StatusOK {
		t.Fatalf("list: %d %s", p.status, p.body)
	}
	var ids []string
	for _, c := range doc["clients"].([]any) {
		ids = append(ids, c.(map[string]any)["id"].(string))
	}
	if !contains(ids, "codeapp") || !contains(ids, "conf") || strings.Contains(p.body, "secret\"") || strings.Contains(p.body, "conf-secret") {
		t.Fatalf("list: %s", p.body)
	}
	if !strings.Contains(p.body, `"confidential":true`) {
		t.Errorf("conf is not shown as confidential: %s", p.body)
	}

	newClient := `{"id":"sbx","name":"Sandbox app","secret":"sbx-secret-123","grant_types":["password","client_credentials","authorization_code"],"first_party":true,"jwt":true}`
	// Allowed to GET /Client, not to POST it.
	if p, _ := sandboxAPI(t, b, http.MethodPost, newClient, "X-CSRF-Token", csrf); p.status != http.StatusForbidden || !strings.Contains(p.body, "POST /Client") {
		t.Fatalf("create without a policy: %d %s", p.status, p.body)
	}
	ce.must(201, yamlPut("/AccessPolicy/sandbox-user1-create", `
engine: matcho
link: [{resourceType: User, id: user1}]
matcho: {request-method: post, uri: /Client, body: {first_party: true}}
`))
	for name, hdr := range map[string][]string{
		"no CSRF token":              nil,
		"a wrong CSRF token":         {"X-CSRF-Token", wrongToken(csrf)},
		"another browser's CSRF":     {"X-CSRF-Token", sandboxCSRF(t, ce.browser(t))},
		"the CSRF token as a cookie": {"Cookie", "csrf=" + csrf},
	} {
		if p, _ := sandboxAPI(t, b, http.MethodPost, newClient, hdr...); p.status != http.StatusForbidden {
			t.Errorf("%s: %d %s", name, p.status, p.body)
		}
	}
	if p, _ := sandboxAPI(t, b, http.MethodPost, newClient, "X-CSRF-Token", csrf, "Content-Type", "application/x-www-form-urlencoded"); p.status != http.StatusUnsupportedMediaType {
		t.Errorf("form body: %d", p.status)
	}
	if p, _ := sandboxAPI(t, b, http.MethodPost, `{"id":"x","extra":1}`, "X-CSRF-Token", csrf); p.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", p.status)
	}
	ce.must(404, get("/Client/sbx"))
	// The policy reads the body: first_party false is not allowed.
	if p, _ := sandboxAPI(t, b, http.MethodPost, strings.Replace(newClient, `"first_party":true`, `"first_party":false`, 1), "X-CSRF-Token", csrf); p.status != http.StatusForbidden {
		t.Errorf("a client the policy does not allow: %d", p.status)
	}

	p, doc = sandboxAPI(t, b, http.MethodPost, newClient, "X-CSRF-Token", csrf)
	if p.status != http.StatusCreated || doc["id"] != "sbx" || doc["callback"] != true || strings.Contains(p.body, "sbx-secret") || strings.Contains(p.body, `"secret"`) {
		t.Fatalf("create: %d %s", p.status, p.body)
	}
	stored := ce.must(200, get("/Client/sbx")).doc
	if at(stored, "auth", "authorization_code", "redirect_uri", 0) != ce.base+"/ui/sandbox/callback" || at(stored, "auth", "password", "token_format") != "jwt" || stored["first_party"] != true {
		t.Errorf("stored client: %v", stored)
	}
	// The client works with its secret.
	r := token(ce.env, url.Values{"grant_type": {"client_credentials"}, "client_id": {"sbx"}, "client_secret": {"sbx-secret-123"}})
	if r.status != http.StatusOK || strings.Count(r.doc["access_token"].(string), ".") != 2 {
		t.Errorf("client_credentials with the new client: %d %s", r.status, r.raw)
	}
	// The same id again is a conflict; a bad setting is the engine's 422.
	if p, _ := sandboxAPI(t, b, http.MethodPost, newClient, "X-CSRF-Token", csrf); p.status != http.StatusConflict {
		t.Errorf("the same id again: %d %s", p.status, p.body)
	}
	if p, doc := sandboxAPI(t, b, http.MethodPost, `{"id":"bad","grant_types":["implicit"],"first_party":true}`, "X-CSRF-Token", csrf); p.status != http.StatusUnprocessableEntity || doc["resourceType"] != "OperationOutcome" {
		t.Errorf("implicit grant: %d %s", p.status, p.body)
	}

	// Without GET /Client the list is refused, and nothing of it is sent.
	ce.must(200, yamlPut("/AccessPolicy/sandbox-user1", `
engine: matcho
link: [{resourceType: User, id: user1}]
matcho: {request-method: get, uri: /ui/sandbox}
`))
	if p, _ := sandboxAPI(t, b, http.MethodGet, ""); p.status != http.StatusForbidden || strings.Contains(p.body, "codeapp") {
		t.Errorf("list without GET /Client: %d %s", p.status, p.body)
	}
}

// sandboxPolicyYAML is the policy docs/smart.md gives a User for the sandbox: the page,
// and listing and creating Clients.
const sandboxPolicyYAML = `
resourceType: AccessPolicy
description: alice may use the Auth Sandbox, list Clients and create them
engine: matcho
link: [{resourceType: User, id: alice}]
matcho:
  request-method: {$enum: [get, post]}
  uri: {$enum: [/ui/sandbox, /Client]}
`

// The policy of docs/smart.md is enough for the page and both calls of its API, and
// gives nothing else.
func TestSandboxDocumentedPolicy(t *testing.T) { forEachBackend(t, testSandboxDocumentedPolicy) }

func testSandboxDocumentedPolicy(t *testing.T) {
	ce := newCodeEnv(t)
	ce.must(201, put("/User/alice", `{"userName":"alice","password":"a-long-password"}`))
	ce.must(201, yamlPut("/AccessPolicy/sandbox-alice", sandboxPolicyYAML))
	b := ce.browser(t)
	p := b.login(b.get("/ui/sandbox"), "alice", "a-long-password")
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		t.Fatalf("page: %d %s", p.status, p.body)
	}
	if p, _ := sandboxAPI(t, b, http.MethodGet, ""); p.status != http.StatusOK {
		t.Errorf("list: %d %s", p.status, p.body)
	}
	if p, _ := sandboxAPI(t, b, http.MethodPost, `{"id":"alice-app","secret":"alice-app-secret","grant_types":["client_credentials"]}`, "X-CSRF-Token", m[1]); p.status != http.StatusCreated {
		t.Errorf("create: %d %s", p.status, p.body)
	}
}

// The sandbox answers no CORS, whatever FHIRBOX_CORS_ORIGINS says: its page and API are
// for the browser on fhirbox's own origin, never for scripts of other origins.
func TestSandboxNoCORS(t *testing.T) { forEachBackend(t, testSandboxNoCORS) }

func testSandboxNoCORS(t *testing.T) {
	const origin = "https://app.example"
	e := newEnv(t, withCORS(origin))
	for _, r := range []req{
		{method: http.MethodGet, path: "/ui/sandbox"},
		{method: http.MethodGet, path: "/ui/sandbox/api/clients"},
		{method: http.MethodOptions, path: "/ui/sandbox/api/clients", hdr: []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-csrf-token"}},
		{method: http.MethodGet, path: "/ui/static/sandbox.js"},
	} {
		r.anonymous = true
		r.hdr = append(r.hdr, "Origin", origin)
		if got := e.do(r).header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("%s %s: Access-Control-Allow-Origin %q", r.method, r.path, got)
		}
	}
}

// wrongToken returns tok with its first character changed (a token that starts with "x"
// made "x"+tok[1:] the right one, one run in 64).
func wrongToken(tok string) string {
	if strings.HasPrefix(tok, "x") {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}
