package auth

import (
	"context"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// clientStore holds one public Client, "app", and counts the reads: the token endpoint
// needs nothing else of a store to identify a client that only names itself.
type clientStore struct {
	resources.Store
	reads int
}

func (s *clientStore) Read(_ context.Context, typ, id string) (*resources.Resource, error) {
	s.reads++
	if typ != "Client" || id != "app" {
		return nil, resources.Errorf(resources.CodeNotFound, "%s/%s not found", typ, id)
	}
	return &resources.Resource{Type: typ, ID: id, VersionID: 1,
		Content: []byte(`{"resourceType":"Client","id":"app","grant_types":["password"]}`)}, nil
}

// fakeGrant takes the grant types in takes (any when empty) and answers with its name.
type fakeGrant struct {
	name  string
	takes []string
	asked int
	got   *GrantRequest
}

func (g *fakeGrant) Handles(req *TokenRequest) bool {
	g.asked++
	if len(g.takes) == 0 {
		return true
	}
	for _, t := range g.takes {
		if t == req.GrantType() {
			return true
		}
	}
	return false
}

func (g *fakeGrant) Token(_ context.Context, r *GrantRequest) (*TokenResponse, error) {
	g.got = r
	return &TokenResponse{AccessToken: g.name}, nil
}

// The token endpoint asks its grants in order; the first that takes the request answers
// it, for the client it identified, and a request no grant takes is refused before any
// client is looked up.
func TestTokenEndpointWalksGrantsInOrder(t *testing.T) {
	ctx := context.Background()
	st := &clientStore{}
	svc := resources.NewService(resources.DefaultRegistry(), st, resources.Options{})
	endpoint := func(grants ...GrantHandler) *TokenEndpoint {
		return &TokenEndpoint{Clients: NewClientVerifier(st, nil), Dir: NewDirectory(svc), Grants: grants}
	}
	request := func(grant string) *TokenRequest {
		return &TokenRequest{Params: map[string]string{"grant_type": grant, "client_id": "app", "scope": "a b"}}
	}

	notMine := &fakeGrant{name: "not-mine", takes: []string{"other"}}
	mine := &fakeGrant{name: "mine", takes: []string{"x-test"}}
	catchAll := &fakeGrant{name: "any"}
	e := endpoint(notMine, mine, catchAll)
	resp, err := e.Token(ctx, request("x-test"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.AccessToken != "mine" || notMine.asked != 1 || catchAll.asked != 0 {
		t.Errorf("answered by %q; asked not-mine %d times, the catch-all %d times: want mine, 1, 0", resp.AccessToken, notMine.asked, catchAll.asked)
	}
	if got := mine.got; got == nil || got.Client.ID != "app" || got.Authenticated || len(got.Scope) != 2 || got.GrantType() != "x-test" {
		t.Errorf("the grant got %+v: want client app, not authenticated, scope [a b]", got)
	}
	if resp, err := e.Token(ctx, request("y")); err != nil || resp.AccessToken != "any" {
		t.Errorf("grant y: %v, %v: want the catch-all's answer", resp, err)
	}

	st.reads = 0
	e = endpoint(notMine)
	for grant, want := range map[string]string{
		"authorization_code": "grant_type authorization_code is not supported yet",
		"magic":              `unknown grant_type "magic"`,
	} {
		_, err := e.Token(ctx, request(grant))
		oe, ok := err.(*OAuthError)
		if !ok || oe.Code != ErrCodeUnsupportedGrantType || oe.Description != want {
			t.Errorf("grant %s: %v: want unsupported_grant_type, %q", grant, err, want)
		}
	}
	if st.reads != 0 {
		t.Errorf("%d client look-ups for grants no handler takes: want none", st.reads)
	}
}
