package server

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// challenge is the WWW-Authenticate value of a 401, carried as the cause of the error.
type challenge string

func (c challenge) Error() string { return string(c) }

// invalidToken is the answer for every bad, expired or revoked bearer token (conformance B2).
func invalidToken() error {
	return &resources.Error{Code: codeUnauthorized, Message: "the bearer token is invalid, expired or revoked",
		Err: challenge(`Bearer realm="fhirbox", error="invalid_token"`)}
}

// selfAuthenticating reports the endpoints that read the Authorization header
// themselves: the token, introspection and revocation endpoints (client credentials,
// RFC 6749, RFC 7662, RFC 7009) and DELETE /Session,
// which answers 200 even for a token that is already invalid (RFC 7009, conformance R2).
func selfAuthenticating(method, path string) bool {
	switch path {
	case "/auth/token", "/auth/authorize", auth.IntrospectionPath, auth.RevocationPath:
		return true
	case "/Session":
		return method == http.MethodDelete
	}
	return false
}

// identify reads the Authorization header. A header that is present but wrong is a 401:
// the caller meant to authenticate and failed. No header is the anonymous caller, whom
// policies may still allow.
func (s *Server) identify(c echo.Context) (*auth.Identity, error) {
	r := c.Request()
	if selfAuthenticating(r.Method, r.URL.Path) {
		return &auth.Identity{}, nil
	}
	h := r.Header.Get(echo.HeaderAuthorization)
	if r.URL.RawQuery != "" && c.QueryParams().Has("access_token") {
		// Tokens in URLs end up in logs and browser histories (conformance B6); with a header
		// too the request is ambiguous (conformance B4).
		return nil, resources.Errorf(resources.CodeInvalid, "send the access token in the Authorization header, not in the query (access_token)")
	}
	if h == "" {
		return &auth.Identity{}, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	if strings.EqualFold(scheme, "bearer") {
		token := strings.TrimSpace(cred)
		if token == "" || strings.ContainsAny(token, " \t,") {
			return nil, resources.Errorf(resources.CodeInvalid, "malformed Bearer authorization header")
		}
		id, err := s.oauth.Sessions.Authenticate(r.Context(), token)
		if err == auth.ErrInvalidBearer {
			return nil, invalidToken()
		}
		if err != nil {
			return nil, err
		}
		return id, nil
	}
	if !strings.EqualFold(scheme, "basic") {
		return nil, resources.Errorf(codeUnauthorized, "unsupported authorization scheme %q: use Bearer or Basic", scheme)
	}
	clientID, secret, ok := auth.ParseBasic(strings.TrimSpace(cred))
	if !ok {
		return nil, resources.Errorf(codeUnauthorized, "malformed Basic credentials")
	}
	client, err := s.clients.Verify(r.Context(), clientID, secret, remoteIP(r))
	if err == auth.ErrBadCredentials {
		return nil, resources.Errorf(codeUnauthorized, "invalid client credentials")
	}
	var le *auth.LimitedError
	if errors.As(err, &le) {
		// The same answer whichever key waits, and for the right secret too: it was not
		// checked.
		secs := le.Seconds()
		return nil, resources.WithRetryAfter(codeThrottled, time.Duration(secs)*time.Second, nil,
			"too many failed client authentications for this client or from this address; try again in %d seconds", secs)
	}
	if err != nil {
		return nil, err
	}
	admin := clientID == s.cfg.AdminClientID
	// HTTP Basic is a grant of its own: a client uses it only when its grant_types say so
	// (the secret was checked first, so this answer reveals nothing to a guesser).
	if !admin {
		cfg, err := auth.ParseClientConfig(client)
		if err != nil {
			// A client stored before its settings were validated, or edited in the database.
			return nil, resources.Errorf(codeUnauthorized, "client %q may not use HTTP Basic authentication: its settings are invalid", clientID)
		}
		if !cfg.Allows("basic") {
			return nil, resources.Errorf(codeUnauthorized, "client %q may not use HTTP Basic authentication: its grant_types do not include basic", clientID)
		}
	}
	return &auth.Identity{ClientID: clientID, Client: client}, nil
}
