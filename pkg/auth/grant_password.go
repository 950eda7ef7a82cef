package auth

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// PasswordGrant is the resource owner password grant (RFC 6749 §4.3): a user's name
// and password get tokens that act for the user. Guesses are limited per user and per
// address (Limiter); a client whose password grant has a redirect_uri also needs the
// one-time code that /auth/authorize sent there (Codes).
type PasswordGrant struct {
	Dir      *Directory
	Codes    *Codes
	Limiter  *Limiter
	Sessions *Sessions
}

var _ GrantHandler = (*PasswordGrant)(nil)

// Handles takes grant_type password.
func (g *PasswordGrant) Handles(req *TokenRequest) bool { return req.GrantType() == "password" }

// Token checks the user's password and issues tokens that act for the user.
func (g *PasswordGrant) Token(ctx context.Context, r *GrantRequest) (*TokenResponse, error) {
	const grant = "password"
	if err := r.admit(grant); err != nil {
		return nil, err
	}
	client := r.Client
	cfg := client.Grant(grant)
	if cfg.SecretRequired && !r.Authenticated {
		return nil, r.clientErr("client " + client.ID + " must authenticate with its secret")
	}
	username, password := r.Params["username"], r.Params["password"]
	if username == "" || password == "" {
		return nil, oauthErr(ErrCodeInvalidRequest, "username and password are required")
	}
	aud, err := r.audience(grant)
	if err != nil {
		return nil, err
	}
	if cfg.RedirectURI != "" {
		ok, err := g.Codes.Redeem(ctx, client.ID, grant, r.Params["code"])
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, oauthErr(ErrCodeInvalidGrant, "this client's password grant needs the one-time code from /auth/authorize")
		}
	}
	// The address is checked first, so that an address that waits costs no look-up.
	addr := "addr:" + r.RemoteAddr
	if wait, ok := g.Limiter.Check(addr); !ok {
		return nil, tooManySignIns(wait)
	}
	login, err := g.Dir.ResolveLogin(ctx, username)
	if err != nil {
		return nil, err
	}
	// Checking and counting are one step: the attempt counts as a failure from here until
	// the password is found right, so a burst of parallel guesses gets the free allowance
	// and no more.
	att, wait, ok := g.Limiter.Begin(login.Key, addr)
	if !ok {
		return nil, tooManySignIns(wait)
	}
	defer att.Cancel()
	user := g.Dir.CheckPassword(login, password)
	if user == nil {
		att.Fail()
		return nil, oauthErr(ErrCodeInvalidGrant, "wrong username or password")
	}
	att.Succeed(login.Key)
	return g.Sessions.Issue(ctx, Grant{Type: grant, Client: client, User: user, Audience: aud, Scope: r.Scope})
}

// tooManySignIns is the answer while the user or the address waits: the same for every
// user name, known or not.
func tooManySignIns(wait time.Duration) *OAuthError {
	secs := (&LimitedError{Wait: wait}).Seconds()
	return &OAuthError{Code: ErrCodeInvalidRequest, Status: http.StatusTooManyRequests, RetryAfter: secs,
		Description: fmt.Sprintf("too many failed sign-ins; try again in %d seconds", secs)}
}
