package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Real client libraries on the authorization code flow: golang.org/x/oauth2 builds the
// authorization URL with an S256 challenge and exchanges the code with the verifier;
// coreos/go-oidc finds the endpoints by discovery and verifies the ID token (signature,
// iss, aud, expiry), its nonce and at_hash; the token then reads /fhir
// (conformance A1, A8, C6).
func TestAuthCodeClientLibraries(t *testing.T) { forEachBackend(t, testAuthCodeClientLibraries) }

func testAuthCodeClientLibraries(t *testing.T) {
	ce := newCodeEnv(t)
	ce.must(201, yamlPut("/AccessPolicy/user1-read", "engine: matcho\nlink: [{id: user1, resourceType: User}]\nmatcho: {request-method: get, uri: '#^/fhir/'}\n"))
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, ce.base)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var claims struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&claims); err != nil || len(claims.Methods) != 1 || claims.Methods[0] != "S256" {
		t.Errorf("code_challenge_methods_supported %v (%v)", claims.Methods, err)
	}
	conf := oauth2.Config{ClientID: "codeapp", Endpoint: provider.Endpoint(), RedirectURL: codeRedirect,
		Scopes: []string{oidc.ScopeOpenID, "patient/*.read"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-1"))
	if !strings.HasPrefix(authURL, ce.base+"/auth/authorize?") {
		t.Fatalf("AuthCodeURL %s", authURL)
	}
	b := ce.browser(t)
	code := b.signInForCode(strings.TrimPrefix(authURL, ce.base))

	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "codeapp"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != "nonce-1" || idt.Subject != "user1" {
		t.Errorf("ID token nonce %q sub %q", idt.Nonce, idt.Subject)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	resp, err := conf.Client(ctx, tok).Get(ce.base + "/fhir/Patient")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /fhir/Patient: %v %v", err, resp)
	}
	resp.Body.Close()
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	// OpenID Connect Core §5.3.2: sub is always there (conformance L9).
	if err != nil || ui.Subject != "user1" {
		t.Errorf("userinfo: %v %+v", err, ui)
	}

	// A wrong verifier: the library reports invalid_grant.
	code = b.signInForCode(strings.TrimPrefix(conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier)), ce.base))
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Error("a wrong verifier got tokens")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Errorf("wrong verifier: %v", err)
	}
}
