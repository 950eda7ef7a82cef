package auth

import "context"

// GrantHandler runs one OAuth grant at the token endpoint. The endpoint walks its
// handlers in order and gives the request to the first that says it is its own; a
// handler that answers false ("not mine") lets the next one look. Adding a grant is
// adding a handler.
type GrantHandler interface {
	// Handles reports whether req is this handler's to answer, before the client is
	// authenticated: it looks at the request alone (its grant_type, usually).
	Handles(req *TokenRequest) bool
	// Token answers a request that Handles took, for the client the endpoint
	// identified. An *OAuthError is the client's mistake, anything else the server's.
	Token(ctx context.Context, req *GrantRequest) (*TokenResponse, error)
}

// GrantRequest is a token request whose client the endpoint has identified.
type GrantRequest struct {
	*TokenRequest
	// Client is the client that sent the request.
	Client *ClientConfig
	// Authenticated is set when the client proved its secret; unset when it only named
	// itself (client_id alone), which each grant accepts or refuses.
	Authenticated bool
	// Scope is the requested scope, parsed; none when empty. Whether the client may ask
	// for it is the grant's decision (admit), since a refresh narrows the scope
	// its Session was granted instead.
	Scope []string
}

// admit refuses a client that may not use grant, in the order the token endpoint has
// always checked: a scope the client may not ask for, then a grant its grant_types do
// not list. A refresh checks neither here: it narrows its Session's scope, and whether
// it may refresh depends on the grant that opened the Session.
func (r *GrantRequest) admit(grant string) error {
	if bad := r.Client.AllowsScope(r.Scope); bad != "" {
		return oauthErr(ErrCodeInvalidScope, "scope %q is not allowed for client %s", bad, r.Client.ID)
	}
	if !r.Client.Allows(grant) {
		return oauthErr(ErrCodeUnauthorizedClient, "client %s may not use the %s grant", r.Client.ID, grant)
	}
	return nil
}

// audience checks the requested audience against those the client's settings for
// grant allow, and returns it.
func (r *GrantRequest) audience(grant string) (string, error) {
	requested := r.Params["audience"]
	allowed := r.Client.Grant(grant).Audience
	if requested == "" || len(allowed) == 0 {
		return requested, nil
	}
	for _, a := range allowed {
		if a == requested {
			return requested, nil
		}
	}
	return "", oauthErr(ErrCodeInvalidTarget, "audience %q is not allowed for this client", requested)
}
