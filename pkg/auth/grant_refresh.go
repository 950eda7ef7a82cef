package auth

import (
	"context"
	"strings"
)

// RefreshGrant is the refresh_token grant (RFC 6749 §6): a Session's current refresh
// token gets it a new token pair, and the token presented is spent. A spent token that
// comes back closes the Session (conformance S2). How a refresh behaves is decided by
// the grant that opened the Session (the client's settings for it).
type RefreshGrant struct {
	Sessions *Sessions
}

var _ GrantHandler = (*RefreshGrant)(nil)

// Handles takes grant_type refresh_token.
func (g *RefreshGrant) Handles(req *TokenRequest) bool { return req.GrantType() == "refresh_token" }

// Token rotates the Session's tokens. A requested scope narrows the new access token's
// scope; the Session keeps its grant's scope for later refreshes.
func (g *RefreshGrant) Token(ctx context.Context, r *GrantRequest) (*TokenResponse, error) {
	rt := r.Params["refresh_token"]
	if rt == "" {
		return nil, oauthErr(ErrCodeInvalidRequest, "refresh_token is required")
	}
	bad := oauthErr(ErrCodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	if len(rt) > 8192 {
		return nil, bad
	}
	s := g.Sessions
	sess, err := s.byRefreshToken(ctx, rt)
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return nil, bad
	}
	if !sess.current() {
		// An old refresh token came back: someone holds a copy. End the whole family.
		if err := s.Close(ctx, sess.res.ID); err != nil {
			return nil, err
		}
		return nil, oauthErr(ErrCodeInvalidGrant, "the refresh token was already used; the session is closed")
	}
	client := r.Client
	if refID(sess.doc["client"]) != client.ID {
		return nil, bad
	}
	grant, _ := sess.doc["type"].(string)
	if !r.Authenticated && client.needsSecretToRefresh(grant) {
		return nil, r.clientErr("refreshing these tokens needs the client's secret")
	}
	cfg := client.Grant(grant)
	if !cfg.RefreshToken || !client.Allows("refresh_token") {
		return nil, oauthErr(ErrCodeUnauthorizedClient, "client %s may not refresh tokens", client.ID)
	}
	now := s.clock()
	if rexp, ok := number(sess.doc["refresh_token_exp"]); ok && now.Unix() >= rexp {
		return nil, bad
	}
	// online_access: the user must still be signed in where the grant was made
	// (conformance L8).
	if bid := refID(sess.doc["browser"]); bid != "" {
		open, err := s.browserOpen(ctx, bid)
		if err != nil {
			return nil, err
		}
		if !open {
			return nil, oauthErr(ErrCodeInvalidGrant, "the user has signed out: a refresh token of online_access lives only as long as the sign-in it came from")
		}
	}
	sub := client.ID
	if uid := refID(sess.doc["user"]); uid != "" {
		user, err := s.dir.User(ctx, uid)
		if err != nil {
			return nil, err
		}
		if user == nil {
			return nil, bad
		}
		sub = uid
	}
	granted, _ := sess.doc["scope"].(string)
	access, oe := narrowScope(granted, r.Scope)
	if oe != nil {
		return nil, oe
	}
	// A scope taken off the client's list since the grant is not issued again.
	if bad := client.AllowsScope(strings.Fields(access)); bad != "" {
		return nil, oauthErr(ErrCodeInvalidScope, "scope %q is no longer allowed for client %s: refresh with a narrower scope", bad, client.ID)
	}
	setScope(sess.doc, granted, access)
	return s.rotate(ctx, sess, sub, client, cfg, now)
}

// needsSecretToRefresh reports whether refreshing tokens of grant needs the client's
// secret: a public app that signs users in with client_id alone refreshes the same way;
// everything else refreshes with the credentials it was issued with.
func (c *ClientConfig) needsSecretToRefresh(grant string) bool {
	return c.HasSecret && (grant != "password" || c.Grant("password").SecretRequired)
}
