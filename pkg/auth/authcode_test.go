package auth

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// conformance P1: RFC 7636 Appendix B's verifier gives its challenge.
func TestS256RFCExample(t *testing.T) {
	if got := S256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256 = %s", got)
	}
}

func testCodeClient(t testing.TB, doc string) *ClientConfig {
	t.Helper()
	c, err := ParseClientConfig(clientDoc(t.(*testing.T), doc, false))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every error of an authorization request: shown (no redirect) while the client or
// its redirect URI is not established, redirected with state after
// (conformance T12, A3, P5, S1).
func TestParseAuthorizeRequest(t *testing.T) {
	public := testCodeClient(t, `{"id":"spa","grant_types":["authorization_code"],"scope":"openid patient/*.read","auth":{"authorization_code":{"redirect_uri":"https://app.example/cb"}}}`)
	two := testCodeClient(t, `{"id":"two","secret":"x","grant_types":["authorization_code"],"auth":{"authorization_code":{"redirect_uri":["https://a.example/cb","https://b.example/cb?x=1"]}}}`)
	noCode := testCodeClient(t, `{"id":"pw","grant_types":["password"]}`)
	pkce := testCodeClient(t, `{"id":"conf","secret":"x","grant_types":["authorization_code"],"auth":{"authorization_code":{"redirect_uri":"https://a.example/cb","pkce":true}}}`)
	const ch = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	ok := "response_type=code&code_challenge=" + ch + "&code_challenge_method=S256&state=s1"
	cases := []struct {
		name   string
		client *ClientConfig
		query  string
		// code is the error ("" for none); redirect whether it goes to the client.
		code     string
		redirect bool
	}{
		{"public ok", public, ok + "&scope=openid", "", false},
		{"redirect_uri given", public, ok + "&redirect_uri=https://app.example/cb", "", false},
		{"confidential without pkce", two, "response_type=code&redirect_uri=https://a.example/cb", "", false},
		{"no code grant", noCode, ok, ErrCodeUnauthorizedClient, false},
		{"unregistered redirect", public, ok + "&redirect_uri=https://evil.example/cb", ErrCodeInvalidRequest, false},
		{"redirect differs in case", public, ok + "&redirect_uri=https://APP.example/cb", ErrCodeInvalidRequest, false},
		{"redirect with extra path", public, ok + "&redirect_uri=https://app.example/cb/x", ErrCodeInvalidRequest, false},
		{"redirect repeated", public, ok + "&redirect_uri=https://app.example/cb&redirect_uri=https://app.example/cb", ErrCodeInvalidRequest, false},
		{"several registered, none named", two, "response_type=code", ErrCodeInvalidRequest, false},
		{"no response_type", public, "code_challenge=" + ch + "&code_challenge_method=S256", ErrCodeInvalidRequest, true},
		{"response_type token", public, strings.Replace(ok, "=code", "=token", 1), "unsupported_response_type", true},
		{"bad scope", public, ok + "&scope=system/*.write", ErrCodeInvalidScope, true},
		{"malformed scope", public, ok + "&scope=a%22b", ErrCodeInvalidScope, true},
		{"public without challenge", public, "response_type=code", ErrCodeInvalidRequest, true},
		{"pkce client without challenge", pkce, "response_type=code", ErrCodeInvalidRequest, true},
		{"plain", public, "response_type=code&code_challenge=" + ch + "&code_challenge_method=plain", ErrCodeInvalidRequest, true},
		{"challenge without method", public, "response_type=code&code_challenge=" + ch, ErrCodeInvalidRequest, true},
		{"method without challenge", two, "response_type=code&redirect_uri=https://a.example/cb&code_challenge_method=S256", ErrCodeInvalidRequest, true},
		{"short challenge", public, "response_type=code&code_challenge=abc&code_challenge_method=S256", ErrCodeInvalidRequest, true},
		{"challenge bad chars", public, "response_type=code&code_challenge=" + strings.Repeat("%2B", 43) + "&code_challenge_method=S256", ErrCodeInvalidRequest, true},
		{"state repeated", public, ok + "&state=s2", ErrCodeInvalidRequest, true},
		{"param repeated", public, ok + "&scope=openid&scope=openid", ErrCodeInvalidRequest, true},
		{"param too long", public, ok + "&nonce=" + strings.Repeat("n", 2049), ErrCodeInvalidRequest, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			req, ae := ParseAuthorizeRequest(tc.client, q)
			switch {
			case tc.code == "" && ae != nil:
				t.Fatalf("error %v", ae)
			case tc.code == "":
				if req.RedirectURI == "" {
					t.Fatal("no redirect URI")
				}
				return
			case ae == nil || ae.Code != tc.code:
				t.Fatalf("error %v, want %s", ae, tc.code)
			case tc.redirect != (req != nil):
				t.Fatalf("redirect %v, want %v (%v)", req != nil, tc.redirect, ae)
			}
			if req == nil {
				return
			}
			to, err := url.Parse(req.RedirectError(ae, "https://fhirbox.example"))
			if err != nil {
				t.Fatal(err)
			}
			got := to.Query()
			if got.Get("error") != tc.code || got.Get("error_description") == "" || got.Get("iss") != "https://fhirbox.example" {
				t.Errorf("redirect %s", to)
			}
			if q.Get("state") == "s1" && len(q["state"]) == 1 && got.Get("state") != "s1" {
				t.Errorf("state lost: %s", to)
			}
		})
	}
	// A registered URI with a query keeps it, and the answer's parameters follow.
	req, _ := ParseAuthorizeRequest(two, url.Values{"response_type": {"code"}, "redirect_uri": {"https://b.example/cb?x=1"}, "state": {"z"}})
	if to := req.redirect(url.Values{"code": {"c"}}, "https://i"); !strings.HasPrefix(to, "https://b.example/cb?x=1&") || !strings.Contains(to, "state=z") {
		t.Errorf("redirect %s", to)
	}
}

// FuzzParseAuthorizeRequest: any query gives a request or an error, never a panic, and
// nothing is ever sent to a URI the client did not register.
func FuzzParseAuthorizeRequest(f *testing.F) {
	for _, s := range []string{
		"response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=x",
		"response_type=code&redirect_uri=https://evil.example/cb",
		"response_type=token&scope=openid%20a&state=%00",
		"redirect_uri=https://b.example/cb?x=1&redirect_uri=x",
		"",
	} {
		f.Add(s)
	}
	client := &ClientConfig{ID: "c", GrantTypes: []string{"authorization_code"}, Grants: map[string]GrantConfig{
		"authorization_code": {RedirectURIs: []string{"https://a.example/cb", "https://b.example/cb?x=1"}},
	}}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, ae := ParseAuthorizeRequest(client, q)
		if req == nil && ae == nil {
			t.Fatal("neither request nor error")
		}
		if req != nil && !slices.Contains(client.Grants["authorization_code"].RedirectURIs, req.RedirectURI) {
			t.Fatalf("redirect to unregistered %q", req.RedirectURI)
		}
	})
}
