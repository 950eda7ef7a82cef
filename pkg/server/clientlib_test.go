package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/fhirbox/fhirbox/pkg/app"
)

func withBaseURL(u string) envOption { return func(a *app.Config) { a.Server.BaseURL = u } }

// Real client libraries against the real server over HTTP: golang.org/x/oauth2 for the
// client credentials, password and refresh grants (both client authentication styles),
// and coreos/go-oidc for discovery and JWT verification with the published keys.
func TestClientLibraries(t *testing.T) { forEachBackend(t, testClientLibraries) }

// liveEnv is newEnv served over real HTTP on a loopback port, its base URL that port's,
// for client libraries that make their own requests.
func liveEnv(t *testing.T) (*env, string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String()
	e := newEnv(t, withBaseURL(base))
	ts.Config.Handler = e.srv
	ts.Start()
	t.Cleanup(ts.Close)
	return e, base
}

func testClientLibraries(t *testing.T) {
	e, base := liveEnv(t)
	setupMyapp(t, e)
	e.must(201, yamlPut("/AccessPolicy/myapp-all", "engine: allow\nlink: [{id: myapp, resourceType: Client}, {id: user1, resourceType: User}]\n"))
	ctx := context.Background()

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cc := clientcredentials.Config{ClientID: "myapp", ClientSecret: "verysecret", TokenURL: base + "/auth/token", AuthStyle: style}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials (style %d): %v", style, err)
		}
		if tok.AccessToken == "" || tok.Expiry.IsZero() || tok.RefreshToken != "" {
			t.Errorf("client credentials token %+v", tok)
		}
		resp, err := cc.Client(ctx).Get(base + "/fhir/Patient")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /fhir/Patient with the client credentials token: %v %v", err, resp)
		}
		resp.Body.Close()

		conf := oauth2.Config{ClientID: "myapp", ClientSecret: "verysecret", Endpoint: oauth2.Endpoint{TokenURL: base + "/auth/token", AuthStyle: style}}
		pt, err := conf.PasswordCredentialsToken(ctx, "user1@example.com", "password1")
		if err != nil {
			t.Fatalf("password (style %d): %v", style, err)
		}
		if pt.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		// A token source with an expired token refreshes it by itself.
		expired := &oauth2.Token{AccessToken: pt.AccessToken, RefreshToken: pt.RefreshToken, Expiry: pt.Expiry.Add(-24 * 60 * 60 * 1e9)}
		nt, err := conf.TokenSource(ctx, expired).Token()
		if err != nil || nt.AccessToken == pt.AccessToken || nt.RefreshToken == pt.RefreshToken {
			t.Fatalf("refresh: %v (%+v)", err, nt)
		}
		resp, err = conf.Client(ctx, nt).Get(base + "/auth/userinfo")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("userinfo with the refreshed token: %v %v", err, resp)
		}
		resp.Body.Close()
		if _, err := conf.PasswordCredentialsToken(ctx, "user1", "wrong"); err == nil {
			t.Error("a wrong password got a token")
		} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
			t.Errorf("wrong password: %v", err)
		}

		// go-oidc: discovery, then the access JWT verified with the JWKS.
		provider, err := oidc.NewProvider(ctx, base)
		if err != nil {
			t.Fatalf("discovery: %v", err)
		}
		idt, err := provider.Verifier(&oidc.Config{ClientID: "myapp"}).Verify(ctx, nt.AccessToken)
		if err != nil {
			t.Fatalf("go-oidc verification: %v", err)
		}
		if idt.Subject != "user1" || idt.Issuer != base {
			t.Errorf("verified token: sub %q iss %q", idt.Subject, idt.Issuer)
		}
	}
}
