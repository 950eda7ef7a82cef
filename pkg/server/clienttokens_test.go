package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// setupClientTokens writes the clients of the introspection and revocation tests: app
// (confidential, JWT user tokens with refresh, opaque client tokens), other
// (confidential), rs (a resource server: no grant, may introspect every token) and spa
// (public); user1, and a policy that lets them all GET.
func setupClientTokens(t *testing.T, e *env) {
	t.Helper()
	for _, c := range []struct{ id, yaml string }{
		{"app", "secret: app-secret\ngrant_types: [password, client_credentials, refresh_token]\nauth:\n  password: {token_format: jwt, access_token_expiration: 300, refresh_token: true, refresh_token_expiration: 86400}\n  client_credentials: {token_format: opaque, token_expiration: 600}\n"},
		{"other", "secret: other-secret\ngrant_types: [client_credentials]\n"},
		{"rs", "secret: rs-secret\nresource_server: true\n"},
		{"spa", "grant_types: [password]\n"},
	} {
		e.must(201, yamlPut("/Client/"+c.id, c.yaml))
	}
	e.must(201, put("/User/user1", `{"email":"user1@example.com","userName":"uone","password":"password1"}`))
	e.must(201, yamlPut("/AccessPolicy/all-read", "engine: matcho\nmatcho: {request-method: get}\nlink: [{resourceType: Client, id: app}, {resourceType: Client, id: other}, {resourceType: Client, id: spa}, {resourceType: User, id: user1}]\n"))
}

// clientPost posts form to an /auth endpoint as an anonymous caller, with hdr.
func clientPost(e *env, path string, form url.Values, hdr ...string) *resp {
	e.t.Helper()
	return e.do(req{method: http.MethodPost, path: path, anonymous: true, body: form.Encode(),
		hdr: append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)})
}

// tokenOf issues a token of grant to the client with Basic credentials.
func tokenOf(t *testing.T, e *env, id, secret string, form url.Values) map[string]any {
	t.Helper()
	r := token(e, form, "Authorization", basicAuth(id, secret))
	checkTokenResponse(t, r)
	return r.doc
}

// introspect asks as the client (id, secret) about tok, and checks the headers every
// answer has.
func introspect(t *testing.T, e *env, id, secret, tok string, extra ...string) map[string]any {
	t.Helper()
	form := url.Values{"token": {tok}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	r := clientPost(e, "/auth/introspect", form, "Authorization", basicAuth(id, secret))
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("introspect: %d %v %s", r.status, r.header, r.raw)
	}
	return r.doc
}

// clientErrCase is a request to an /auth endpoint that its client gets wrong.
type clientErrCase struct {
	name   string
	form   url.Values
	hdr    []string
	status int
	code   string
}

// checkClientErrors posts each case to path and checks its RFC 6749 error; a 401 must
// challenge with Basic (conformance I1, R1), however the client tried.
func checkClientErrors(t *testing.T, e *env, path string, cases []clientErrCase) {
	t.Helper()
	for _, tt := range cases {
		r := clientPost(e, path, tt.form, tt.hdr...)
		if code := oauthErrorOf(t, r, tt.status); code != tt.code {
			t.Errorf("%s %s: %s, want %s", path, tt.name, r.raw, tt.code)
		}
		if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s %s: 401 without a Basic challenge: %v", path, tt.name, r.header)
		}
	}
}

// inactive asserts the whole answer is {"active": false} (conformance I3).
func inactive(t *testing.T, what string, doc map[string]any) {
	t.Helper()
	if len(doc) != 1 || doc["active"] != false {
		t.Errorf("%s: %v, want exactly {\"active\": false}", what, doc)
	}
}

// Introspection (RFC 7662) of opaque and JWT access tokens and of refresh tokens: what an
// active token's answer says, who may ask about which token, and the one answer for
// everything else (conformance I1–I5).
func TestIntrospection(t *testing.T) { forEachBackend(t, testIntrospection) }

func testIntrospection(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk))
	setupClientTokens(t, e)
	cc := tokenOf(t, e, "app", "app-secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}})
	pw := tokenOf(t, e, "app", "app-secret", url.Values{"grant_type": {"password"}, "username": {"uone"}, "password": {"password1"}, "scope": {"patient/Observation.rs?category=vital-signs openid"}})
	otherTok := tokenOf(t, e, "other", "other-secret", url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)
	opaque, jwtTok, refresh := cc["access_token"].(string), pw["access_token"].(string), pw["refresh_token"].(string)
	_, claims := jwtParts(t, jwtTok)
	now := float64(clk.Now().Unix())

	// What an active token's answer holds, per kind of token.
	for _, tt := range []struct {
		name, tok string
		want      map[string]any
		absent    []string
	}{
		{"opaque client token", opaque, map[string]any{"active": true, "client_id": "app", "sub": "app", "aud": "app", "iss": testBase,
			"scope": "system/*.rs", "token_type": "Bearer", "iat": now, "nbf": now, "exp": now + 600}, []string{"username", "jti", "patient"}},
		{"JWT user token", jwtTok, map[string]any{"active": true, "client_id": "app", "sub": "user1", "username": "uone", "aud": "app", "iss": testBase,
			"scope": "patient/Observation.rs?category=vital-signs openid", "token_type": "Bearer", "iat": now, "nbf": now, "exp": now + 300, "jti": claims["jti"]}, nil},
		{"refresh token", refresh, map[string]any{"active": true, "client_id": "app", "sub": "user1", "username": "uone", "token_type": "refresh_token",
			"scope": "patient/Observation.rs?category=vital-signs openid", "iat": now, "exp": now + 86400}, []string{"jti"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, hint := range []string{"", "access_token", "refresh_token", "no-such-hint"} {
				got := introspect(t, e, "app", "app-secret", tt.tok, "token_type_hint", hint)
				for k, v := range tt.want {
					if got[k] != v {
						t.Errorf("hint %q: %s = %v, want %v (%v)", hint, k, got[k], v, got)
					}
				}
				for _, k := range tt.absent {
					if _, ok := got[k]; ok {
						t.Errorf("hint %q: %s present: %v", hint, k, got)
					}
				}
			}
		})
	}

	// Who sees which token: the owner, a resource server and the root client see it;
	// another client learns nothing, not even that it exists (conformance I4).
	for _, tt := range []struct {
		caller, secret, tok string
		active              bool
	}{
		{"app", "app-secret", otherTok, false},
		{"other", "other-secret", opaque, false},
		{"other", "other-secret", refresh, false},
		{"other", "other-secret", otherTok, true},
		{"rs", "rs-secret", jwtTok, true},
		{"rs", "rs-secret", otherTok, true},
		{adminID, adminToken, refresh, true},
	} {
		got := introspect(t, e, tt.caller, tt.secret, tt.tok)
		if tt.active && got["active"] != true {
			t.Errorf("%s asking about a token it may see: %v", tt.caller, got)
		} else if !tt.active {
			inactive(t, tt.caller+" asking about another client's token", got)
		}
	}

	// Unknown and malformed tokens.
	for _, tok := range []string{"nope", strings.Repeat("x", 43), "a.b.c", jwtTok + "x", strings.Repeat("y", 9000)} {
		inactive(t, "token "+tok[:min(len(tok), 12)], introspect(t, e, "rs", "rs-secret", tok))
	}

	// Expired: the opaque token after 600 s, the JWT after 300 s (and its leeway); the
	// refresh token lives on.
	clk.Advance(301 * time.Second)
	if got := introspect(t, e, "app", "app-secret", opaque); got["active"] != true {
		t.Errorf("opaque token at 301 s: %v", got)
	}
	clk.Advance(300 * time.Second)
	inactive(t, "expired opaque token", introspect(t, e, "app", "app-secret", opaque))
	inactive(t, "expired JWT", introspect(t, e, "app", "app-secret", jwtTok))
	if got := introspect(t, e, "app", "app-secret", refresh); got["active"] != true {
		t.Errorf("refresh token after its access token expired: %v", got)
	}

	// A refresh rotates: the old refresh token is spent, the new pair is active.
	r := tokenOf(t, e, "app", "app-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	inactive(t, "rotated-away refresh token", introspect(t, e, "app", "app-secret", refresh))
	newAccess, newRefresh := r["access_token"].(string), r["refresh_token"].(string)
	if got := introspect(t, e, "app", "app-secret", newAccess); got["active"] != true || got["iat"] != float64(clk.Now().Unix()) {
		t.Errorf("refreshed access token: %v", got)
	}

	// Revoked: closing the Session ends both of its tokens.
	e.must(200, bearer(newAccess, req{method: http.MethodDelete, path: "/Session"}))
	inactive(t, "revoked access token", introspect(t, e, "app", "app-secret", newAccess))
	inactive(t, "revoked refresh token", introspect(t, e, "app", "app-secret", newRefresh))
}

// The introspection caller must authenticate with its secret; every failure is a 401
// invalid_client with a Basic challenge (conformance I1), and a request without a token,
// or with it in the URL, is invalid_request.
func TestIntrospectionCaller(t *testing.T) { forEachBackend(t, testIntrospectionCaller) }

func testIntrospectionCaller(t *testing.T) {
	e := newEnv(t)
	setupClientTokens(t, e)
	tok := tokenOf(t, e, "other", "other-secret", url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)
	checkClientErrors(t, e, "/auth/introspect", []clientErrCase{
		{"no client", url.Values{"token": {tok}}, nil, 401, "invalid_client"},
		{"wrong secret", url.Values{"token": {tok}}, []string{"Authorization", basicAuth("other", "wrong")}, 401, "invalid_client"},
		{"wrong secret in the body", url.Values{"token": {tok}, "client_id": {"other"}, "client_secret": {"wrong"}}, nil, 401, "invalid_client"},
		{"unknown client", url.Values{"token": {tok}}, []string{"Authorization", basicAuth("ghost", "x")}, 401, "invalid_client"},
		{"client_id alone", url.Values{"token": {tok}, "client_id": {"other"}}, nil, 401, "invalid_client"},
		{"public client", url.Values{"token": {tok}, "client_id": {"spa"}}, nil, 401, "invalid_client"},
		{"bearer instead of client credentials", url.Values{"token": {tok}}, []string{"Authorization", "Bearer " + tok}, 400, "invalid_request"},
		{"no token", url.Values{}, []string{"Authorization", basicAuth("other", "other-secret")}, 400, "invalid_request"},
	})
	// client_secret_post works as HTTP Basic does.
	r := clientPost(e, "/auth/introspect", url.Values{"token": {tok}, "client_id": {"other"}, "client_secret": {"other-secret"}})
	if r.status != 200 || r.doc["active"] != true {
		t.Errorf("client_secret_post: %d %s", r.status, r.raw)
	}
	r = e.do(req{method: http.MethodPost, path: "/auth/introspect?token=" + tok, anonymous: true, hdr: []string{"Authorization", basicAuth("other", "other-secret")}})
	if code := oauthErrorOf(t, r, 400); code != "invalid_request" {
		t.Errorf("token in the URL: %s", r.raw)
	}
	for _, path := range []string{"/auth/introspect", "/auth/revoke"} {
		r := e.do(anon(get(path)))
		if code := oauthErrorOf(t, r, 405); code != "invalid_request" || r.header.Get("Allow") != "POST" {
			t.Errorf("GET %s: %v %s", path, r.header, r.raw)
		}
	}
}

// Revocation (RFC 7009): the owning client ends the token's Session, access and refresh
// token alike; another client's token is left alone with the same 200; unknown tokens
// get 200; public clients name themselves; a confidential client must authenticate
// (conformance R1–R9).
func TestRevocation(t *testing.T) { forEachBackend(t, testRevocation) }

func testRevocation(t *testing.T) {
	e := newEnv(t)
	setupClientTokens(t, e)
	app := []string{"Authorization", basicAuth("app", "app-secret")}
	revoke := func(form url.Values, hdr ...string) *resp {
		t.Helper()
		r := clientPost(e, "/auth/revoke", form, hdr...)
		if r.status != 200 || len(r.raw) != 0 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("revoke %v: %d %v %q", form, r.status, r.header, r.raw)
		}
		return r
	}
	works := func(tok string) bool { return e.do(bearer(tok, get("/fhir/Patient"))).status == 200 }
	cc := func(id, secret string) string {
		return tokenOf(t, e, id, secret, url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)
	}
	pw := func(client ...string) map[string]any {
		form := url.Values{"grant_type": {"password"}, "username": {"user1"}, "password": {"password1"}}
		if len(client) == 0 {
			return tokenOf(t, e, "app", "app-secret", form)
		}
		form.Set("client_id", client[0])
		r := token(e, form)
		checkTokenResponse(t, r)
		return r.doc
	}

	// An access token, with any hint or none (conformance R3: a hint is only a hint).
	for _, hint := range []string{"", "access_token", "refresh_token", "no-such-hint"} {
		tok := cc("app", "app-secret")
		revoke(url.Values{"token": {tok}, "token_type_hint": {hint}}, app...)
		if works(tok) {
			t.Errorf("hint %q: the revoked token still works", hint)
		}
		revoke(url.Values{"token": {tok}}, app...) // again: still 200 (conformance R2)
	}
	// A refresh token ends the access token of its grant (conformance R6), with client_secret_post.
	p := pw()
	revoke(url.Values{"token": {p["refresh_token"].(string)}, "client_id": {"app"}, "client_secret": {"app-secret"}})
	if works(p["access_token"].(string)) {
		t.Error("revoking the refresh token left its access token working")
	}
	r := token(e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {p["refresh_token"].(string)}}, app...)
	if code := oauthErrorOf(t, r, 400); code != "invalid_grant" {
		t.Errorf("refresh after revocation: %s", r.raw)
	}
	// Another client's token is not revoked (conformance R5), with the answer an unknown token gets.
	other := cc("other", "other-secret")
	revoke(url.Values{"token": {other}}, app...)
	revoke(url.Values{"token": {"never-issued"}}, app...)
	if !works(other) {
		t.Error("app revoked other's token")
	}
	// A public client names itself and revokes its own tokens, not others' (conformance R8).
	spa := pw("spa")["access_token"].(string)
	revoke(url.Values{"token": {other}, "client_id": {"spa"}})
	if !works(other) {
		t.Error("spa revoked other's token")
	}
	revoke(url.Values{"token": {spa}, "client_id": {"spa"}})
	if works(spa) {
		t.Error("spa's revoked token still works")
	}

	// Client authentication failures (conformance R1) and a missing token.
	own := cc("app", "app-secret")
	checkClientErrors(t, e, "/auth/revoke", []clientErrCase{
		{"confidential client without its secret", url.Values{"token": {own}, "client_id": {"app"}}, nil, 401, "invalid_client"},
		{"wrong secret", url.Values{"token": {own}}, []string{"Authorization", basicAuth("app", "wrong")}, 401, "invalid_client"},
		{"no client", url.Values{"token": {own}}, nil, 401, "invalid_client"},
		{"no token", url.Values{}, app, 400, "invalid_request"},
	})
	if !works(own) {
		t.Error("a refused revocation revoked the token")
	}
	// DELETE /Session stays.
	e.must(200, bearer(own, req{method: http.MethodDelete, path: "/Session"}))
	if works(own) {
		t.Error("DELETE /Session no longer ends the session")
	}
}

// Discovery names both endpoints and their authentication methods (conformance C6); the
// SMART configuration, at the root and under /fhir, lists only what is served (conformance M1); the
// CapabilityStatement carries SMART's oauth-uris extension (conformance M2).
func TestSMARTConfiguration(t *testing.T) { forEachBackend(t, testSMARTConfiguration) }

func testSMARTConfiguration(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		d := e.must(200, anon(get(p))).doc
		if d["introspection_endpoint"] != testBase+"/auth/introspect" || d["revocation_endpoint"] != testBase+"/auth/revoke" {
			t.Errorf("%s: %v", p, d)
		}
		if !sameStrings(d["introspection_endpoint_auth_methods_supported"], "client_secret_basic", "client_secret_post") ||
			!sameStrings(d["revocation_endpoint_auth_methods_supported"], "client_secret_basic", "client_secret_post", "none") ||
			!sameStrings(d["grant_types_supported"], "password", "client_credentials", "refresh_token", "authorization_code") ||
			!sameStrings(d["response_types_supported"], "code") || !sameStrings(d["code_challenge_methods_supported"], "S256") {
			t.Errorf("%s: auth methods or grants: %v", p, d)
		}
	}
	root := e.must(200, anon(get("/.well-known/smart-configuration")))
	under := e.must(200, anon(get("/fhir/.well-known/smart-configuration")))
	if string(root.raw) != string(under.raw) {
		t.Errorf("the two SMART configurations differ:\n%s\n%s", root.raw, under.raw)
	}
	d := root.doc
	for k, v := range map[string]string{"issuer": testBase, "jwks_uri": testBase + "/.well-known/jwks.json", "token_endpoint": testBase + "/auth/token",
		"introspection_endpoint": testBase + "/auth/introspect", "revocation_endpoint": testBase + "/auth/revoke"} {
		if d[k] != v {
			t.Errorf("%s = %v, want %s", k, d[k], v)
		}
	}
	// The authorization-code grant is served, so its endpoint, both launches, their
	// contexts, OpenID Connect, refresh permissions and the enforced scope contexts are
	// listed (TestSMARTConfigurationFollowsGrants covers a server without the grant).
	if !sameStrings(d["capabilities"], "client-confidential-symmetric", "launch-standalone", "launch-ehr", "client-public",
		"context-standalone-patient", "context-ehr-patient", "context-ehr-encounter", "context-banner", "sso-openid-connect",
		"permission-offline", "permission-online", "permission-v1", "permission-v2", "permission-patient", "permission-user") {
		t.Errorf("capabilities %v: only what is served", d["capabilities"])
	}
	if d["authorization_endpoint"] != testBase+"/auth/authorize" {
		t.Errorf("authorization_endpoint %v, want %s/auth/authorize", d["authorization_endpoint"], testBase)
	}
	if !sameStrings(d["code_challenge_methods_supported"], "S256") || !sameStrings(d["response_types_supported"], "code") ||
		!sameStrings(d["grant_types_supported"], "password", "client_credentials", "refresh_token", "authorization_code") ||
		!sameStrings(d["token_endpoint_auth_methods_supported"], "client_secret_basic", "client_secret_post", "none") {
		t.Errorf("grants, response types or PKCE methods: %v", d)
	}
	if scopes, _ := d["scopes_supported"].([]any); len(scopes) == 0 {
		t.Errorf("no scopes_supported: %v", d)
	}

	for _, base := range []string{"", "/fhir"} {
		sec := at(e.must(200, anon(get(base+"/metadata"))).doc, "rest", 0, "security")
		if at(sec, "service", 0, "coding", 0, "code") != "SMART-on-FHIR" || at(sec, "service", 0, "coding", 0, "system") != "http://terminology.hl7.org/CodeSystem/restful-security-service" {
			t.Errorf("%s/metadata security.service: %v", base, sec)
		}
		ext := at(sec, "extension", 0)
		if at(ext, "url") != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			t.Fatalf("%s/metadata: no oauth-uris extension: %v", base, sec)
		}
		uris := map[string]any{}
		for _, x := range at(ext, "extension").([]any) {
			uris[at(x, "url").(string)] = at(x, "valueUri")
		}
		want := map[string]any{"token": testBase + "/auth/token", "introspect": testBase + "/auth/introspect", "revoke": testBase + "/auth/revoke",
			"authorize": testBase + "/auth/authorize"}
		if len(uris) != len(want) {
			t.Errorf("%s/metadata oauth-uris %v, want %v", base, uris, want)
		}
		for k, v := range want {
			if uris[k] != v {
				t.Errorf("%s/metadata oauth-uris %s = %v, want %s", base, k, uris[k], v)
			}
		}
	}
}

// sameStrings reports whether v is a JSON list of exactly want, in order.
func sameStrings(v any, want ...string) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i, w := range want {
		if list[i] != w {
			return false
		}
	}
	return true
}

// SMART scopes at the token endpoint: v1 and v2 resource scopes, with qualifiers, and
// the identity and launch scopes are granted, recorded on the Session and returned;
// malformed SMART scopes are invalid_scope, on a request and in a Client's scope list
// (conformance M3–M5).
func TestSMARTScopes(t *testing.T) { forEachBackend(t, testSMARTScopes) }

func testSMARTScopes(t *testing.T) {
	e := newEnv(t)
	setupClientTokens(t, e)
	app := []string{"Authorization", basicAuth("app", "app-secret")}
	scope := "patient/Observation.rs?category=vital-signs user/*.cruds system/*.read patient/*.* user/Observation.write openid fhirUser launch/patient offline_access online_access my-own-scope"
	r := token(e, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, app...)
	checkTokenResponse(t, r)
	if r.doc["scope"] != scope {
		t.Errorf("scope in the token response: %v", r.doc["scope"])
	}
	s := e.must(200, get("/Session?client=Client/app"))
	if got := at(s.doc, "entry", 0, "resource", "scope"); got != scope {
		t.Errorf("scope on the Session: %v", got)
	}
	// Enforced (conformance M5): a system/Patient.read token does what both the policies
	// (all-read: GET only) and its scope allow.
	tok := tokenOf(t, e, "app", "app-secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.read"}})["access_token"].(string)
	e.must(200, bearer(tok, get("/fhir/Patient")))
	if r := e.must(403, bearer(tok, get("/fhir/Observation"))); !strings.Contains(outcomeText(t, r), "system/Patient.read") {
		t.Errorf("refusal does not name the scope: %s", r.raw)
	}
	e.must(403, bearer(tok, post("/fhir/Patient", `{"resourceType":"Patient"}`)))

	for _, bad := range []string{
		"patient/Observation.xyz", "patient/Observation", "user/observation.rs", "system/*.sr", "patient/*.read?category=x",
		"patient/Observation.rs?", "patient/Observation.rs?category", "launch/somewhere", "user/.rs",
	} {
		r := token(e, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid " + bad}}, app...)
		if code := oauthErrorOf(t, r, 400); code != "invalid_scope" || !strings.Contains(r.doc["error_description"].(string), strings.Split(bad, "?")[0]) {
			t.Errorf("scope %q: %s", bad, r.raw)
		}
	}
	r = e.do(yamlPut("/Client/bad-scope", "secret: x\ngrant_types: [client_credentials]\nscope: [patient/*.rs, patient/*.bogus]\n"))
	if r.status != 422 || !strings.Contains(outcomeText(t, r), "patient/*.bogus") {
		t.Errorf("a Client with a malformed SMART scope: %d %s", r.status, r.raw)
	}
}

// A client that does what openid-client does: discovery first, then RFC-conformant form
// posts with form-encoded Basic credentials to the endpoints discovery named. The
// token comes from golang.org/x/oauth2, which has no introspection of its own.
func TestIntrospectionLikeAClientLibrary(t *testing.T) {
	forEachBackend(t, testIntrospectionLikeAClientLibrary)
}

func testIntrospectionLikeAClientLibrary(t *testing.T) {
	e, base := liveEnv(t)
	setupClientTokens(t, e)
	ctx := context.Background()

	var disc struct {
		Introspection string   `json:"introspection_endpoint"`
		Revocation    string   `json:"revocation_endpoint"`
		IntroMethods  []string `json:"introspection_endpoint_auth_methods_supported"`
		RevokeMethods []string `json:"revocation_endpoint_auth_methods_supported"`
		Token         string   `json:"token_endpoint"`
	}
	getJSON(t, base+"/.well-known/openid-configuration", &disc)
	if disc.Introspection == "" || disc.Revocation == "" || !slices.Contains(disc.IntroMethods, "client_secret_basic") || !slices.Contains(disc.RevokeMethods, "client_secret_basic") {
		t.Fatalf("discovery: %+v", disc)
	}
	cc := clientcredentials.Config{ClientID: "app", ClientSecret: "app-secret", TokenURL: disc.Token, Scopes: []string{"system/*.rs"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call := func(endpoint string, form url.Values) (int, map[string]any) {
		t.Helper()
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "application/json")
		r.SetBasicAuth(url.QueryEscape("app"), url.QueryEscape("app-secret"))
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var doc map[string]any
		if len(body) > 0 {
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("%s: %v: %s", endpoint, err, body)
			}
		}
		return res.StatusCode, doc
	}
	st, doc := call(disc.Introspection, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}})
	if st != 200 || doc["active"] != true || doc["scope"] != "system/*.rs" || doc["client_id"] != "app" {
		t.Fatalf("introspection: %d %v", st, doc)
	}
	if st, doc = call(disc.Revocation, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); st != 200 || doc != nil {
		t.Fatalf("revocation: %d %v", st, doc)
	}
	if st, doc = call(disc.Introspection, url.Values{"token": {tok.AccessToken}}); st != 200 || len(doc) != 1 || doc["active"] != false {
		t.Errorf("introspection after revocation: %d %v", st, doc)
	}
	res, err := oauth2.NewClient(ctx, oauth2.StaticTokenSource(tok)).Get(base + "/fhir/Patient")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("GET /fhir/Patient with the revoked token: %d", res.StatusCode)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
