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
	"slices"
	"strings"
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

// GrantType is the request's grant_type, "" when it has none.
func (r *TokenRequest) GrantType() string { return r.Params["grant_type"] }

// clientErr is an invalid_client answer; a client that tried HTTP Basic is challenged
// (RFC 6749 §5.2).
func (r *TokenRequest) clientErr(msg string) *OAuthError {
	return &OAuthError{Code: ErrCodeInvalidClient, Description: msg, Challenge: r.Basic}
}

// TokenEndpoint answers POST /auth/token: it finds the grant's handler, authenticates
// the client, and hands the request on.
type TokenEndpoint struct {
	Clients *ClientVerifier
	Dir     *Directory
	// Grants are asked in order whether a request is theirs; the first that says so
	// answers it.
	Grants []GrantHandler
}

// Token runs a token request; an *OAuthError is the client's mistake, anything else
// the server's.
func (t *TokenEndpoint) Token(ctx context.Context, req *TokenRequest) (*TokenResponse, error) {
	grant := req.GrantType()
	if grant == "" {
		return nil, oauthErr(ErrCodeInvalidRequest, "grant_type is required")
	}
	// Before the client is authenticated: an unsupported grant costs no secret check.
	i := slices.IndexFunc(t.Grants, func(h GrantHandler) bool { return h.Handles(req) })
	if i < 0 {
		// A grant a Client can be set up for, but that no handler serves yet.
		if slices.Contains(settingsGrants, grant) {
			return nil, oauthErr(ErrCodeUnsupportedGrantType, "grant_type %s is not supported yet", grant)
		}
		return nil, oauthErr(ErrCodeUnsupportedGrantType, "unknown grant_type %q", grant)
	}
	client, authenticated, err := t.AuthenticateClient(ctx, req)
	if err != nil {
		return nil, err
	}
	scope, oe := parseScope(req.Params["scope"])
	if oe != nil {
		return nil, oe
	}
	return t.Grants[i].Token(ctx, &GrantRequest{TokenRequest: req, Client: client, Authenticated: authenticated, Scope: scope})
}

// AuthenticateClient identifies the client, for the token endpoint and for introspection
// and revocation: HTTP Basic or client_id/client_secret in the body, never both
// (conformance T4). authenticated is false for a client that only named
// itself; the grant decides whether that is enough.
func (t *TokenEndpoint) AuthenticateClient(ctx context.Context, req *TokenRequest) (*ClientConfig, bool, error) {
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
		return nil, false, req.clientErr("client authentication is required: HTTP Basic or client_id and client_secret")
	}
	var doc map[string]any
	var err error
	hasSecret := true
	if secret != "" || req.Basic {
		doc, err = t.Clients.Verify(ctx, id, secret, req.RemoteAddr)
		if err == ErrBadCredentials {
			return nil, false, req.clientErr("invalid client credentials")
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
			return nil, false, req.clientErr("invalid client credentials")
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
