package server

import (
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// publicPaths answer without credentials. The AccessPolicy engine will replace this
// list with the public policies it ships.
var publicPaths = map[string]bool{
	"/health":        true,
	"/metadata":      true,
	"/fhir/metadata": true,
}

// authenticate establishes the caller's identity. Until the policy engine exists, only
// the root client (HTTP Basic) may call anything but the public paths.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id, err := s.identify(c)
		if err != nil {
			return err
		}
		if !publicPaths[req.URL.Path] && !id.Admin {
			if id.Anonymous() {
				return resources.Errorf(resources.CodeUnauthorized, "authentication required: use HTTP Basic with the admin client's id and secret")
			}
			return resources.Errorf(resources.CodeForbidden, "client %q is not allowed to do this", id.ClientID)
		}
		c.SetRequest(req.WithContext(auth.WithIdentity(req.Context(), id)))
		return next(c)
	}
}

// identify reads the Authorization header. A header that is present but wrong is a 401:
// the caller meant to authenticate and failed.
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
	// Only the root client authenticates with Basic until policies decide who else may.
	if clientID != s.cfg.AdminClientID {
		return nil, resources.Errorf(resources.CodeUnauthorized, "invalid client credentials")
	}
	client, err := s.clients.Verify(c.Request().Context(), clientID, secret)
	if err == auth.ErrBadCredentials {
		return nil, resources.Errorf(resources.CodeUnauthorized, "invalid client credentials")
	}
	if err != nil {
		return nil, err
	}
	return &auth.Identity{ClientID: clientID, Admin: true, Client: client}, nil
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
