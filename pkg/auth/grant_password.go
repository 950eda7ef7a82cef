package auth

import "context"

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
	user, err := SignIn(ctx, g.Dir, g.Limiter, username, password, r.RemoteAddr)
	if err != nil {
		return nil, err
	}
	return g.Sessions.Issue(ctx, Grant{Type: grant, Client: client, User: user, Audience: aud, Scope: r.Scope})
}
