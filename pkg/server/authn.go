package server

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// identify reads the Authorization header. A header that is present but wrong is a 401:
// the caller meant to authenticate and failed. No header is the anonymous caller, whom
// policies may still allow.
func (s *Server) identify(c echo.Context) (*auth.Identity, error) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	if h == "" {
		return &auth.Identity{}, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "basic") {
		return nil, resources.Errorf(resources.CodeUnauthorized, "unsupported authorization scheme %q", scheme)
	}
	clientID, secret, ok := parseBasic(strings.TrimSpace(cred))
	if !ok {
		return nil, resources.Errorf(resources.CodeUnauthorized, "malformed Basic credentials")
	}
	client, err := s.clients.Verify(c.Request().Context(), clientID, secret)
	if err == auth.ErrBadCredentials {
		return nil, resources.Errorf(resources.CodeUnauthorized, "invalid client credentials")
	}
	if err != nil {
		return nil, err
	}
	admin := clientID == s.cfg.AdminClientID
	// HTTP Basic is a grant of its own: a client uses it only when its grant_types say so
	// (the secret was checked first, so this answer reveals nothing to a guesser).
	if !admin && !hasGrant(client, "basic") {
		return nil, resources.Errorf(resources.CodeUnauthorized, "client %q may not use HTTP Basic authentication: its grant_types do not include basic", clientID)
	}
	return &auth.Identity{ClientID: clientID, Admin: admin, Client: client}, nil
}

func hasGrant(client map[string]any, grant string) bool {
	list, _ := client["grant_types"].([]any)
	return slices.ContainsFunc(list, func(v any) bool { return v == grant })
}

// parseBasic decodes "base64(id:secret)". Per RFC 6749 §2.3.1 id and secret are
// form-encoded before base64; clients that skip that step send them raw, so a value
// that does not URL-decode cleanly is taken as it is (CONFORMANCE C3).
func parseBasic(cred string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if d, err := url.QueryUnescape(id); err == nil {
		id = d
	}
	if d, err := url.QueryUnescape(secret); err == nil {
		secret = d
	}
	return id, secret, true
}
