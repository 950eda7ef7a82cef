package server_test

import (
	"crypto/rand"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/auth"
)

// The authorization code tests drive the sign-in pages as a browser would: a real HTTP
// server, a net/http client with a cookie jar that follows the server's own redirects
// and stops at the client's redirect URI.

// codeAppYAML is a public client of the authorization code flow, with refresh tokens
// and JWTs; its redirect URI is never dialled (the test browser stops there).
const codeAppYAML = `
name: Code App
grant_types: [authorization_code, refresh_token]
scope: [openid, fhirUser, patient/*.read, offline_access, online_access, launch, launch/patient]
auth:
  authorization_code:
    redirect_uri: https://app.example/cb
    token_format: jwt
    refresh_token: true
`

const codeRedirect = "https://app.example/cb"

// codeEnv is an env served over HTTP at its base URL, with the client codeapp and
// user1 (password1).
type codeEnv struct {
	*env
	base string
}

func newCodeEnv(t *testing.T, opts ...envOption) *codeEnv {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	e := newEnv(t, append([]envOption{withBaseURL(base)}, opts...)...)
	ts.Config.Handler = e.srv
	ts.Start()
	t.Cleanup(ts.Close)
	e.must(201, yamlPut("/Client/codeapp", codeAppYAML))
	e.must(201, put("/User/user1", `{"email":"user1@example.com","userName":"uone","password":"password1"}`))
	return &codeEnv{env: e, base: base}
}

// testBrowser is a cookie-keeping HTTP client.
type testBrowser struct {
	t    *testing.T
	ce   *codeEnv
	http *http.Client
	// setCookies are the Set-Cookie headers of every answer, redirects included.
	setCookies []string
}

// recordCookies is a transport that keeps every Set-Cookie header for the test to see.
type recordCookies struct{ b *testBrowser }

func (rc recordCookies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		rc.b.setCookies = append(rc.b.setCookies, resp.Header.Values("Set-Cookie")...)
	}
	return resp, err
}

func (ce *codeEnv) browser(t *testing.T) *testBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(ce.base, "http://")
	b := &testBrowser{t: t, ce: ce}
	b.http = &http.Client{Jar: jar, Transport: recordCookies{b}, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is an answer the test browser got.
type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL // the URL it answered (after the server's own redirects)
}

func (b *testBrowser) do(r *http.Request) *page {
	b.t.Helper()
	resp, err := b.http.Do(r)
	if err != nil {
		b.t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{status: resp.StatusCode, header: resp.Header, body: string(body), url: resp.Request.URL}
}

func (b *testBrowser) get(path string) *page {
	b.t.Helper()
	r, err := http.NewRequest(http.MethodGet, b.ce.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(r)
}

func (b *testBrowser) post(path string, form url.Values) *page {
	b.t.Helper()
	r, err := http.NewRequest(http.MethodPost, b.ce.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(r)
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// fields are the hidden fields of the page's form.
func (p *page) fields() url.Values {
	out := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		out.Set(m[1], html.UnescapeString(m[2]))
	}
	return out
}

// redirect is where the page sends the browser off the server; nil when it does not.
func (p *page) redirect(t *testing.T) *url.URL {
	t.Helper()
	if p.status != http.StatusFound && p.status != http.StatusSeeOther {
		return nil
	}
	u, err := url.Parse(p.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// login fills the login form of p.
func (b *testBrowser) login(p *page, user, password string) *page {
	b.t.Helper()
	f := p.fields()
	if f.Get("csrf") == "" {
		b.t.Fatalf("no login form: %d %s", p.status, p.body)
	}
	f.Set("username", user)
	f.Set("password", password)
	return b.post("/auth/login", f)
}

// pkcePair is a fresh code verifier and its S256 challenge.
func pkcePair(t *testing.T) (verifier, challenge string) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(buf)
	return verifier, auth.S256(verifier)
}

// authorizeQuery is an authorization request of codeapp.
func authorizeQuery(challenge string, extra ...string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {"codeapp"}, "redirect_uri": {codeRedirect},
		"state": {"st-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return "/auth/authorize?" + q.Encode()
}

// signInForCode runs the whole browser side (login, consent) and returns the code.
func (b *testBrowser) signInForCode(query string) string {
	b.t.Helper()
	p := b.get(query)
	if p.status == http.StatusOK && strings.Contains(p.body, `action="/auth/login"`) {
		p = b.login(p, "user1", "password1")
	}
	if p.status == http.StatusOK && strings.Contains(p.body, `action="/auth/consent"`) {
		f := p.fields()
		f.Set("decision", "allow")
		p = b.post("/auth/consent", f)
	}
	to := p.redirect(b.t)
	if to == nil || to.Query().Get("code") == "" {
		b.t.Fatalf("no code: %d %v %s", p.status, p.header, p.body)
	}
	return to.Query().Get("code")
}

// exchange posts the token request of codeapp for code.
func (ce *codeEnv) exchange(code, verifier string, extra ...string) *resp {
	f := url.Values{"grant_type": {"authorization_code"}, "client_id": {"codeapp"}, "code": {code},
		"redirect_uri": {codeRedirect}, "code_verifier": {verifier}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			f.Del(extra[i])
		} else {
			f.Set(extra[i], extra[i+1])
		}
	}
	return token(ce.env, f)
}
