package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fhirbox/fhirbox/resources"
)

// TokenRequest is a parsed POST /auth/token.
type TokenRequest struct {
	// Params are the body parameters, each given once and not empty (conformance T4, T8).
	Params map[string]string
	// Basic holds HTTP Basic client credentials when the Authorization header had them.
	Basic              bool
	BasicID, BasicPass string
	// RemoteAddr is the caller's address, for brute-force limits.
	RemoteAddr string
}

// ParseTokenRequest reads a token request: a form body (any charset) or a JSON object
// of strings, the query (which must not carry credentials, conformance T1) and the
// Authorization header. Every problem is an invalid_request OAuthError.
func ParseTokenRequest(contentType string, body []byte, query url.Values, authorization string) (*TokenRequest, *OAuthError) {
	for _, k := range []string{"client_secret", "password", "refresh_token", "code"} {
		if query.Has(k) {
			return nil, oauthErr(ErrCodeInvalidRequest, "%s must be sent in the request body, never in the URL", k)
		}
	}
	req := &TokenRequest{Params: map[string]string{}}
	mt := "application/x-www-form-urlencoded"
	if contentType != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, oauthErr(ErrCodeInvalidRequest, "malformed Content-Type")
		}
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, oauthErr(ErrCodeInvalidRequest, "malformed form body")
		}
		for k, vs := range form {
			if len(vs) > 1 {
				return nil, oauthErr(ErrCodeInvalidRequest, "parameter %s is repeated", k)
			}
			if vs[0] != "" {
				req.Params[k] = vs[0]
			}
		}
	case "application/json":
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil || dec.More() {
			return nil, oauthErr(ErrCodeInvalidRequest, "the body is not a JSON object")
		}
		for k, v := range m {
			switch x := v.(type) {
			case string:
				if x != "" {
					req.Params[k] = x
				}
			case json.Number:
				req.Params[k] = x.String()
			case bool:
				req.Params[k] = fmt.Sprint(x)
			case nil:
			default:
				return nil, oauthErr(ErrCodeInvalidRequest, "parameter %s must be a string", k)
			}
		}
	default:
		return nil, oauthErr(ErrCodeInvalidRequest, "send application/x-www-form-urlencoded or application/json, not %s", mt)
	}
	// No stored value holds either (users, clients and secrets are all written as UTF-8
	// JSON or YAML), and PostgreSQL refuses both in text.
	for k, v := range req.Params {
		if strings.IndexByte(k+v, 0) >= 0 || !utf8.ValidString(k+v) {
			return nil, oauthErr(ErrCodeInvalidRequest, "parameter %q is not valid UTF-8 text, or contains the character U+0000", strings.ToValidUTF8(strings.ReplaceAll(k, "\x00", ""), ""))
		}
	}
	if authorization != "" {
		scheme, cred, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "basic") {
			return nil, oauthErr(ErrCodeInvalidRequest, "the token endpoint takes HTTP Basic client credentials only")
		}
		id, secret, ok := ParseBasic(strings.TrimSpace(cred))
		if !ok {
			return nil, &OAuthError{Code: ErrCodeInvalidClient, Description: "malformed Basic credentials", Challenge: true}
		}
		req.Basic, req.BasicID, req.BasicPass = true, id, secret
	}
	return req, nil
}

// TokenEndpoint answers POST /auth/token: client authentication, then the grant.
type TokenEndpoint struct {
	Clients  *ClientVerifier
	Dir      *Directory
	Sessions *Sessions
	Codes    *Codes
	Limiter  *Limiter
}

// Token runs a token request; an *OAuthError is the client's mistake, anything else
// the server's.
func (t *TokenEndpoint) Token(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	grant := req.Params["grant_type"]
	if grant == "" {
		return nil, oauthErr(ErrCodeInvalidRequest, "grant_type is required")
	}
	switch grant {
	case "password", "client_credentials", "refresh_token":
	case "authorization_code":
		return nil, oauthErr(ErrCodeUnsupportedGrantType, "grant_type authorization_code is not supported yet")
	default:
		return nil, oauthErr(ErrCodeUnsupportedGrantType, "unknown grant_type %q", grant)
	}
	client, authenticated, err := t.authenticateClient(ctx, req)
	if err != nil {
		return nil, err
	}
	scope, oe := parseScope(req.Params["scope"])
	if oe != nil {
		return nil, oe
	}
	// A refresh narrows its Session's own grant instead (see Sessions.Refresh).
	if bad := client.AllowsScope(scope); bad != "" && grant != "refresh_token" {
		return nil, oauthErr(ErrCodeInvalidScope, "scope %q is not allowed for client %s", bad, client.ID)
	}
	switch grant {
	case "client_credentials":
		if !client.Allows(grant) {
			return nil, oauthErr(ErrCodeUnauthorizedClient, "client %s may not use the client_credentials grant", client.ID)
		}
		if !authenticated {
			return nil, t.clientErr(req, "the client_credentials grant needs the client's secret")
		}
		aud, err := audience(client, grant, req.Params["audience"])
		if err != nil {
			return nil, err
		}
		return t.Sessions.Issue(ctx, Grant{Type: grant, Client: client, Audience: aud, Scope: scope})
	case "password":
		return t.password(ctx, req, client, authenticated, scope)
	default:
		if req.Params["refresh_token"] == "" {
			return nil, oauthErr(ErrCodeInvalidRequest, "refresh_token is required")
		}
		return t.Sessions.Refresh(ctx, client, authenticated, req.Params["refresh_token"], scope, t.Dir.User, func() error {
			return t.clientErr(req, "refreshing these tokens needs the client's secret")
		})
	}
}

func (t *TokenEndpoint) password(ctx context.Context, req *TokenRequest, client *ClientConfig, authenticated bool, scope []string) (*TokenResponse, error) {
	if !client.Allows("password") {
		return nil, oauthErr(ErrCodeUnauthorizedClient, "client %s may not use the password grant", client.ID)
	}
	cfg := client.Grant("password")
	if cfg.SecretRequired && !authenticated {
		return nil, t.clientErr(req, "client "+client.ID+" must authenticate with its secret")
	}
	username, password := req.Params["username"], req.Params["password"]
	if username == "" || password == "" {
		return nil, oauthErr(ErrCodeInvalidRequest, "username and password are required")
	}
	aud, err := audience(client, "password", req.Params["audience"])
	if err != nil {
		return nil, err
	}
	if cfg.RedirectURI != "" {
		ok, err := t.Codes.Redeem(ctx, client.ID, "password", req.Params["code"])
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, oauthErr(ErrCodeInvalidGrant, "this client's password grant needs the one-time code from /auth/authorize")
		}
	}
	// The address is checked first, so that an address that waits costs no look-up.
	addr := "addr:" + req.RemoteAddr
	if wait, ok := t.Limiter.Check(addr); !ok {
		return nil, tooManySignIns(wait)
	}
	login, err := t.Dir.ResolveLogin(ctx, username)
	if err != nil {
		return nil, err
	}
	// Checking and counting are one step: the attempt counts as a failure from here until
	// the password is found right, so a burst of parallel guesses gets the free allowance
	// and no more.
	att, wait, ok := t.Limiter.Begin(login.Key, addr)
	if !ok {
		return nil, tooManySignIns(wait)
	}
	defer att.Cancel()
	user := t.Dir.CheckPassword(login, password)
	if user == nil {
		att.Fail()
		return nil, oauthErr(ErrCodeInvalidGrant, "wrong username or password")
	}
	att.Succeed(login.Key)
	return t.Sessions.Issue(ctx, Grant{Type: "password", Client: client, User: user, Audience: aud, Scope: scope})
}

// tooManySignIns is the answer while the user or the address waits: the same for every
// user name, known or not.
func tooManySignIns(wait time.Duration) *OAuthError {
	secs := (&LimitedError{Wait: wait}).Seconds()
	return &OAuthError{Code: ErrCodeInvalidRequest, Status: http.StatusTooManyRequests, RetryAfter: secs,
		Description: fmt.Sprintf("too many failed sign-ins; try again in %d seconds", secs)}
}

// authenticateClient identifies the client: HTTP Basic or client_id/client_secret in
// the body, never both (conformance T4). authenticated is false for a client that only named
// itself; the grant decides whether that is enough.
func (t *TokenEndpoint) authenticateClient(ctx context.Context, req *TokenRequest) (*ClientConfig, bool, error) {
	id, secret := req.Params["client_id"], req.Params["client_secret"]
	if req.Basic {
		if secret != "" {
			return nil, false, oauthErr(ErrCodeInvalidRequest, "client credentials were sent both in the Authorization header and in the body")
		}
		if id != "" && id != req.BasicID {
			return nil, false, oauthErr(ErrCodeInvalidRequest, "client_id differs from the client of the Authorization header")
		}
		id, secret = req.BasicID, req.BasicPass
	}
	if id == "" {
		return nil, false, t.clientErr(req, "client authentication is required: HTTP Basic or client_id and client_secret")
	}
	var doc map[string]any
	var err error
	hasSecret := true
	if secret != "" || req.Basic {
		doc, err = t.Clients.Verify(ctx, id, secret, req.RemoteAddr)
		if err == ErrBadCredentials {
			return nil, false, t.clientErr(req, "invalid client credentials")
		}
		var le *LimitedError
		if errors.As(err, &le) {
			// As for sign-ins (tooManySignIns), and whichever way the client authenticated:
			// no challenge, since retrying at once is what it must not do.
			secs := le.Seconds()
			return nil, false, &OAuthError{Code: ErrCodeInvalidRequest, Status: http.StatusTooManyRequests, RetryAfter: secs,
				Description: fmt.Sprintf("too many failed client authentications; try again in %d seconds", secs)}
		}
	} else {
		doc, err = t.Dir.read(ctx, "Client", id)
		if err == nil && doc == nil {
			return nil, false, t.clientErr(req, "invalid client credentials")
		}
		s, _ := doc["secret"].(string)
		hasSecret = s != ""
		delete(doc, "secret")
	}
	if err != nil {
		return nil, false, err
	}
	cfg, err := ParseClientConfig(doc)
	if err != nil {
		// A client stored before its settings were validated, or edited in the database.
		return nil, false, oauthErr(ErrCodeInvalidClient, "the client's settings are invalid: %v", err)
	}
	cfg.HasSecret = hasSecret
	return cfg, secret != "" || req.Basic, nil
}

func (t *TokenEndpoint) clientErr(req *TokenRequest, msg string) *OAuthError {
	return &OAuthError{Code: ErrCodeInvalidClient, Description: msg, Challenge: req.Basic}
}

// audience checks a requested audience against the client's allowed ones.
func audience(client *ClientConfig, grant, requested string) (string, error) {
	allowed := client.Grant(grant).Audience
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

// needsSecretToRefresh reports whether refreshing tokens of grant needs the client's
// secret: a public app that signs users in with client_id alone refreshes the same way;
// everything else refreshes with the credentials it was issued with.
func (c *ClientConfig) needsSecretToRefresh(grant string) bool {
	return c.HasSecret && (grant != "password" || c.Grant("password").SecretRequired)
}

// ErrorFor maps a resources.Error met on the way (a store failure) to what the token
// endpoint may say: the server's own failures stay internal.
func ErrorFor(err error) error {
	if _, ok := err.(*OAuthError); ok {
		return err
	}
	if resources.ErrorCode(err) == resources.CodeUnprocessable {
		return oauthErr(ErrCodeInvalidRequest, "%v", err)
	}
	return err
}
