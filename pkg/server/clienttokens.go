package server

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// This file serves POST /auth/introspect (RFC 7662) and POST /auth/revoke (RFC 7009);
// pkg/auth's ClientTokens decides. Both authenticate the calling client themselves,
// like the token endpoint (selfAuthenticating), and answer RFC 6749 errors.

// readOAuthForm reads the body of a POST to an /auth endpoint and parses it with parse
// (auth.ParseTokenRequest or auth.ParseClientRequest).
func (s *Server) readOAuthForm(c echo.Context, parse func(contentType string, body []byte, query url.Values, authorization string) (*auth.TokenRequest, *auth.OAuthError)) (*auth.TokenRequest, error) {
	r := c.Request()
	body, err := readLimited(r, s.cfg.MaxBodyBytes)
	if err != nil {
		return nil, &auth.OAuthError{Code: auth.ErrCodeInvalidRequest, Description: resources.ErrorMessage(err), Status: statusOf(resources.ErrorCode(err))}
	}
	tr, oe := parse(r.Header.Get(echo.HeaderContentType), body, c.QueryParams(), r.Header.Get(echo.HeaderAuthorization))
	if oe != nil {
		return nil, oe
	}
	tr.RemoteAddr = remoteIP(r)
	return tr, nil
}

// handleIntrospect answers POST /auth/introspect: always 200 with active true or false
// once the caller has authenticated (conformance I1–I5).
func (s *Server) handleIntrospect(c echo.Context) error {
	tr, err := s.readOAuthForm(c, auth.ParseClientRequest)
	if err != nil {
		return s.oauthError(c, err)
	}
	out, err := s.oauth.Tokens.Introspect(c.Request().Context(), tr)
	if err != nil {
		return s.oauthError(c, auth.ErrorFor(err))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// handleRevoke answers POST /auth/revoke: 200 with an empty body whether or not the
// token was found, or was the caller's to revoke (conformance R2, R5).
func (s *Server) handleRevoke(c echo.Context) error {
	tr, err := s.readOAuthForm(c, auth.ParseClientRequest)
	if err != nil {
		return s.oauthError(c, err)
	}
	if err := s.oauth.Tokens.Revoke(c.Request().Context(), tr); err != nil {
		return s.oauthError(c, auth.ErrorFor(err))
	}
	noStore(c)
	return c.NoContent(http.StatusOK)
}

// postOnly answers anything but POST on an /auth endpoint that takes POST only
// (conformance T1, R9).
func (s *Server) postOnly(endpoint string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderAllow, http.MethodPost)
		return s.oauthError(c, &auth.OAuthError{Code: auth.ErrCodeInvalidRequest, Description: "the " + endpoint + " endpoint takes POST only", Status: http.StatusMethodNotAllowed})
	}
}
