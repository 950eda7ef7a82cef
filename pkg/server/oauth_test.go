package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// clock is an adjustable time source for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(c *clock) envOption { return func(a *app.Config) { a.Now = c.Now } }

func withLimiter(l *auth.Limiter) envOption { return func(a *app.Config) { a.Limiter = l } }

// myapp is the Aidbox documentation's client, written in YAML.
const myappYAML = `
secret: verysecret
grant_types: [password, refresh_token, client_credentials]
auth:
  password:
    token_format: jwt
    access_token_expiration: 300
    refresh_token: true
    refresh_token_expiration: 86400
  client_credentials:
    token_format: opaque
    token_expiration: 600
`

func setupMyapp(t *testing.T, e *env) {
	t.Helper()
	e.must(201, yamlPut("/Client/myapp", myappYAML))
	e.must(201, put("/User/user1", `{"email":"user1@example.com","userName":"uone","password":"password1","data":{"patient_id":"pt-1"}}`))
}

// token posts to /auth/token; form is either url.Values (a form body) or a JSON string.
func token(e *env, body any, hdr ...string) *resp {
	e.t.Helper()
	r := req{method: http.MethodPost, path: "/auth/token", anonymous: true, hdr: hdr}
	switch b := body.(type) {
	case url.Values:
		r.body = b.Encode()
		r.hdr = append([]string{"Content-Type", "application/x-www-form-urlencoded;charset=UTF-8"}, r.hdr...)
	case string:
		r.body = b
	}
	return e.do(r)
}

func bearer(tok string, r req) req {
	r.anonymous = true
	r.hdr = append(r.hdr, "Authorization", "Bearer "+tok)
	return r
}

// jwtParts decodes a JWT's header and claims without verifying it.
func jwtParts(t *testing.T, tok string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, dst) != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	return hdr, claims
}

// checkTokenResponse asserts conformance C1.
func checkTokenResponse(t *testing.T, r *resp) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("token: status %d: %s", r.status, r.raw)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("C1 headers: %v", r.header)
	}
	if r.doc["token_type"] != "Bearer" || r.doc["access_token"] == "" {
		t.Errorf("C1 body: %s", r.raw)
	}
	if n, ok := r.doc["expires_in"].(float64); !ok || n != float64(int64(n)) || n <= 0 {
		t.Errorf("C1 expires_in %v is not a positive integer", r.doc["expires_in"])
	}
}

// oauthErrorOf asserts an RFC 6749 error response (conformance T3) and returns its code.
func oauthErrorOf(t *testing.T, r *resp, status int) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("T3: error without Cache-Control: no-store")
	}
	code, _ := r.doc["error"].(string)
	if code == "" {
		t.Fatalf("no error code: %s", r.raw)
	}
	if d, _ := r.doc["error_description"].(string); strings.ContainsAny(d, "\"\\") || strings.IndexFunc(d, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		t.Errorf("T3: error_description %q is not printable ASCII without quote and backslash", d)
	}
	return code
}

// The Aidbox password-grant flows: JSON credentials and Basic, JWT with refresh and
// expiration settings, the token acting for the user, GET /Session, userinfo and
// DELETE /Session (conformance C1, C5, T6, B2, R7).
func TestPasswordGrantFlow(t *testing.T) { forEachBackend(t, testPasswordGrantFlow) }

func testPasswordGrantFlow(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient"}`))

	r := token(e, `{"grant_type":"password","client_id":"myapp","client_secret":"verysecret","username":"user1@example.com","password":"password1"}`)
	checkTokenResponse(t, r)
	if r.doc["expires_in"] != 300.0 || r.doc["refresh_token"] == nil {
		t.Errorf("expiration settings not applied: %s", r.raw)
	}
	if at(r.doc, "userinfo", "id") != "user1" || at(r.doc, "userinfo", "password") != nil {
		t.Errorf("userinfo %v", r.doc["userinfo"])
	}
	access := r.doc["access_token"].(string)
	hdr, claims := jwtParts(t, access)
	if hdr["alg"] != "RS256" || hdr["kid"] == nil {
		t.Errorf("C5 header %v", hdr)
	}
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id"} {
		if claims[c] == nil {
			t.Errorf("C5: claim %s missing: %v", c, claims)
		}
	}
	if claims["iss"] != testBase || claims["sub"] != "user1" || claims["client_id"] != "myapp" || claims["aud"] != "myapp" {
		t.Errorf("claims %v", claims)
	}

	// Basic client credentials and a form body; the user found by userName and by id.
	for _, u := range []string{"uone", "user1"} {
		checkTokenResponse(t, token(e, url.Values{"grant_type": {"password"}, "username": {u}, "password": {"password1"}}, "Authorization", basicAuth("myapp", "verysecret")))
	}

	// conformance T6: an unknown user and a wrong password get the same answer.
	wrong := token(e, url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {"nope"}})
	unknown := token(e, url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"ghost"}, "password": {"nope"}})
	if oauthErrorOf(t, wrong, 400) != "invalid_grant" || oauthErrorOf(t, unknown, 400) != "invalid_grant" || string(wrong.raw) != string(unknown.raw) {
		t.Errorf("T6: wrong password %s, unknown user %s", wrong.raw, unknown.raw)
	}

	// The token acts for the user: denied until a policy allows the user.
	e.must(403, bearer(access, get("/fhir/Patient/pt-1")))
	e.must(201, yamlPut("/AccessPolicy/user1-own", `
engine: matcho
link: [{resourceType: User, id: user1}]
matcho: {request-method: get, params: {resource/id: .user.data.patient_id}}
`))
	e.must(200, bearer(access, get("/fhir/Patient/pt-1")))
	e.must(403, bearer(access, get("/fhir/Patient/pt-2")))
	r = e.must(200, bearer(access, get("/auth/userinfo")))
	if r.doc["id"] != "user1" || r.doc["password"] != nil {
		t.Errorf("userinfo %s", r.raw)
	}

	// GET /Session lists the sessions, searchable by user, without any token or hash.
	r = e.must(200, get("/Session?user=User/user1&_count=50"))
	if n := len(entryIDs(r)); n != 3 {
		t.Errorf("%d sessions of user1, want 3", n)
	}
	if strings.Contains(string(r.raw), "hash") || strings.Contains(string(r.raw), access) {
		t.Errorf("GET /Session shows token material: %s", r.raw)
	}
	jti := claims["jti"].(string)
	s := e.must(200, get("/Session/"+jti))
	if at(s.doc, "type") != "password" || at(s.doc, "user", "id") != "user1" || at(s.doc, "client", "id") != "myapp" || at(s.doc, "exp") == nil {
		t.Errorf("session %s", s.raw)
	}

	// DELETE /Session closes this token's session: 401 afterwards (conformance B2), and again
	// 200.
	r = e.must(200, bearer(access, req{method: http.MethodDelete, path: "/Session"}))
	if string(r.raw) != "{}" && strings.TrimSpace(string(r.raw)) != "{}" {
		t.Errorf("C4 body %s", r.raw)
	}
	r = e.must(401, bearer(access, get("/fhir/Patient/pt-1")))
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("B2 challenge %q", r.header.Get("WWW-Authenticate"))
	}
	e.must(200, bearer(access, req{method: http.MethodDelete, path: "/Session"}))
	e.must(410, get("/Session/"+jti))
}

// Client credentials with an opaque token and the seed's AccessPolicy (the Aidbox docs'
// example), conformance T2: no refresh token; conformance T5, T7.
func TestClientCredentials(t *testing.T) { forEachBackend(t, testClientCredentials) }

func testClientCredentials(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, yamlPut("/AccessPolicy/api-client", `
engine: allow
link: [{id: myapp, resourceType: Client}]
`))
	r := token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth("myapp", "verysecret"))
	checkTokenResponse(t, r)
	if r.doc["refresh_token"] != nil || r.doc["expires_in"] != 600.0 {
		t.Errorf("T2 / token_expiration: %s", r.raw)
	}
	tok := r.doc["access_token"].(string)
	if strings.Count(tok, ".") != 0 || len(tok) != 43 {
		t.Errorf("opaque token %q is not 32 bytes base64url", tok)
	}
	e.must(200, bearer(tok, get("/fhir/Patient")))
	e.must(200, req{method: http.MethodGet, path: "/fhir/Patient", anonymous: true, hdr: []string{"Authorization", "bearer " + tok}}) // conformance B5

	// conformance C3: Basic credentials are URL-decoded after base64 (RFC 6749 §2.3.1): a
	// client that form-encodes them ("verysecret" as "very%73ecret") and one that sends them
	// raw agree.
	checkTokenResponse(t, token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("myapp:very%73ecret"))))

	// conformance T5: wrong secret through Basic → 401 with a Basic challenge; in the body →
	// 400.
	r = token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth("myapp", "wrong"))
	if oauthErrorOf(t, r, 401) != "invalid_client" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("T5 basic: %v %s", r.header, r.raw)
	}
	r = token(e, url.Values{"grant_type": {"client_credentials"}, "client_id": {"myapp"}, "client_secret": {"wrong"}})
	if oauthErrorOf(t, r, 400) != "invalid_client" {
		t.Errorf("T5 body: %s", r.raw)
	}
	r = token(e, url.Values{"grant_type": {"client_credentials"}, "client_id": {"ghost"}, "client_secret": {"x"}})
	if oauthErrorOf(t, r, 400) != "invalid_client" {
		t.Errorf("T5 unknown: %s", r.raw)
	}
	r = token(e, url.Values{"grant_type": {"client_credentials"}, "client_id": {"myapp"}})
	if oauthErrorOf(t, r, 400) != "invalid_client" {
		t.Errorf("T5 confidential client without secret: %s", r.raw)
	}
	// conformance T7: a grant the client does not list.
	e.must(201, yamlPut("/Client/pwonly", "secret: s3\ngrant_types: [password]\n"))
	r = token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth("pwonly", "s3"))
	if oauthErrorOf(t, r, 400) != "unauthorized_client" {
		t.Errorf("T7: %s", r.raw)
	}
	r = token(e, url.Values{"grant_type": {"magic"}}, "Authorization", basicAuth("pwonly", "s3"))
	if oauthErrorOf(t, r, 400) != "unsupported_grant_type" {
		t.Errorf("T7 unknown grant: %s", r.raw)
	}
}

// Token endpoint request checks: conformance T1, T4, T8, C2.
func TestTokenRequestErrors(t *testing.T) { forEachBackend(t, testTokenRequestErrors) }

func testTokenRequestErrors(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	r := e.do(req{method: http.MethodGet, path: "/auth/token", anonymous: true})
	if r.status != 405 && r.status != 400 {
		t.Errorf("T1 GET: %d", r.status)
	}
	r = e.do(req{method: http.MethodPost, path: "/auth/token?client_secret=verysecret", anonymous: true, body: "grant_type=client_credentials&client_id=myapp", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}})
	if oauthErrorOf(t, r, 400) != "invalid_request" {
		t.Errorf("T1 secret in query: %s", r.raw)
	}
	tests := []struct {
		name string
		body any
		hdr  []string
		want string
	}{
		{"T4 missing grant_type", url.Values{"client_id": {"myapp"}}, nil, "invalid_request"},
		{"T4 missing password", url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}}, nil, "invalid_request"},
		{"T4 repeated parameter", "grant_type=password&grant_type=password&client_id=myapp", nil, "invalid_request"},
		{"T4 Basic and body", url.Values{"grant_type": {"client_credentials"}, "client_secret": {"verysecret"}}, []string{"Authorization", basicAuth("myapp", "verysecret")}, "invalid_request"},
		{"T8 empty password is absent", url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {""}}, nil, "invalid_request"},
		{"JSON not an object", `[1]`, nil, "invalid_request"},
		// U+0000 reached PostgreSQL in a user look-up or a Session's audience: a 500.
		{"NUL in username", url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user\x001"}, "password": {"x"}}, nil, "invalid_request"},
		{"invalid UTF-8 in audience", "grant_type=client_credentials&client_id=myapp&client_secret=verysecret&audience=a%ffb", nil, "invalid_request"},
		{"NUL in audience (JSON)", `{"grant_type":"client_credentials","client_id":"myapp","client_secret":"verysecret","audience":"a\u0000"}`, nil, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *resp
			if s, ok := tt.body.(string); ok && !strings.HasPrefix(s, "[") && !strings.HasPrefix(s, "{") {
				r = e.in(t).do(req{method: http.MethodPost, path: "/auth/token", anonymous: true, body: s, hdr: append([]string{"Content-Type", "application/x-www-form-urlencoded"}, tt.hdr...)})
			} else {
				r = token(e.in(t), tt.body, tt.hdr...)
			}
			if got := oauthErrorOf(t, r, 400); got != tt.want {
				t.Errorf("error %s, want %s", got, tt.want)
			}
		})
	}
	// conformance T8: unknown parameters are ignored; conformance C2: a charset on the form
	// type is fine.
	checkTokenResponse(t, token(e, url.Values{"grant_type": {"client_credentials"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "foo": {"bar"}, "scope": {""}}))
}

// Refresh tokens rotate; the old one's reuse closes the session (conformance S2); another
// client's refresh token is invalid_grant (conformance T6); refresh_token_expiration slides.
func TestRefreshRotation(t *testing.T) { forEachBackend(t, testRefreshRotation) }

func testRefreshRotation(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	setupMyapp(t, e)
	e.must(201, yamlPut("/Client/other", "secret: other-secret\ngrant_types: [password, refresh_token]\nauth: {password: {refresh_token: true}}\n"))
	pw := url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {"password1"}}
	first := token(e, pw)
	checkTokenResponse(t, first)
	rt1 := first.doc["refresh_token"].(string)
	refresh := func(rt string, client ...string) *resp {
		id, sec := "myapp", "verysecret"
		if len(client) == 2 {
			id, sec = client[0], client[1]
		}
		return token(e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "Authorization", basicAuth(id, sec))
	}
	if code := oauthErrorOf(t, refresh(rt1, "other", "other-secret"), 400); code != "invalid_grant" {
		t.Errorf("another client's refresh token: %s", code)
	}
	clk.Advance(time.Hour) // access token (300 s) expired, refresh (1 day, sliding) not
	e.must(401, bearer(first.doc["access_token"].(string), get("/auth/userinfo")))
	second := refresh(rt1)
	checkTokenResponse(t, second)
	rt2 := second.doc["refresh_token"].(string)
	if rt2 == rt1 {
		t.Fatal("the refresh token did not rotate")
	}
	e.must(200, bearer(second.doc["access_token"].(string), get("/auth/userinfo")))
	// conformance S2: the old refresh token comes back: invalid_grant, and the newest one
	// dies too.
	if code := oauthErrorOf(t, refresh(rt1), 400); code != "invalid_grant" {
		t.Errorf("reuse: %s", code)
	}
	if code := oauthErrorOf(t, refresh(rt2), 400); code != "invalid_grant" {
		t.Errorf("S2: the newest refresh token of a reused family still works: %s", code)
	}
	e.must(401, bearer(second.doc["access_token"].(string), get("/auth/userinfo")))

	// Sliding expiry: each refresh pushes refresh_token_exp a day ahead.
	r := token(e, pw)
	rt := r.doc["refresh_token"].(string)
	for range 3 {
		clk.Advance(20 * time.Hour)
		r = refresh(rt)
		checkTokenResponse(t, r)
		rt = r.doc["refresh_token"].(string)
	}
	clk.Advance(25 * time.Hour)
	if code := oauthErrorOf(t, refresh(rt), 400); code != "invalid_grant" {
		t.Errorf("expired refresh token: %s", code)
	}
}

// The bearer checks of resource endpoints: conformance B1, B2, B4, B6, expiry.
func TestBearerAuthentication(t *testing.T) { forEachBackend(t, testBearerAuthentication) }

func testBearerAuthentication(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	setupMyapp(t, e)
	e.must(201, yamlPut("/AccessPolicy/api-client", "engine: allow\nlink: [{id: myapp, resourceType: Client}]\n"))
	tok := token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth("myapp", "verysecret")).doc["access_token"].(string)

	r := e.must(401, anon(get("/fhir/Patient")))
	if got := r.header.Values("WWW-Authenticate"); len(got) == 0 || got[0] != `Bearer realm="fhirbox"` {
		t.Errorf("B1 challenge %v", got)
	}
	for _, bad := range []string{"nope", tok + "x", strings.Repeat("a", 9000)} {
		r = e.must(401, bearer(bad, get("/fhir/Patient")))
		if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("B2 challenge %q", r.header.Get("WWW-Authenticate"))
		}
	}
	e.must(400, anon(get("/fhir/Patient", "Authorization", "Bearer")))                // conformance B4
	e.must(400, anon(get("/fhir/Patient", "Authorization", "Bearer a b")))            // conformance B4
	e.must(400, bearer(tok, get("/fhir/Patient?access_token="+url.QueryEscape(tok)))) // conformance B4
	e.must(400, anon(get("/fhir/Patient?access_token="+url.QueryEscape(tok))))        // conformance B6
	e.must(200, bearer(tok, get("/fhir/Patient")))
	clk.Advance(601 * time.Second)
	e.must(401, bearer(tok, get("/fhir/Patient"))) // expired
}

// JWT attacks through the router (conformance J1, J2, J3, J7, J8): each is a 401, never a 500.
func TestJWTAttacks(t *testing.T) { forEachBackend(t, testJWTAttacks) }

func testJWTAttacks(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, yamlPut("/AccessPolicy/u1", "engine: allow\nlink: [{id: user1, resourceType: User}]\n"))
	r := token(e, url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {"password1"}})
	access, refresh := r.doc["access_token"].(string), r.doc["refresh_token"].(string)
	e.must(200, bearer(access, get("/fhir/Patient")))
	parts := strings.Split(access, ".")
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	_, claims := jwtParts(t, access)
	hdr, _ := jwtParts(t, access)

	none := enc(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."
	jwks := e.must(200, anon(get("/.well-known/jwks.json")))
	n, _ := at(jwks.doc, "keys", 0, "n").(string)
	hsHdr := enc(map[string]any{"alg": "HS256", "typ": "JWT", "kid": hdr["kid"]})
	mac := hmac.New(sha256.New, []byte(n))
	mac.Write([]byte(hsHdr + "." + parts[1]))
	hs := hsHdr + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	claims["sub"] = "admin"
	altered := parts[0] + "." + enc(claims) + "." + parts[2]
	tests := map[string]string{
		"J1 alg none":                  none,
		"J2 HS256 with the public key": hs,
		"J3 altered payload":           altered,
		"J3 stripped signature":        parts[0] + "." + parts[1] + ".",
		"J7 refresh token as access":   refresh,
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			r := e.in(t).must(401, bearer(tok, get("/fhir/Patient")))
			if !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("challenge %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	// conformance J8: a valid JWT whose Session was deleted through CRUD.
	jti := claims["jti"].(string)
	e.must(200, del("/Session/"+jti))
	e.must(401, bearer(access, get("/fhir/Patient")))
}

// Users: deactivating or changing the password closes their sessions.
func TestUserChangesCloseSessions(t *testing.T) { forEachBackend(t, testUserChangesCloseSessions) }

func testUserChangesCloseSessions(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, yamlPut("/AccessPolicy/u1", "engine: allow\nlink: [{id: user1, resourceType: User}]\n"))
	login := func() string {
		r := token(e, url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {"password1"}})
		checkTokenResponse(t, r)
		return r.doc["access_token"].(string)
	}
	tok := login()
	e.must(200, bearer(tok, get("/auth/userinfo")))
	// An unrelated change keeps the session.
	e.must(200, put("/User/user1", `{"email":"user1@example.com","userName":"uone","data":{"patient_id":"pt-1"},"name":{"text":"One"}}`))
	e.must(200, bearer(tok, get("/auth/userinfo")))
	e.must(200, put("/User/user1", `{"email":"user1@example.com","userName":"uone","password":"password1"}`))
	e.must(401, bearer(tok, get("/auth/userinfo")))
	tok = login()
	e.must(200, put("/User/user1", `{"email":"user1@example.com","userName":"uone","inactive":true}`))
	e.must(401, bearer(tok, get("/auth/userinfo")))
	r := token(e, url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {"password1"}})
	if oauthErrorOf(t, r, 400) != "invalid_grant" {
		t.Errorf("an inactive user signed in: %s", r.raw)
	}
}

// secret_required, public clients and audience (conformance S5).
func TestPasswordClientSettings(t *testing.T) { forEachBackend(t, testPasswordClientSettings) }

func testPasswordClientSettings(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, yamlPut("/Client/spa", "grant_types: [password]\n"))
	e.must(201, yamlPut("/Client/strict", "secret: strict-secret\ngrant_types: [password]\nauth: {password: {secret_required: true, audience: [https://api.example.com]}}\n"))
	creds := url.Values{"grant_type": {"password"}, "username": {"user1"}, "password": {"password1"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range creds {
			v[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	checkTokenResponse(t, token(e, with("client_id", "spa")))
	if code := oauthErrorOf(t, token(e, with("client_id", "strict")), 400); code != "invalid_client" {
		t.Errorf("secret_required: %s", code)
	}
	r := token(e, with("client_id", "strict", "client_secret", "strict-secret", "audience", "https://api.example.com"))
	checkTokenResponse(t, r)
	if code := oauthErrorOf(t, token(e, with("client_id", "strict", "client_secret", "strict-secret", "audience", "https://evil.example.com")), 400); code != "invalid_target" {
		t.Errorf("audience outside the allowed ones: %s", code)
	}
	r = token(e, with("client_id", "myapp", "client_secret", "verysecret", "audience", "https://fhir.example.com"))
	if _, c := jwtParts(t, r.doc["access_token"].(string)); c["aud"] != "https://fhir.example.com" {
		t.Errorf("aud %v", c["aud"])
	}
	// Client settings are validated on write (422 naming the field).
	r = e.must(422, yamlPut("/Client/bad", "grant_types: [password]\nauth: {password: {token_format: xml}}\n"))
	if at(r.doc, "issue", 0, "expression", 0) != "auth.password.token_format" {
		t.Errorf("expression %v", at(r.doc, "issue", 0, "expression"))
	}
	e.must(422, yamlPut("/Client/bad", "grant_types: [telepathy]\n"))
}

// The redirect-protected password flow: /auth/authorize redirects with a one-time code
// that the password grant then needs (conformance T11, T12). The test is itself the script that
// docs/auth.md 4.7 says the flow does not keep out: it reads the code from Location.
func TestRedirectProtectedPassword(t *testing.T) { forEachBackend(t, testRedirectProtectedPassword) }

func testRedirectProtectedPassword(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	setupMyapp(t, e)
	e.must(201, yamlPut("/Client/webapp", "secret: web-secret\ngrant_types: [password]\nauth: {password: {redirect_uri: 'https://app.example.com/cb'}}\n"))
	authorize := func(q string) *resp {
		return e.do(req{method: http.MethodGet, path: "/auth/authorize?" + q, anonymous: true})
	}
	codeOf := func(r *resp) string {
		t.Helper()
		if r.status != 302 {
			t.Fatalf("authorize: %d %s", r.status, r.raw)
		}
		loc, err := url.Parse(r.header.Get("Location"))
		if err != nil || loc.Host != "app.example.com" || loc.Path != "/cb" {
			t.Fatalf("Location %q", r.header.Get("Location"))
		}
		frag, _ := url.ParseQuery(loc.Fragment)
		if frag.Get("state") != "xyz" || frag.Get("code") == "" {
			t.Fatalf("fragment %q", loc.Fragment)
		}
		return frag.Get("code")
	}
	pw := func(code string) *resp {
		v := url.Values{"grant_type": {"password"}, "client_id": {"webapp"}, "client_secret": {"web-secret"}, "username": {"user1"}, "password": {"password1"}}
		if code != "" {
			v.Set("code", code)
		}
		return token(e, v)
	}
	if code := oauthErrorOf(t, pw(""), 400); code != "invalid_grant" {
		t.Errorf("without code: %s", code)
	}
	code := codeOf(authorize("client_id=webapp&grant_type=password&state=xyz"))
	checkTokenResponse(t, pw(code))
	if c := oauthErrorOf(t, pw(code), 400); c != "invalid_grant" {
		t.Errorf("T11 reused code: %s", c)
	}
	code = codeOf(authorize("client_id=webapp&grant_type=password&state=xyz"))
	clk.Advance(11 * time.Minute)
	if c := oauthErrorOf(t, pw(code), 400); c != "invalid_grant" {
		t.Errorf("T11 expired code: %s", c)
	}
	// conformance T12: an unknown client, or one without a registered redirect_uri, gets no
	// redirect.
	for _, q := range []string{"client_id=ghost&grant_type=password", "client_id=myapp&grant_type=password"} {
		if r := authorize(q); r.status != 400 || r.header.Get("Location") != "" {
			t.Errorf("%s: %d %v", q, r.status, r.header.Get("Location"))
		}
	}
}

// conformance T9: password guessing is slowed per user and per address, and the user gets
// back in.
func TestPasswordBruteForce(t *testing.T) { forEachBackend(t, testPasswordBruteForce) }

func testPasswordBruteForce(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	lim := auth.NewLimiter(auth.LimiterOptions{Free: 3, Base: 2 * time.Second, Max: time.Minute, Now: clk.Now})
	e := newEnv(t, withClock(clk), withLimiter(lim))
	setupMyapp(t, e)
	try := func(pw string) *resp {
		return token(e, url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}, "username": {"user1"}, "password": {pw}})
	}
	for range 4 {
		if c := oauthErrorOf(t, try("guess"), 400); c != "invalid_grant" {
			t.Fatalf("a wrong guess: %s", c)
		}
	}
	r := try("password1")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("after 4 failures: %d %v %s", r.status, r.header, r.raw)
	}
	clk.Advance(3 * time.Second)
	checkTokenResponse(t, try("password1"))
}

// Discovery and JWKS (conformance C5, C6, J10).
func TestDiscoveryAndJWKS(t *testing.T) { forEachBackend(t, testDiscoveryAndJWKS) }

func testDiscoveryAndJWKS(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		r := e.must(200, anon(get(p)))
		if r.doc["issuer"] != testBase || r.doc["token_endpoint"] != testBase+"/auth/token" || r.doc["jwks_uri"] != testBase+"/.well-known/jwks.json" {
			t.Errorf("%s: %s", p, r.raw)
		}
		for _, k := range []string{"authorization_endpoint", "grant_types_supported", "response_types_supported", "token_endpoint_auth_methods_supported"} {
			if r.doc[k] == nil {
				t.Errorf("C6 %s: %s missing", p, k)
			}
		}
		// The authorization code flow (conformance A1).
		if fmt.Sprint(r.doc["response_types_supported"]) != "[code]" || fmt.Sprint(r.doc["code_challenge_methods_supported"]) != "[S256]" ||
			!strings.Contains(fmt.Sprint(r.doc["grant_types_supported"]), "authorization_code") || r.doc["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("A1 %s: %s", p, r.raw)
		}
		if _, ok := r.doc["token_endpoint_auth_signing_alg_values_supported"]; ok {
			t.Errorf("%s lists signing algorithms for client authentication methods it does not offer (RFC 8414 §2)", p)
		}
	}
	r := e.must(200, anon(get("/.well-known/jwks.json")))
	keys, _ := r.doc["keys"].([]any)
	if len(keys) == 0 {
		t.Fatalf("no keys: %s", r.raw)
	}
	for _, k := range keys {
		m := k.(map[string]any)
		if m["kty"] != "RSA" || m["use"] != "sig" || m["alg"] != "RS256" || m["kid"] == nil {
			t.Errorf("C5 key %v", m)
		}
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := m[priv]; ok {
				t.Errorf("J10: JWKS has %s", priv)
			}
		}
	}
}

// Sessions are the token endpoint's: the API can read, search and delete them but not
// write them; a policy linked to a client does not lend its rights to the users who
// sign in through it; deleting a Client ends its sessions; DELETE /Session also takes
// a refresh token or an expired access token.
func TestSessionGuards(t *testing.T) { forEachBackend(t, testSessionGuards) }

func testSessionGuards(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	e.must(201, yamlPut("/Client/app", "secret: app-secret\ngrant_types: [password, client_credentials, refresh_token]\nauth: {password: {refresh_token: true}}\n"))
	e.must(201, put("/User/user1", `{"password":"password1"}`))
	e.must(201, yamlPut("/AccessPolicy/app-all", "engine: allow\nlink: [{id: app, resourceType: Client}]\n"))
	pw := url.Values{"grant_type": {"password"}, "username": {"user1"}, "password": {"password1"}}
	basic := basicAuth("app", "app-secret")

	cc := token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic).doc["access_token"].(string)
	e.must(200, bearer(cc, get("/fhir/Patient")))
	user := token(e, pw, "Authorization", basic)
	checkTokenResponse(t, user)
	r := e.must(403, bearer(user.doc["access_token"].(string), get("/fhir/Patient")))
	if !strings.Contains(outcomeText(t, r), `user "user1"`) {
		t.Errorf("403 does not name the user: %s", r.raw)
	}

	sid := entryIDs(e.must(200, get("/Session?user=User/user1")))[0]
	outcomeText(t, e.must(422, put("/Session/"+sid, `{"type":"password","user":{"resourceType":"User","id":"admin"},"exp":4102444800}`)))
	outcomeText(t, e.must(422, post("/Session", `{"resourceType":"Session","type":"password"}`)))
	outcomeText(t, e.must(422, post("/AuthorizationCode", `{"resourceType":"AuthorizationCode"}`)))

	// DELETE /Session with the refresh token ends the session.
	e.must(200, bearer(user.doc["refresh_token"].(string), req{method: http.MethodDelete, path: "/Session"}))
	e.must(410, get("/Session/"+sid))
	// … and with an access token that has expired.
	opaque := token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic).doc["access_token"].(string)
	clk.Advance(2 * time.Hour)
	n := len(entryIDs(e.must(200, get("/Session?client=Client/app&_count=50"))))
	e.must(200, bearer(opaque, req{method: http.MethodDelete, path: "/Session"}))
	if m := len(entryIDs(e.must(200, get("/Session?client=Client/app&_count=50")))); m != n-1 {
		t.Errorf("an expired access token did not end its session: %d sessions, then %d", n, m)
	}

	// Deleting the client ends its sessions: the same id created again brings none back.
	clk.Advance(-2 * time.Hour)
	cc = token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic).doc["access_token"].(string)
	e.must(200, bearer(cc, get("/fhir/Patient")))
	e.must(200, del("/Client/app"))
	e.must(201, yamlPut("/Client/app", "secret: app-secret\ngrant_types: [client_credentials]\n"))
	e.must(401, bearer(cc, get("/fhir/Patient")))
	if n := len(entryIDs(e.must(200, get("/Session?client=Client/app")))); n != 0 {
		t.Errorf("%d sessions of a deleted client are still open", n)
	}
}

// A real user token through the router: a roleName policy applies to the User's roles,
// and policies see the token's jwt claims and session (the request object of
// docs/accesspolicy.md).
func TestUserTokenPolicies(t *testing.T) { forEachBackend(t, testUserTokenPolicies) }

func testUserTokenPolicies(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, put("/User/doc1", `{"password":"doc-password","roles":["doctor"]}`))
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient"}`))
	e.must(201, yamlPut("/AccessPolicy/doctors-read-patients", `
engine: matcho
roleName: doctor
matcho:
  request-method: get
  uri: '#^/fhir/Patient'
  jwt: {client_id: myapp}
  session: {type: password}
`))
	login := func(u, p string) string {
		r := token(e, url.Values{"grant_type": {"password"}, "username": {u}, "password": {p}}, "Authorization", basicAuth("myapp", "verysecret"))
		checkTokenResponse(t, r)
		return r.doc["access_token"].(string)
	}
	doctor, other := login("doc1", "doc-password"), login("user1", "password1")
	e.must(200, bearer(doctor, get("/fhir/Patient/pt-1")))
	e.must(403, bearer(doctor, get("/fhir/Observation")))
	e.must(403, bearer(other, get("/fhir/Patient/pt-1")))
	// The role is read from the User as it is now: taking it away takes effect at once.
	e.must(200, put("/User/doc1", `{"roles":["nurse"]}`))
	e.must(403, bearer(doctor, get("/fhir/Patient/pt-1")))
}

// Anyone may ask /auth/authorize for a code, and each is a stored row: an address that
// asks for more than 30 within minutes is told to wait (429 with Retry-After, in the
// RFC 6749 §4.1.2.1 error's words), and may ask again once it has.
func TestAuthorizeIsRateLimited(t *testing.T) { forEachBackend(t, testAuthorizeIsRateLimited) }

func testAuthorizeIsRateLimited(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	e.must(201, yamlPut("/Client/webapp", "secret: web-secret\ngrant_types: [password]\nauth: {password: {redirect_uri: 'https://app.example.com/cb'}}\n"))
	authorize := func() *resp {
		return e.do(req{method: http.MethodGet, path: "/auth/authorize?client_id=webapp&grant_type=password&state=s", anonymous: true})
	}
	for i := range 30 {
		if r := authorize(); r.status != 302 {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.raw)
		}
	}
	r := authorize()
	if code := oauthErrorOf(t, r, 429); code != "temporarily_unavailable" {
		t.Errorf("error %q, want temporarily_unavailable", code)
	}
	wait, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || wait < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if n := e.must(200, get("/AuthorizationCode?_summary=count")).doc["total"]; n != float64(30) {
		t.Errorf("%v codes stored, want 30: the refused request stored none", n)
	}
	clk.Advance(time.Duration(wait) * time.Second)
	if r := authorize(); r.status != 302 {
		t.Errorf("after Retry-After: %d %s", r.status, r.raw)
	}
}

// conformance T10: a refresh may narrow the scope, never widen it. The scope granted is
// recorded on the Session and in JWTs, answered in the token response, and a refresh without
// scope gets the whole grant back (RFC 6749 §6); a malformed scope is invalid_scope.
func TestRefreshScope(t *testing.T) { forEachBackend(t, testRefreshScope) }

func testRefreshScope(t *testing.T) {
	e := newEnv(t)
	setupMyapp(t, e)
	e.must(201, yamlPut("/AccessPolicy/scoped-read", `
engine: matcho
link: [{id: user1, resourceType: User}]
matcho: {request-method: get, jwt: {scope: "patient/*.read"}}
`))
	pw := url.Values{"grant_type": {"password"}, "username": {"user1"}, "password": {"password1"}}
	basic := []string{"Authorization", basicAuth("myapp", "verysecret")}
	withScope := func(v url.Values, scope string) url.Values {
		c := url.Values{}
		for k, vs := range v {
			c[k] = vs
		}
		c.Set("scope", scope)
		return c
	}
	first := token(e, withScope(pw, "user/*.read  patient/*.read user/*.read"), basic...)
	checkTokenResponse(t, first)
	if s := first.doc["scope"]; s != "user/*.read patient/*.read" {
		t.Errorf("granted scope %v, want the requested tokens once each, in order", s)
	}
	_, claims := jwtParts(t, first.doc["access_token"].(string))
	if claims["scope"] != "user/*.read patient/*.read" {
		t.Errorf("JWT scope claim %v", claims["scope"])
	}
	refresh := func(rt, scope string) *resp {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return token(e, v, basic...)
	}
	// Narrowing: the new access token carries only what was asked for, and a policy on
	// the JWT's scope sees the narrowed one.
	narrow := refresh(first.doc["refresh_token"].(string), "patient/*.read")
	checkTokenResponse(t, narrow)
	if s := narrow.doc["scope"]; s != "patient/*.read" {
		t.Errorf("narrowed scope %v", s)
	}
	_, claims = jwtParts(t, narrow.doc["access_token"].(string))
	if claims["scope"] != "patient/*.read" {
		t.Errorf("narrowed JWT scope claim %v", claims["scope"])
	}
	// A Practitioner is in no patient's compartment: patient/*.read without a launch
	// patient reads it as the policies allow.
	e.must(201, put("/Practitioner/d1", `{"resourceType":"Practitioner"}`))
	e.must(200, bearer(narrow.doc["access_token"].(string), get("/fhir/Practitioner/d1")))
	e.must(403, bearer(first.doc["access_token"].(string), get("/fhir/Practitioner/d1")))
	// The Session keeps the grant's scope: a refresh without scope gets all of it back.
	sid := claims["jti"].(string)
	sess := e.must(200, get("/Session/"+sid))
	if sess.doc["scope"] != "user/*.read patient/*.read" || sess.doc["access_scope"] != "patient/*.read" {
		t.Errorf("Session scope %v, access_scope %v", sess.doc["scope"], sess.doc["access_scope"])
	}
	whole := refresh(narrow.doc["refresh_token"].(string), "")
	checkTokenResponse(t, whole)
	if s := whole.doc["scope"]; s != "user/*.read patient/*.read" {
		t.Errorf("refresh without scope: %v, want the whole grant", s)
	}
	// Widening is refused, and the refresh token stays usable (nothing was rotated).
	rt := whole.doc["refresh_token"].(string)
	if code := oauthErrorOf(t, refresh(rt, "patient/*.read patient/*.write"), 400); code != "invalid_scope" {
		t.Errorf("widening refresh: %s, want invalid_scope", code)
	}
	checkTokenResponse(t, refresh(rt, "user/*.read"))

	// A session granted no scope cannot gain one by refreshing.
	none := token(e, pw, basic...)
	checkTokenResponse(t, none)
	if _, ok := none.doc["scope"]; ok {
		t.Errorf("a grant without scope answered scope %v", none.doc["scope"])
	}
	if code := oauthErrorOf(t, refresh(none.doc["refresh_token"].(string), "openid"), 400); code != "invalid_scope" {
		t.Errorf("refresh adding a scope: %s, want invalid_scope", code)
	}
	// Malformed scope tokens (quotes, backslashes, control characters) on any grant.
	for _, bad := range []string{`a"b`, `a\b`, "a\tb", "é"} {
		if code := oauthErrorOf(t, token(e, withScope(pw, bad), basic...), 400); code != "invalid_scope" {
			t.Errorf("scope %q: %s, want invalid_scope", bad, code)
		}
	}
	cc := token(e, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.read"}}, basic...)
	checkTokenResponse(t, cc)
	if cc.doc["scope"] != "system/*.read" {
		t.Errorf("client credentials scope %v", cc.doc["scope"])
	}
	// An opaque token's scope reaches policies through its Session.
	e.must(201, yamlPut("/AccessPolicy/scoped-client", `
engine: matcho
link: [{id: myapp, resourceType: Client}]
matcho: {request-method: get, session: {access_scope: "system/*.read"}}
`))
	e.must(200, bearer(cc.doc["access_token"].(string), get("/fhir/Practitioner/d1")))
	unscoped := token(e, url.Values{"grant_type": {"client_credentials"}}, basic...)
	e.must(403, bearer(unscoped.doc["access_token"].(string), get("/fhir/Practitioner/d1")))
}

// A Client's scope lists the scopes it may ask for: asking for more is invalid_scope
// on every grant (conformance T7), and a refresh does not hand out again a scope taken
// off the list since.
func TestClientScopes(t *testing.T) { forEachBackend(t, testClientScopes) }

func testClientScopes(t *testing.T) {
	e := newEnv(t)
	const scopedYAML = `
secret: s3cret
grant_types: [password, refresh_token, client_credentials]
scope: system/*.read patient/*.read
auth:
  password: {refresh_token: true}
`
	e.must(201, yamlPut("/Client/scoped", scopedYAML))
	e.must(201, put("/User/user1", `{"password":"password1"}`))
	basic := []string{"Authorization", basicAuth("scoped", "s3cret")}
	cc := func(scope string) *resp {
		v := url.Values{"grant_type": {"client_credentials"}}
		if scope != "" {
			v.Set("scope", scope)
		}
		return token(e, v, basic...)
	}
	if r := cc("system/*.read"); r.status != 200 || r.doc["scope"] != "system/*.read" {
		t.Errorf("allowed scope: %d %s", r.status, r.raw)
	}
	if r := cc(""); r.status != 200 || r.doc["scope"] != nil {
		t.Errorf("no scope asked: %d %s", r.status, r.raw)
	}
	for _, wider := range []string{"system/*.write", "system/*.read openid"} {
		if code := oauthErrorOf(t, cc(wider), 400); code != "invalid_scope" {
			t.Errorf("T7 client_credentials scope %q: %s, want invalid_scope", wider, code)
		}
	}
	pw := url.Values{"grant_type": {"password"}, "username": {"user1"}, "password": {"password1"}, "scope": {"user/*.read"}}
	if code := oauthErrorOf(t, token(e, pw, basic...), 400); code != "invalid_scope" {
		t.Errorf("T7 password scope beyond the client's: %s, want invalid_scope", code)
	}
	pw.Set("scope", "patient/*.read system/*.read")
	granted := token(e, pw, basic...)
	checkTokenResponse(t, granted)

	// The list shrinks (written as a YAML list this time): refreshing into a scope no
	// longer allowed is refused, a refresh narrowed to what is still allowed works.
	e.must(200, yamlPut("/Client/scoped", strings.Replace(scopedYAML, "scope: system/*.read patient/*.read", "scope: [system/*.read]", 1)))
	refresh := func(rt, scope string) *resp {
		return token(e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {scope}}, basic...)
	}
	rt := granted.doc["refresh_token"].(string)
	if code := oauthErrorOf(t, refresh(rt, ""), 400); code != "invalid_scope" {
		t.Errorf("refresh into a scope taken off the client: %s, want invalid_scope", code)
	}
	if r := refresh(rt, "system/*.read"); r.status != 200 || r.doc["scope"] != "system/*.read" {
		t.Errorf("refresh narrowed to the allowed scope: %d %s", r.status, r.raw)
	}

	// A malformed list is refused on write, naming the field.
	r := e.do(yamlPut("/Client/scoped", strings.Replace(scopedYAML, "scope: system/*.read patient/*.read", `scope: ["a b"]`, 1)))
	if r.status != 422 || !strings.Contains(string(r.raw), "scope[0]") {
		t.Errorf("malformed scope list: %d %s", r.status, r.raw)
	}
}

// HTTP Basic on the API is a grant of its own: a client uses it when its validated
// settings list basic, and a client whose stored settings do not validate (written
// around the API) does not use it at all, as it gets no tokens either.
func TestBasicNeedsTheBasicGrant(t *testing.T) { forEachBackend(t, testBasicNeedsTheBasicGrant) }

func testBasicNeedsTheBasicGrant(t *testing.T) {
	e := newEnv(t)
	e.must(201, yamlPut("/Client/reader", "secret: reader-secret\ngrant_types: [basic]\n"))
	e.must(201, yamlPut("/Client/service", "secret: service-secret\ngrant_types: [client_credentials]\n"))
	// Settings the API refuses (auth.basic), stored as a database edit would.
	hash, err := bcrypt.GenerateFromPassword([]byte("broken-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(map[string]any{"resourceType": "Client", "id": "broken", "secret": string(hash),
		"grant_types": []string{"basic"}, "auth": map[string]any{"basic": map[string]any{}}})
	if _, err := e.store.Write(context.Background(), "Client", "broken", func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "Client", ID: "broken", VersionID: 1, LastUpdated: time.Now(), Content: doc}, &resources.Index{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		client, secret string
		status         int
		says           string
	}{
		// Authenticated; no policy allows it anything.
		{"reader", "reader-secret", 403, ""},
		{"service", "service-secret", 401, "its grant_types do not include basic"},
		{"broken", "broken-secret", 401, "its settings are invalid"},
	} {
		t.Run(tt.client, func(t *testing.T) {
			r := e.do(as(tt.client, tt.secret, get("/fhir/Patient")))
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if msg := outcomeText(t, r); !strings.Contains(msg, tt.says) {
				t.Errorf("diagnostics %q do not say %q", msg, tt.says)
			}
		})
	}
}
