package auth

import "context"

// ClientCredentialsGrant is the client_credentials grant (RFC 6749 §4.4): a client
// that proves its secret gets tokens that act for itself.
type ClientCredentialsGrant struct {
	Sessions *Sessions
}

var _ GrantHandler = (*ClientCredentialsGrant)(nil)

// Handles takes grant_type client_credentials.
func (g *ClientCredentialsGrant) Handles(req *TokenRequest) bool {
	return req.GrantType() == "client_credentials"
}

// Token issues tokens to a client that listed the grant and authenticated.
func (g *ClientCredentialsGrant) Token(ctx context.Context, r *GrantRequest) (*TokenResponse, error) {
	const grant = "client_credentials"
	if err := r.admit(grant); err != nil {
		return nil, err
	}
	if !r.Authenticated {
		return nil, r.clientErr("the client_credentials grant needs the client's secret")
	}
	aud, err := r.audience(grant)
	if err != nil {
		return nil, err
	}
	return g.Sessions.Issue(ctx, Grant{Type: grant, Client: r.Client, Audience: aud, Scope: r.Scope})
}
