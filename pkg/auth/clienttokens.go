package auth

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// This file serves RFC 7662 token introspection and RFC 7009 revocation: a client
// authenticates as at the token endpoint and names a token; introspection says whether
// it is active and what it is, revocation ends its Session. Both look a token up the
// way bearer authentication and DELETE /Session do, so that all of them agree on what
// is live.

// ClientTokens answers POST /auth/introspect and POST /auth/revoke.
type ClientTokens struct {
	// Token authenticates the calling client, as the token endpoint does.
	Token    *TokenEndpoint
	Sessions *Sessions
	// AdminClientID is the root client, which may introspect every token.
	AdminClientID string
}

// Inactive is the whole answer for a token that is not active, or that the caller may
// not see: the same for every reason, so that it tells nothing (RFC 7662 §2.2,
// conformance I3).
func Inactive() map[string]any { return map[string]any{"active": false} }

// ParseClientRequest reads an introspection or revocation request as ParseTokenRequest
// reads a token request, and refuses a token in the query, where it would end up in
// logs: RFC 7662 §2.1 and RFC 7009 §2.1 take it in the body.
func ParseClientRequest(contentType string, body []byte, query url.Values, authorization string) (*TokenRequest, *OAuthError) {
	if query.Has("token") {
		return nil, oauthErr(ErrCodeInvalidRequest, "token must be sent in the request body, never in the URL")
	}
	return ParseTokenRequest(contentType, body, query, authorization)
}

// caller authenticates the client of req. Every failure is a 401 with a Basic challenge
// (RFC 7662 §2.3, RFC 7009 §2.1 through RFC 6749 §5.2), however the client tried.
func (ct *ClientTokens) caller(ctx context.Context, req *TokenRequest) (*ClientConfig, bool, error) {
	client, authenticated, err := ct.Token.AuthenticateClient(ctx, req)
	if oe, ok := err.(*OAuthError); ok && oe.Code == ErrCodeInvalidClient {
		oe.Challenge = true
	}
	return client, authenticated, err
}

// tokenParam is the request's token, required by both RFCs.
func tokenParam(req *TokenRequest) (string, error) {
	tok := req.Params["token"]
	if tok == "" {
		return "", oauthErr(ErrCodeInvalidRequest, "token is required")
	}
	return tok, nil
}

// Introspect answers an introspection request (conformance I1–I5). The caller must
// authenticate with its secret. It sees the tokens issued to itself; the root client
// and clients with resource_server: true see every token. Anything else, and every token
// that is unknown, malformed, expired or revoked, gets Inactive.
func (ct *ClientTokens) Introspect(ctx context.Context, req *TokenRequest) (map[string]any, error) {
	client, authenticated, err := ct.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	if !authenticated {
		return nil, &OAuthError{Code: ErrCodeInvalidClient, Challenge: true,
			Description: "introspection needs client authentication: HTTP Basic or client_id and client_secret"}
	}
	tok, err := tokenParam(req)
	if err != nil {
		return nil, err
	}
	info, err := ct.Sessions.describe(ctx, tok, req.Params["token_type_hint"] == "refresh_token")
	if err != nil || info == nil {
		return Inactive(), err
	}
	if info.client != client.ID && !client.ResourceServer && client.ID != ct.AdminClientID {
		return Inactive(), nil
	}
	return info.answer, nil
}

// Revoke answers a revocation request (conformance R1–R8): a confidential client
// authenticates with its secret, a public one names itself with client_id. The token's
// Session ends when it was issued to the caller; any other token is left as it is, with
// the same answer.
func (ct *ClientTokens) Revoke(ctx context.Context, req *TokenRequest) error {
	client, authenticated, err := ct.caller(ctx, req)
	if err != nil {
		return err
	}
	if !authenticated && client.HasSecret {
		return &OAuthError{Code: ErrCodeInvalidClient, Challenge: true,
			Description: "client " + client.ID + " must authenticate with its secret"}
	}
	tok, err := tokenParam(req)
	if err != nil {
		return err
	}
	return ct.Sessions.RevokeFor(ctx, client.ID, tok)
}

// described is an active token: the client it was issued to and the introspection
// answer.
type described struct {
	client string
	answer map[string]any
}

// describe looks token up as an access token (as bearer authentication does) and as a
// refresh token (as the refresh grant does), refresh first when hinted so; nil when it
// is neither, or no longer active.
func (s *Sessions) describe(ctx context.Context, token string, refreshFirst bool) (*described, error) {
	if len(token) > MaxTokenLen {
		return nil, nil
	}
	steps := []func(context.Context, string) (*described, error){s.describeAccess, s.describeRefresh}
	if refreshFirst {
		steps[0], steps[1] = steps[1], steps[0]
	}
	for _, step := range steps {
		d, err := step(ctx, token)
		if err != nil || d != nil {
			return d, err
		}
	}
	return nil, nil
}

// describeAccess describes a live access token.
func (s *Sessions) describeAccess(ctx context.Context, token string) (*described, error) {
	id, err := s.Authenticate(ctx, token)
	if err == ErrInvalidBearer {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	scope, _ := id.Session["access_scope"].(string)
	a := s.answer(id.Session, id.ClientID, id.User, scope)
	a["token_type"] = "Bearer"
	if id.JWT != nil {
		// A JWT keeps its own times: after a refresh the Session's are the new token's.
		for _, k := range []string{"exp", "iat", "jti"} {
			if v, ok := id.JWT[k]; ok {
				a[k] = v
			}
		}
		a["nbf"] = a["iat"]
	}
	return &described{client: id.ClientID, answer: a}, nil
}

// describeRefresh describes a refresh token that a refresh would take now: the
// Session's current one, not expired, of a client that may still refresh and of a user
// that may still sign in.
func (s *Sessions) describeRefresh(ctx context.Context, token string) (*described, error) {
	r, err := s.byRefreshToken(ctx, token)
	if err != nil || r == nil || !r.current() {
		return nil, err
	}
	if rexp, ok := number(r.doc["refresh_token_exp"]); ok && s.now().Unix() >= rexp {
		return nil, nil
	}
	clientID := refID(r.doc["client"])
	doc, err := s.dir.Client(ctx, clientID)
	if err != nil || doc == nil {
		return nil, err
	}
	client, err := ParseClientConfig(doc)
	grant, _ := r.doc["type"].(string)
	if err != nil || !client.Grant(grant).RefreshToken || !client.Allows("refresh_token") {
		return nil, nil
	}
	var user map[string]any
	if uid := refID(r.doc["user"]); uid != "" {
		if user, err = s.dir.User(ctx, uid); err != nil || user == nil {
			return nil, err
		}
	}
	scope, _ := r.doc["scope"].(string)
	a := s.answer(r.doc, clientID, user, scope)
	delete(a, "exp")
	if rexp, ok := number(r.doc["refresh_token_exp"]); ok {
		a["exp"] = rexp
	}
	// Not Bearer: a resource server that checks token_type never takes a refresh token
	// for an access token (conformance I5).
	a["token_type"] = "refresh_token"
	return &described{client: clientID, answer: a}, nil
}

// answer is the introspection answer of Session doc's tokens (RFC 7662 §2.2, with
// SMART's patient and fhirUser when the Session carries them).
func (s *Sessions) answer(doc map[string]any, clientID string, user map[string]any, scope string) map[string]any {
	a := map[string]any{"active": true, "client_id": clientID, "sub": clientID, "iss": s.issuer}
	if scope != "" {
		a["scope"] = scope
	}
	if aud, _ := doc["audience"].(string); aud != "" {
		a["aud"] = aud
	}
	if exp, ok := number(doc["exp"]); ok {
		a["exp"] = exp
	}
	// Sessions written before iat was recorded have their start, which is the iat of
	// tokens never refreshed.
	iat, ok := number(doc["iat"])
	if start, _ := doc["start"].(string); !ok {
		if t, err := time.Parse(time.RFC3339, start); err == nil {
			iat, ok = t.Unix(), true
		}
	}
	if ok {
		a["iat"], a["nbf"] = iat, iat
	}
	if user != nil {
		uid, _ := user["id"].(string)
		a["sub"] = uid
		a["username"] = uid
		for _, k := range []string{"email", "userName"} {
			if v, _ := user[k].(string); v != "" {
				a["username"] = v
			}
		}
	}
	for _, k := range []string{"patient", "fhirUser"} {
		if v, _ := doc[k].(string); strings.TrimSpace(v) != "" {
			a[k] = v
		}
	}
	// A launch context records its patient as a reference ({resourceType, id}); SMART's
	// introspection names its id.
	if p, ok := doc["patient"].(map[string]any); ok {
		if id, _ := p["id"].(string); id != "" {
			a["patient"] = id
		}
	}
	return a
}
