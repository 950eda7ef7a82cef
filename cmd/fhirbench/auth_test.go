package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSessionJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 23, 10, 11, 12, 345e6, time.UTC)
	id, b, err := SessionJSON(rng, ccClientID, now)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if !isUUID(id) || doc["id"] != id || doc["jti"] != id {
		t.Errorf("id %q, document id %v, jti %v: want one UUID", id, doc["id"], doc["jti"])
	}
	// exp counts from the start, truncated to the second as the server does.
	want := map[string]any{
		"resourceType": "Session", "type": "client_credentials", "audience": ccClientID,
		"client": map[string]any{"resourceType": "Client", "id": ccClientID},
		"start":  "2026-11-23T10:11:12.000Z", "exp": float64(now.Truncate(time.Second).Unix() + tokenTTL),
		"token_format": "opaque",
	}
	for k, v := range want {
		if fmt.Sprint(doc[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	if h, _ := doc["access_token_hash"].(string); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(h) {
		t.Errorf("access_token_hash %q is not 64 hex digits", h)
	}
	// The brief's size of a Session: a ceiling document much smaller or larger would
	// measure another write.
	t.Logf("a Session of %d bytes: %s", len(b), b)
	if n := len(b); n < 300 || n > 500 {
		t.Errorf("the document is %d bytes, want about 400:\n%s", n, b)
	}
	id2, b2, _ := SessionJSON(rng, ccClientID, now)
	if id2 == id || string(b2) == string(b) {
		t.Error("two Sessions are the same: the INSERTs would collide")
	}
}

func TestJWTSigner(t *testing.T) {
	s, err := newJWTSigner("http://fhirbox.test")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.key.N.BitLen(); n != 2048 {
		t.Errorf("RSA key of %d bits, want 2048", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	seen := map[string]bool{}
	for range 3 {
		tok, err := s.sign(rng, jwtClientID, now)
		if err != nil {
			t.Fatal(err)
		}
		seen[tok] = true
		parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &s.key.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("http://fhirbox.test"), jwt.WithAudience(jwtClientID))
		if err != nil {
			t.Fatalf("the token does not verify: %v", err)
		}
		if parsed.Header["kid"] != s.kid {
			t.Errorf("kid %v, want %s", parsed.Header["kid"], s.kid)
		}
		c := parsed.Claims.(jwt.MapClaims)
		for _, k := range []string{"sub", "client_id"} {
			if c[k] != jwtClientID {
				t.Errorf("%s = %v, want %s", k, c[k], jwtClientID)
			}
		}
		if jti, _ := c["jti"].(string); !isUUID(jti) {
			t.Errorf("jti %v is not a UUID", c["jti"])
		}
	}
	if len(seen) != 3 {
		t.Error("tokens repeat: each should have its own jti")
	}
}

// TestInProcessCeilings runs the ceilings that need no database through CeilingOp and
// the Runner, as main does.
func TestInProcessCeilings(t *testing.T) {
	for _, sc := range []string{"token-jwt", "token-password"} {
		t.Run(sc, func(t *testing.T) {
			if CeilingNeedsDB(sc) {
				t.Fatalf("CeilingNeedsDB(%s) is true", sc)
			}
			w, err := NewWorkload(sc, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.Issuer = "http://fhirbox.test"
			op, cleanup, err := w.CeilingOp(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			r := Runner{Conc: 2, Seed: 1}.Run(context.Background(), 300*time.Millisecond, 4, op)
			if r.OK == 0 || r.Errors != 0 {
				t.Errorf("%d ok, %d errors %v", r.OK, r.Errors, r.ErrorKinds)
			}
		})
	}
	w, _ := NewWorkload("token-client-credentials", nil, nil)
	if _, _, err := w.CeilingOp(context.Background(), nil); err == nil {
		t.Error("token-client-credentials ceiling without a database: no error")
	}
	for _, sc := range []string{"token-client-credentials", "read-bearer-opaque", "read-bearer-jwt", "read", "create"} {
		if !CeilingNeedsDB(sc) {
			t.Errorf("CeilingNeedsDB(%s) is false", sc)
		}
	}
}

func TestTokenRequest(t *testing.T) {
	for name, sc := range authScenarios {
		t.Run(name, func(t *testing.T) {
			r := sc.token.Request()
			if r.Method != http.MethodPost || r.Path != "/auth/token" || !r.Keep {
				t.Errorf("%s %s keep=%v", r.Method, r.Path, r.Keep)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type %q", ct)
			}
			scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			raw, err := base64.StdEncoding.DecodeString(cred)
			if scheme != "Basic" || err != nil || string(raw) != sc.token.ClientID+":"+sc.token.Secret {
				t.Errorf("Authorization %q: want Basic %s:%s", r.Header.Get("Authorization"), sc.token.ClientID, sc.token.Secret)
			}
			form, err := url.ParseQuery(string(r.Body))
			if err != nil {
				t.Fatal(err)
			}
			want := url.Values{"grant_type": {"client_credentials"}}
			switch name {
			case "token-password":
				want = url.Values{"grant_type": {"password"}, "username": {benchUserID}, "password": {benchUserPassword}}
			case "token-authorization-code":
				// The code, redirect_uri and verifier are added per exchange (authcode.go).
				want = url.Values{"grant_type": {"authorization_code"}}
			}
			if !maps.EqualFunc(form, want, slices.Equal) {
				t.Errorf("form %v, want %v", form, want)
			}
		})
	}
	// Credentials outside the unreserved set are form-encoded before base64.
	r := TokenRequest{ClientID: "a b", Secret: "x:y", Form: url.Values{}}.Request()
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))
	if string(raw) != "a+b:x%3Ay" {
		t.Errorf("Basic credentials %q, want a+b:x%%3Ay", raw)
	}
}

func TestBenchSecretsUnreserved(t *testing.T) {
	ok := regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	for _, r := range benchResources() {
		if r.Secret == "" {
			continue
		}
		if s, _ := r.Doc[r.Secret].(string); !ok.MatchString(s) {
			t.Errorf("%s/%s: %s %q has characters the server refuses in Basic", r.Type, r.ID, r.Secret, s)
		}
	}
	for name, sc := range authScenarios {
		if !ok.MatchString(sc.token.Secret) {
			t.Errorf("%s: secret %q", name, sc.token.Secret)
		}
	}
}

func TestSameFields(t *testing.T) {
	want := map[string]any{"secret": "s", "grant_types": []any{"password"}, "auth": map[string]any{"x": map[string]any{"ttl": 3600}}}
	stored := map[string]any{"id": "c", "meta": map[string]any{"versionId": "2"}, "grant_types": []any{"password"},
		"auth": map[string]any{"x": map[string]any{"ttl": float64(3600)}}}
	if !sameFields(stored, want, "secret") {
		t.Error("equal documents (but for the secret and meta) differ")
	}
	stored["grant_types"] = []any{"password", "basic"}
	if sameFields(stored, want, "secret") {
		t.Error("different grant_types are the same")
	}
	stored["grant_types"] = []any{"password"}
	delete(stored, "auth")
	if sameFields(stored, want, "secret") {
		t.Error("a missing field is the same")
	}
}

func TestNewWorkloadScenarios(t *testing.T) {
	if _, err := NewWorkload("token-refresh", nil, nil); err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Errorf("unknown scenario: %v", err)
	}
	for _, sc := range []string{"token-client-credentials", "token-jwt", "token-password"} {
		if _, err := NewWorkload(sc, nil, nil); err != nil {
			t.Errorf("%s needs no patients: %v", sc, err)
		}
	}
	for _, sc := range []string{"read-bearer-opaque", "read-bearer-jwt"} {
		if _, err := NewWorkload(sc, nil, nil); err == nil {
			t.Errorf("%s without patients: no error", sc)
		}
	}
	for sc := range authScenarios {
		if !slices.Contains(Scenarios, sc) || !IsAuthScenario(sc) {
			t.Errorf("%s is not listed in Scenarios", sc)
		}
	}
}

// fakeFhirbox is the part of fhirbox's HTTP API that the OAuth setup uses: resources
// written and read by the admin (secrets kept when a write leaves them out, never
// returned), the token endpoint, and Patient reads with a bearer token.
type fakeFhirbox struct {
	t    *testing.T
	mu   sync.Mutex
	docs map[string]map[string]any // "Type/id": secrets in the clear
	// puts lists the writes, "+secret" marking those that carried the secret.
	puts   []string
	tokens map[string]bool
}

var fakeSecretField = map[string]string{"Client": "secret", "User": "password"}

func newFakeFhirbox(t *testing.T) (*fakeFhirbox, *API) {
	f := &fakeFhirbox{t: t, docs: map[string]map[string]any{}, tokens: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, newTestAPI(t, srv.URL, 4)
}

func (f *fakeFhirbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	oauthErr := func(status int, code string) { reply(status, map[string]string{"error": code}) }
	if r.URL.Path == "/auth/introspect" {
		id, secret, _ := r.BasicAuth()
		if client := f.docs["Client/"+id]; client == nil || client["secret"] != secret || r.Method != http.MethodPost {
			oauthErr(401, "invalid_client")
			return
		}
		_ = r.ParseForm()
		reply(200, map[string]any{"active": f.tokens[r.PostForm.Get("token")]})
		return
	}
	if r.URL.Path == "/auth/token" {
		id, secret, ok := r.BasicAuth()
		if !ok || id == "admin" {
			f.t.Errorf("token request with Authorization %q: want the bench client's Basic credentials", r.Header.Get("Authorization"))
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			oauthErr(400, "invalid_request")
			return
		}
		client := f.docs["Client/"+id]
		if client == nil || client["secret"] != secret {
			oauthErr(401, "invalid_client")
			return
		}
		_ = r.ParseForm()
		grant := r.PostForm.Get("grant_type")
		if gs, _ := client["grant_types"].([]any); !slices.Contains(gs, any(grant)) {
			oauthErr(400, "unauthorized_client")
			return
		}
		if grant == "password" {
			user := f.docs["User/"+r.PostForm.Get("username")]
			if user == nil || user["password"] != r.PostForm.Get("password") {
				oauthErr(400, "invalid_grant")
				return
			}
		}
		tok := fmt.Sprintf("opaque-%d", len(f.tokens))
		if dig(client, "auth", "client_credentials", "token_format") == "jwt" {
			tok = fmt.Sprintf("header.claims-%d.signature", len(f.tokens))
		}
		f.tokens[tok] = true
		reply(200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": tokenTTL})
		return
	}
	typ, id, _ := strings.Cut(strings.Trim(r.URL.Path, "/"), "/")
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if !f.tokens[bearer] || r.Method != http.MethodGet || typ != "Patient" {
			reply(403, map[string]string{"resourceType": "OperationOutcome"})
			return
		}
		reply(200, map[string]any{"resourceType": "Patient", "id": id})
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "admin-secret" {
		f.t.Errorf("%s %s without the admin's credentials", r.Method, r.URL.Path)
		reply(401, nil)
		return
	}
	key := typ + "/" + id
	switch r.Method {
	case http.MethodGet:
		doc := f.docs[key]
		if doc == nil {
			reply(404, map[string]string{"resourceType": "OperationOutcome"})
			return
		}
		out := maps.Clone(doc)
		delete(out, fakeSecretField[typ])
		out["id"], out["meta"] = id, map[string]any{"versionId": "1"}
		reply(200, out)
	case http.MethodPut:
		var doc map[string]any
		if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
			reply(400, nil)
			return
		}
		mark := ""
		if sf := fakeSecretField[typ]; sf != "" {
			if _, ok := doc[sf]; ok {
				mark = "+secret"
			} else if prev := f.docs[key]; prev != nil {
				doc[sf] = prev[sf]
			}
		}
		f.docs[key] = doc
		f.puts = append(f.puts, key+mark)
		reply(200, doc)
	}
}

func (f *fakeFhirbox) takePuts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.puts
	f.puts = nil
	return p
}

func (f *fakeFhirbox) edit(key string, fn func(map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.docs[key])
}

func TestSetupAuth(t *testing.T) {
	f, api := newFakeFhirbox(t)
	ctx := context.Background()
	setup := func(sc string, patients []PatientInfo) *Workload {
		t.Helper()
		w, err := NewWorkload(sc, nil, patients)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.SetupAuth(ctx, api); err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		return w
	}

	w := setup("token-client-credentials", nil)
	want := []string{"Client/fhirbench-cc+secret", "Client/fhirbench-jwt+secret", "Client/fhirbench-ac+secret", "Client/fhirbench-pw+secret",
		"User/fhirbench-user+secret", "AccessPolicy/fhirbench-read"}
	if got := f.takePuts(); !slices.Equal(got, want) {
		t.Errorf("first setup wrote %v, want %v", got, want)
	}
	if len(w.Auth.Written) != 6 || w.Auth.Issued.Load() != 1 {
		t.Errorf("written %v, issued %d: want all 6 and the probe's token", w.Auth.Written, w.Auth.Issued.Load())
	}
	op := w.HTTPOp(api)
	for range 3 {
		if err := op(ctx, rand.New(rand.NewPCG(1, 1))); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Auth.Issued.Load(); n != 4 {
		t.Errorf("issued %d, want 4: the probe and 3 requests", n)
	}

	// Setup is idempotent: what is in place is not written again.
	w = setup("token-password", nil)
	if got := f.takePuts(); len(got) != 0 || len(w.Auth.Written) != 0 {
		t.Errorf("second setup wrote %v", got)
	}

	// A changed setting is written back without the secret, which the server keeps.
	f.edit("Client/fhirbench-jwt", func(d map[string]any) {
		d["auth"] = map[string]any{"client_credentials": map[string]any{"token_format": "opaque"}}
	})
	w = setup("read-bearer-jwt", []PatientInfo{{N: -1, ID: "p1"}})
	if got := f.takePuts(); !slices.Equal(got, []string{"Client/fhirbench-jwt"}) {
		t.Errorf("setup after a changed setting wrote %v, want the jwt client without its secret", got)
	}
	if !strings.Contains(w.Auth.Bearer, ".") {
		t.Errorf("bearer %q is not the JWT client's", w.Auth.Bearer)
	}
	if err := w.HTTPOp(api)(ctx, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Errorf("bearer read: %v", err)
	}

	// A secret the server does not know is written again once it is refused.
	f.edit("User/fhirbench-user", func(d map[string]any) { d["password"] = "changed" })
	f.edit("Client/fhirbench-cc", func(d map[string]any) { d["secret"] = "changed" })
	w = setup("token-password", nil)
	if got := f.takePuts(); !slices.Equal(got, []string{"User/fhirbench-user+secret"}) {
		t.Errorf("setup with a changed password wrote %v, want the user with its password", got)
	}
	w = setup("read-bearer-opaque", []PatientInfo{{N: -1, ID: "p1"}})
	if got := f.takePuts(); !slices.Equal(got, []string{"Client/fhirbench-cc+secret"}) {
		t.Errorf("setup with a changed secret wrote %v, want the client with its secret", got)
	}
	if strings.Contains(w.Auth.Bearer, ".") {
		t.Errorf("bearer %q is not the opaque client's", w.Auth.Bearer)
	}
}

// introspect asks about the token setup got, as its own client, and fails on an
// answer that says the token is not active.
func TestSetupIntrospect(t *testing.T) {
	f, api := newFakeFhirbox(t)
	ctx := context.Background()
	w, err := NewWorkload("introspect", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetupAuth(ctx, api); err != nil {
		t.Fatal(err)
	}
	r := w.Auth.Introspect
	form, _ := url.ParseQuery(string(r.Body))
	if r.Path != "/auth/introspect" || form.Get("token") != w.Auth.Bearer || w.Auth.Bearer == "" || strings.Contains(w.Auth.Bearer, ".") {
		t.Fatalf("introspection request %s %v for bearer %q", r.Path, form, w.Auth.Bearer)
	}
	op := w.HTTPOp(api)
	if err := op(ctx, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	delete(f.tokens, w.Auth.Bearer)
	f.mu.Unlock()
	if err := op(ctx, rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), "not active") {
		t.Errorf("an inactive answer: %v", err)
	}
}

func TestSetupAuthFailsWithReason(t *testing.T) {
	f, _ := newFakeFhirbox(t)
	ctx := context.Background()
	// withTokenAnswer is the fake with a token endpoint that always answers body.
	withTokenAnswer := func(status int, body string) *API {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/auth/token" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(body))
				return
			}
			f.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return newTestAPI(t, srv.URL, 1)
	}

	// A server that ignores token_format: the scenario would measure opaque tokens.
	w, _ := NewWorkload("token-jwt", nil, nil)
	err := w.SetupAuth(ctx, withTokenAnswer(200, `{"access_token":"opaque","token_type":"Bearer","expires_in":3600}`))
	if err == nil || !strings.Contains(err.Error(), "token_format jwt") {
		t.Errorf("opaque token from the JWT client: %v", err)
	}
	f.takePuts()

	// Only refused credentials are repaired; any other refusal is the server's answer.
	w, _ = NewWorkload("token-password", nil, nil)
	err = w.SetupAuth(ctx, withTokenAnswer(400, `{"error":"unauthorized_client","error_description":"client fhirbench-pw may not use the password grant"}`))
	if err == nil || !strings.Contains(err.Error(), "unauthorized_client") {
		t.Errorf("refused grant: %v", err)
	}
	if got := f.takePuts(); len(got) != 0 {
		t.Errorf("an unauthorized_client answer rewrote %v", got)
	}
}

func TestAPITokenAndSend(t *testing.T) {
	var gotAuth []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":60}`))
		case "/notjson":
			_, _ = w.Write([]byte(`<html>`))
		case "/notoken":
			_, _ = w.Write([]byte(`{"token_type":"Bearer"}`))
		case "/created":
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"access_token":"t"}`))
		default:
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		}
	}))
	defer srv.Close()
	api := newTestAPI(t, srv.URL, 2)
	ctx := context.Background()
	req := clientCredentials("c", "s").Request()
	at := func(path string) Request { r := req; r.Path, r.Route = path, path; return r }

	tok, err := api.Token(ctx, at("/ok"))
	if err != nil || tok.AccessToken != "t" || tok.ExpiresIn != 60 {
		t.Errorf("token %+v, %v", tok, err)
	}
	for _, p := range []string{"/notjson", "/notoken", "/created", "/refused"} {
		if _, err := api.Token(ctx, at(p)); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
	if _, err := api.Token(ctx, at("/refused")); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("refused: %v, want the status and the server's reason", err)
	}
	if _, _, err := api.Do(ctx, http.MethodGet, "/ok", "/ok", nil, false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	admin := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin-secret"))
	for i, a := range gotAuth[:len(gotAuth)-1] {
		if a != req.Header.Get("Authorization") {
			t.Errorf("request %d sent Authorization %q, want the client's", i, a)
		}
	}
	if a := gotAuth[len(gotAuth)-1]; a != admin {
		t.Errorf("Do sent Authorization %q, want the admin's", a)
	}
}
