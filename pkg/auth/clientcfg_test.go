package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fhirbox/fhirbox/resources"
)

// clientDoc decodes a Client as the server does: numbers as json.Number, or as float64
// when useNumber is false, so both kinds are covered.
func clientDoc(t *testing.T, js string, useNumber bool) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(js))
	if useNumber {
		dec.UseNumber()
	}
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("bad test JSON %s: %v", js, err)
	}
	return doc
}

// clientNumberKinds runs f once with json.Number numbers and once with float64 ones.
func clientNumberKinds(t *testing.T, f func(t *testing.T, useNumber bool)) {
	t.Run("json.Number", func(t *testing.T) { f(t, true) })
	t.Run("float64", func(t *testing.T) { f(t, false) })
}

// aidboxClientYAML is the Aidbox documentation's example client.
const aidboxClientYAML = `
resourceType: Client
id: myapp
secret: verysecret
name: My app
first_party: true
grant_types: [password, client_credentials, refresh_token, basic]
auth:
  password:
    token_format: jwt
    access_token_expiration: 300
    refresh_token: true
    refresh_token_expiration: 86400
    secret_required: true
    redirect_uri: https://app.example.com/callback
    audience: [https://api.example.com]
  client_credentials:
    token_format: jwt
    token_expiration: 600
`

func aidboxClientWant() *ClientConfig {
	return &ClientConfig{
		ID:         "myapp",
		Name:       "My app",
		FirstParty: true,
		HasSecret:  true,
		GrantTypes: []string{"password", "client_credentials", "refresh_token", "basic"},
		Grants: map[string]GrantConfig{
			"password": {
				JWT:             true,
				AccessTokenTTL:  300 * time.Second,
				RefreshToken:    true,
				RefreshTokenTTL: 86400 * time.Second,
				SecretRequired:  true,
				RedirectURI:     "https://app.example.com/callback",
				Audience:        []string{"https://api.example.com"},
			},
			"client_credentials": {JWT: true, AccessTokenTTL: 600 * time.Second},
		},
	}
}

func TestClientConfigAidboxExample(t *testing.T) {
	var y map[string]any
	if err := yaml.Unmarshal([]byte(aidboxClientYAML), &y); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	clientNumberKinds(t, func(t *testing.T, useNumber bool) {
		got, err := ParseClientConfig(clientDoc(t, string(js), useNumber))
		if err != nil {
			t.Fatal(err)
		}
		if want := aidboxClientWant(); !reflect.DeepEqual(got, want) {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
		for _, g := range []string{"password", "client_credentials", "refresh_token", "basic"} {
			if !got.Allows(g) {
				t.Errorf("Allows(%s) = false", g)
			}
		}
		if got.Allows("authorization_code") {
			t.Error("Allows(authorization_code) = true")
		}
		if g := got.Grant("client_credentials"); g.AccessTokenTTL != 600*time.Second || !g.JWT || g.RefreshToken {
			t.Errorf("Grant(client_credentials) = %+v", g)
		}
	})
	// The YAML decoder's own ints, for Go callers that skip the JSON round trip.
	if _, err := ParseClientConfig(y); err != nil {
		t.Fatalf("YAML-decoded ints: %v", err)
	}
}

func TestClientConfigValid(t *testing.T) {
	def := GrantConfig{AccessTokenTTL: time.Hour}
	cases := []struct {
		name  string
		doc   string
		grant string // the grant whose settings are checked
		want  GrantConfig
	}{
		{"no grant types", `{"id":"x"}`, "password", def},
		{"no auth block", `{"grant_types":["password"]}`, "password", def},
		{"null auth", `{"grant_types":["password"],"auth":null}`, "password", def},
		{"null grant block", `{"grant_types":["password"],"auth":{"password":null}}`, "password", def},
		{"empty grant block", `{"grant_types":["password"],"auth":{"password":{}}}`, "password", def},
		{"null settings", `{"grant_types":["password"],"auth":{"password":{"token_format":null,"refresh_token":null}}}`, "password", def},
		{"opaque", `{"grant_types":["password"],"auth":{"password":{"token_format":"opaque"}}}`, "password", def},
		{"alias in password", `{"grant_types":["password"],"auth":{"password":{"token_expiration":120}}}`, "password",
			GrantConfig{AccessTokenTTL: 2 * time.Minute}},
		{"access_token_expiration in client_credentials", `{"grant_types":["client_credentials"],"auth":{"client_credentials":{"access_token_expiration":60}}}`, "client_credentials",
			GrantConfig{AccessTokenTTL: time.Minute}},
		{"exponent and trailing zero", `{"grant_types":["password"],"auth":{"password":{"access_token_expiration":3e2}}}`, "password",
			GrantConfig{AccessTokenTTL: 300 * time.Second}},
		{"whole float", `{"grant_types":["password"],"auth":{"password":{"access_token_expiration":300.0}}}`, "password",
			GrantConfig{AccessTokenTTL: 300 * time.Second}},
		{"ten years", `{"grant_types":["password"],"auth":{"password":{"access_token_expiration":315360000}}}`, "password",
			GrantConfig{AccessTokenTTL: 315360000 * time.Second}},
		{"refresh without expiry", `{"grant_types":["password","refresh_token"],"auth":{"password":{"refresh_token":true}}}`, "password",
			GrantConfig{AccessTokenTTL: time.Hour, RefreshToken: true}},
		{"refresh for client_credentials (T2)", `{"grant_types":["client_credentials","refresh_token"],"auth":{"client_credentials":{"refresh_token":true,"refresh_token_expiration":60}}}`, "client_credentials",
			GrantConfig{AccessTokenTTL: time.Hour, RefreshToken: true, RefreshTokenTTL: time.Minute}},
		{"refresh_token false", `{"grant_types":["password"],"auth":{"password":{"refresh_token":false}}}`, "password", def},
		{"secret_required false", `{"grant_types":["password"],"auth":{"password":{"secret_required":false}}}`, "password", def},
		{"secret_required client_credentials", `{"grant_types":["client_credentials"],"auth":{"client_credentials":{"secret_required":true}}}`, "client_credentials",
			GrantConfig{AccessTokenTTL: time.Hour, SecretRequired: true}},
		{"audience string", `{"grant_types":["password"],"auth":{"password":{"audience":"https://api.example.com"}}}`, "password",
			GrantConfig{AccessTokenTTL: time.Hour, Audience: []string{"https://api.example.com"}}},
		{"audience list", `{"grant_types":["client_credentials"],"auth":{"client_credentials":{"audience":["a","b"]}}}`, "client_credentials",
			GrantConfig{AccessTokenTTL: time.Hour, Audience: []string{"a", "b"}}},
		{"redirect localhost", `{"grant_types":["password"],"auth":{"password":{"redirect_uri":"http://localhost:8080/cb"}}}`, "password",
			GrantConfig{AccessTokenTTL: time.Hour, RedirectURI: "http://localhost:8080/cb"}},
		{"redirect 127.0.0.1", `{"grant_types":["password"],"auth":{"password":{"redirect_uri":"http://127.0.0.1/cb?x=1"}}}`, "password",
			GrantConfig{AccessTokenTTL: time.Hour, RedirectURI: "http://127.0.0.1/cb?x=1"}},
		{"redirect [::1]", `{"grant_types":["password"],"auth":{"password":{"redirect_uri":"http://[::1]:9000/cb"}}}`, "password",
			GrantConfig{AccessTokenTTL: time.Hour, RedirectURI: "http://[::1]:9000/cb"}},
		{"authorization_code block", `{"grant_types":["authorization_code","refresh_token"],"auth":{"authorization_code":{"redirect_uri":"https://app.example.com/cb","refresh_token":true,"secret_required":true}}}`, "authorization_code",
			GrantConfig{AccessTokenTTL: time.Hour, RedirectURIs: []string{"https://app.example.com/cb"}, RefreshToken: true, SecretRequired: true}},
		{"authorization_code redirect list and pkce", `{"grant_types":["authorization_code"],"auth":{"authorization_code":{"redirect_uri":["https://app.example.com/cb","http://127.0.0.1:8765/cb"],"pkce":true}}}`, "authorization_code",
			GrantConfig{AccessTokenTTL: time.Hour, RedirectURIs: []string{"https://app.example.com/cb", "http://127.0.0.1:8765/cb"}, PKCE: true}},
		{"other fields ignored", `{"grant_types":["basic"],"name":"n","description":"d","type":"t","first_party":true,"resourceType":"Client"}`, "password", def},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clientNumberKinds(t, func(t *testing.T, useNumber bool) {
				c, err := ParseClientConfig(clientDoc(t, tc.doc, useNumber))
				if err != nil {
					t.Fatal(err)
				}
				if got := c.Grant(tc.grant); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("Grant(%s) = %+v, want %+v", tc.grant, got, tc.want)
				}
			})
		})
	}
}

func TestClientConfigDefaults(t *testing.T) {
	c, err := ParseClientConfig(map[string]any{
		"id":          "app",
		"secret":      "",
		"grant_types": []any{"basic", "refresh_token", "password", "client_credentials"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "app" || c.HasSecret {
		t.Errorf("ID %q HasSecret %v", c.ID, c.HasSecret)
	}
	if want := []string{"basic", "refresh_token", "password", "client_credentials"}; !reflect.DeepEqual(c.GrantTypes, want) {
		t.Errorf("GrantTypes = %v", c.GrantTypes)
	}
	// Only the grants that take settings get an entry.
	def := GrantConfig{AccessTokenTTL: 3600 * time.Second}
	if want := map[string]GrantConfig{"password": def, "client_credentials": def}; !reflect.DeepEqual(c.Grants, want) {
		t.Errorf("Grants = %+v", c.Grants)
	}
	if g := c.Grant("authorization_code"); !reflect.DeepEqual(g, def) {
		t.Errorf("Grant of an unlisted grant = %+v", g)
	}

	empty, err := ParseClientConfig(map[string]any{"secret": "$2a$10$hash"})
	if err != nil {
		t.Fatal(err)
	}
	if !empty.HasSecret || empty.GrantTypes != nil || len(empty.Grants) != 0 || empty.Allows("basic") {
		t.Errorf("no grant_types: %+v", empty)
	}
	if _, err := ParseClientConfig(nil); err != nil {
		t.Errorf("nil doc: %v", err)
	}
	// Go callers (the admin bootstrap) may hand a []string.
	if c, err := ParseClientConfig(map[string]any{"grant_types": []string{"basic"}}); err != nil || !c.Allows("basic") {
		t.Errorf("[]string grant_types: %v %v", c, err)
	}
}

// A Client's scope lists what it may ask for (RFC 7591 §2), as one space-separated
// string or a list; without one, any scope may be asked for (conformance T7).
func TestClientScope(t *testing.T) {
	cases := []struct {
		doc       string
		want      []string
		ok, wider []string
	}{
		{`{}`, nil, []string{"anything", "at/all"}, nil},
		{`{"scope":null}`, nil, []string{"anything"}, nil},
		{`{"scope":"system/*.read  patient/*.read"}`, []string{"system/*.read", "patient/*.read"}, []string{"patient/*.read", "system/*.read patient/*.read"}, []string{"system/*.write", "patient/*.read openid"}},
		{`{"scope":["system/*.read","openid"]}`, []string{"system/*.read", "openid"}, []string{"openid"}, []string{"system/*.read profile"}},
		{`{"scope":""}`, []string{}, nil, []string{"openid"}},
		{`{"scope":[]}`, []string{}, nil, []string{"openid"}},
	}
	for _, tc := range cases {
		c, err := ParseClientConfig(clientDoc(t, tc.doc, true))
		if err != nil {
			t.Fatalf("%s: %v", tc.doc, err)
		}
		if !reflect.DeepEqual(c.Scopes, tc.want) {
			t.Errorf("%s: Scopes %#v, want %#v", tc.doc, c.Scopes, tc.want)
		}
		if bad := c.AllowsScope(nil); bad != "" {
			t.Errorf("%s: no scope asked, %q refused", tc.doc, bad)
		}
		for _, s := range tc.ok {
			if bad := c.AllowsScope(strings.Fields(s)); bad != "" {
				t.Errorf("%s: %q refused for %q", tc.doc, s, bad)
			}
		}
		for _, s := range tc.wider {
			if bad := c.AllowsScope(strings.Fields(s)); bad == "" {
				t.Errorf("%s: %q allowed", tc.doc, s)
			}
		}
	}
}

func TestClientConfigInvalid(t *testing.T) {
	pw := func(settings string) string {
		return `{"grant_types":["password"],"auth":{"password":` + settings + `}}`
	}
	cc := func(settings string) string {
		return `{"grant_types":["client_credentials"],"auth":{"client_credentials":` + settings + `}}`
	}
	ac := func(settings string) string {
		return `{"grant_types":["authorization_code"],"auth":{"authorization_code":` + settings + `}}`
	}
	cases := []struct {
		name, doc, expr string
	}{
		{"grant_types not a list", `{"grant_types":"password"}`, "grant_types"},
		{"grant_types object", `{"grant_types":{"password":true}}`, "grant_types"},
		{"grant type not a string", `{"grant_types":["password",7]}`, "grant_types[1]"},
		{"implicit", `{"grant_types":["password","client_credentials","implicit"]}`, "grant_types[2]"},
		{"unknown grant type", `{"grant_types":["password","telepathy"]}`, "grant_types[1]"},
		{"grant type case", `{"grant_types":["Password"]}`, "grant_types[0]"},
		{"duplicate grant type", `{"grant_types":["password","basic","password"]}`, "grant_types[2]"},

		{"auth not an object", `{"grant_types":["password"],"auth":"password"}`, "auth"},
		{"auth list", `{"grant_types":["password"],"auth":[]}`, "auth"},
		{"auth.refresh_token", `{"grant_types":["password","refresh_token"],"auth":{"refresh_token":{}}}`, "auth.refresh_token"},
		{"auth.basic", `{"grant_types":["basic"],"auth":{"basic":{}}}`, "auth.basic"},
		{"auth.implicit", `{"grant_types":["password"],"auth":{"implicit":{}}}`, "auth.implicit"},
		{"auth unknown grant", `{"grant_types":["password"],"auth":{"pasword":{}}}`, "auth.pasword"},
		{"auth grant not listed", `{"grant_types":["client_credentials"],"auth":{"password":{"token_format":"jwt"}}}`, "auth.password"},
		{"auth grant and no grant_types", `{"auth":{"client_credentials":{}}}`, "auth.client_credentials"},
		{"grant block not an object", pw(`"jwt"`), "auth.password"},

		{"unknown setting (typo)", pw(`{"acess_token_expiration":300}`), "auth.password.acess_token_expiration"},
		{"unknown setting pkce", pw(`{"pkce":true}`), "auth.password.pkce"},
		{"token_format xml", pw(`{"token_format":"xml"}`), "auth.password.token_format"},
		{"token_format case", pw(`{"token_format":"JWT"}`), "auth.password.token_format"},
		{"token_format bool", cc(`{"token_format":true}`), "auth.client_credentials.token_format"},

		{"expiration zero", pw(`{"access_token_expiration":0}`), "auth.password.access_token_expiration"},
		{"expiration negative", pw(`{"access_token_expiration":-5}`), "auth.password.access_token_expiration"},
		{"expiration fraction", pw(`{"access_token_expiration":1.5}`), "auth.password.access_token_expiration"},
		{"expiration string", pw(`{"access_token_expiration":"300"}`), "auth.password.access_token_expiration"},
		{"expiration bool", pw(`{"access_token_expiration":true}`), "auth.password.access_token_expiration"},
		{"expiration over 10 years", pw(`{"access_token_expiration":315360001}`), "auth.password.access_token_expiration"},
		{"expiration huge", pw(`{"access_token_expiration":1e300}`), "auth.password.access_token_expiration"},
		{"alias bad", cc(`{"token_expiration":0}`), "auth.client_credentials.token_expiration"},
		{"alias and name", cc(`{"token_expiration":600,"access_token_expiration":600}`), "auth.client_credentials.token_expiration"},

		{"refresh_token not bool", pw(`{"refresh_token":"yes"}`), "auth.password.refresh_token"},
		{"refresh_token without grant", pw(`{"refresh_token":true}`), "auth.password.refresh_token"},
		{"refresh expiration without refresh_token", `{"grant_types":["password","refresh_token"],"auth":{"password":{"refresh_token_expiration":60}}}`, "auth.password.refresh_token_expiration"},
		{"refresh expiration with refresh_token false", `{"grant_types":["password","refresh_token"],"auth":{"password":{"refresh_token":false,"refresh_token_expiration":60}}}`, "auth.password.refresh_token_expiration"},
		{"refresh expiration zero", `{"grant_types":["password","refresh_token"],"auth":{"password":{"refresh_token":true,"refresh_token_expiration":0}}}`, "auth.password.refresh_token_expiration"},
		{"refresh expiration fraction", `{"grant_types":["password","refresh_token"],"auth":{"password":{"refresh_token":true,"refresh_token_expiration":86400.5}}}`, "auth.password.refresh_token_expiration"},

		{"secret_required not bool", pw(`{"secret_required":"true"}`), "auth.password.secret_required"},
		{"secret_required false for client_credentials", cc(`{"secret_required":false}`), "auth.client_credentials.secret_required"},

		{"redirect not a string", pw(`{"redirect_uri":42}`), "auth.password.redirect_uri"},
		{"redirect relative", pw(`{"redirect_uri":"/callback"}`), "auth.password.redirect_uri"},
		{"redirect empty", pw(`{"redirect_uri":""}`), "auth.password.redirect_uri"},
		{"redirect http", pw(`{"redirect_uri":"http://app.example.com/cb"}`), "auth.password.redirect_uri"},
		{"redirect http lookalike", pw(`{"redirect_uri":"http://localhost.evil.example/cb"}`), "auth.password.redirect_uri"},
		{"redirect other scheme", pw(`{"redirect_uri":"javascript://localhost/%0aalert(1)"}`), "auth.password.redirect_uri"},
		{"redirect opaque", pw(`{"redirect_uri":"https:app.example.com"}`), "auth.password.redirect_uri"},
		{"redirect no host", pw(`{"redirect_uri":"https:///cb"}`), "auth.password.redirect_uri"},
		{"redirect fragment", pw(`{"redirect_uri":"https://app.example.com/cb#x"}`), "auth.password.redirect_uri"},
		{"redirect empty fragment", pw(`{"redirect_uri":"https://app.example.com/cb#"}`), "auth.password.redirect_uri"},
		{"redirect credentials", pw(`{"redirect_uri":"https://u:p@app.example.com/cb"}`), "auth.password.redirect_uri"},
		{"code redirect empty list", ac(`{"redirect_uri":[]}`), "auth.authorization_code.redirect_uri"},
		{"code redirect bad entry", ac(`{"redirect_uri":["https://a.example/cb","http://b.example/cb"]}`), "auth.authorization_code.redirect_uri[1]"},
		{"code redirect number entry", ac(`{"redirect_uri":[7]}`), "auth.authorization_code.redirect_uri[0]"},
		{"code redirect fragment", ac(`{"redirect_uri":"https://a.example/cb#x"}`), "auth.authorization_code.redirect_uri"},
		{"pkce not bool", ac(`{"pkce":"yes"}`), "auth.authorization_code.pkce"},
		{"first_party not bool", `{"grant_types":["authorization_code"],"first_party":"yes"}`, "first_party"},
		{"redirect for client_credentials", cc(`{"redirect_uri":"https://app.example.com/cb"}`), "auth.client_credentials.redirect_uri"},

		{"audience empty list", pw(`{"audience":[]}`), "auth.password.audience"},
		{"audience empty string", pw(`{"audience":""}`), "auth.password.audience"},
		{"audience empty entry", pw(`{"audience":["a",""]}`), "auth.password.audience[1]"},
		{"audience number entry", pw(`{"audience":[1]}`), "auth.password.audience[0]"},
		{"audience number", pw(`{"audience":5}`), "auth.password.audience"},
		{"audience object", cc(`{"audience":{"a":1}}`), "auth.client_credentials.audience"},

		{"scope number", `{"grant_types":["client_credentials"],"scope":5}`, "scope"},
		{"scope object", `{"grant_types":["client_credentials"],"scope":{"read":true}}`, "scope"},
		{"scope with a quote", `{"grant_types":["client_credentials"],"scope":"read a\"b"}`, "scope"},
		{"scope non-ASCII", `{"grant_types":["client_credentials"],"scope":"lecture é"}`, "scope"},
		{"scope entry with a space", `{"grant_types":["client_credentials"],"scope":["read","a b"]}`, "scope[1]"},
		{"scope entry empty", `{"grant_types":["client_credentials"],"scope":[""]}`, "scope[0]"},
		{"scope entry number", `{"grant_types":["client_credentials"],"scope":["read",1]}`, "scope[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clientNumberKinds(t, func(t *testing.T, useNumber bool) {
				c, err := ParseClientConfig(clientDoc(t, tc.doc, useNumber))
				var re *resources.Error
				if !errors.As(err, &re) {
					t.Fatalf("got %+v, %v; want a *resources.Error", c, err)
				}
				if re.Code != resources.CodeUnprocessable || re.Expression != tc.expr {
					t.Fatalf("got code %s expression %q (%s), want %s %q", re.Code, re.Expression, re.Message, resources.CodeUnprocessable, tc.expr)
				}
				if !strings.HasPrefix(re.Message, tc.expr+": ") {
					t.Errorf("message %q does not name %s", re.Message, tc.expr)
				}
			})
		})
	}
}

func TestClientConfigMessages(t *testing.T) {
	_, err := ParseClientConfig(clientDoc(t, `{"grant_types":["client_credentials"],"auth":{"password":{}}}`, true))
	if want := "auth.password: the client's grant_types do not include password"; resources.ErrorMessage(err) != want {
		t.Errorf("message %q, want %q", resources.ErrorMessage(err), want)
	}
	// The same document always reports the same problem, whatever the map order.
	doc := `{"grant_types":["password","client_credentials"],"auth":{"password":{"zzz":1,"token_format":"x"},"client_credentials":{"aaa":1}}}`
	for range 20 {
		_, err := ParseClientConfig(clientDoc(t, doc, true))
		var re *resources.Error
		if !errors.As(err, &re) || re.Expression != "auth.client_credentials.aaa" {
			t.Fatalf("got %v", err)
		}
	}
}

// FuzzParseClientConfig: any JSON object is either a config or a 422, never a panic.
func FuzzParseClientConfig(f *testing.F) {
	f.Add(`{"grant_types":["password"],"auth":{"password":{"access_token_expiration":1e308}}}`)
	f.Add(`{"grant_types":["password","refresh_token"],"auth":{"password":{"refresh_token":true,"redirect_uri":"http://[::1"}}}`)
	f.Fuzz(func(t *testing.T, js string) {
		dec := json.NewDecoder(bytes.NewReader([]byte(js)))
		dec.UseNumber()
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			return
		}
		_, err := ParseClientConfig(doc)
		if err != nil && resources.ErrorCode(err) != resources.CodeUnprocessable {
			t.Fatalf("%s: %v", js, err)
		}
	})
}
