package server

import (
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// OAuth is what the /auth endpoints need from the OAuth module.
type OAuth struct {
	Token    *auth.TokenEndpoint
	Sessions *auth.Sessions
	Codes    *auth.Codes
	Keys     *auth.Keys
	Dir      *auth.Directory
	// Tokens answers introspection and revocation.
	Tokens *auth.ClientTokens
	// Limiter is the password grant's guessing limiter, which the login form shares.
	Limiter *auth.Limiter
}

// noStore marks token responses and errors as not cacheable (conformance C1, T3).
func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// oauthError writes an RFC 6749 error; the server's own failures are logged and shown
// as server_error.
func (s *Server) oauthError(c echo.Context, err error) error {
	noStore(c)
	if te := transientOAuth(err); te != nil {
		err = te
	}
	var oe *auth.OAuthError
	if !errors.As(err, &oe) {
		s.log.ErrorContext(c.Request().Context(), "token endpoint failed", "err", err)
		return c.JSON(http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "internal error"})
	}
	if oe.Challenge {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="fhirbox"`)
	}
	if oe.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(oe.RetryAfter))
	}
	return c.JSON(oe.HTTPStatus(), oe.Body())
}

func (s *Server) handleToken(c echo.Context) error {
	tr, err := s.readOAuthForm(c, auth.ParseTokenRequest)
	if err != nil {
		return s.oauthError(c, err)
	}
	resp, err := s.oauth.Token.Token(c.Request().Context(), tr)
	if err != nil {
		return s.oauthError(c, auth.ErrorFor(err))
	}
	noStore(c)
	return c.JSON(http.StatusOK, resp)
}

// handleAuthorize answers GET /auth/authorize. The authorization code flow goes to
// handleAuthorizeCode (signin.go); a request with grant_type=password and no
// response_type is the redirect-protected password grant: a 302 to the client's
// registered redirect_uri with a one-time code in the fragment. An unknown client or one
// without a registered redirect_uri gets an error, never a redirect (conformance T12).
func (s *Server) handleAuthorize(c echo.Context) error {
	if auth.IsCodeFlow(c.QueryParams()) {
		return s.handleAuthorizeCode(c)
	}
	// Neither a redirect carrying a code nor an error about one is to be cached.
	noStore(c)
	q := c.QueryParams()
	fail := func(status int, msg string) error {
		return c.JSON(status, map[string]string{"error": "invalid_request", "error_description": msg})
	}
	doc, err := s.oauth.Dir.Client(c.Request().Context(), q.Get("client_id"))
	if err != nil {
		return err
	}
	if doc == nil {
		return fail(http.StatusBadRequest, "unknown client_id")
	}
	client, err := auth.ParseClientConfig(doc)
	if err != nil {
		return fail(http.StatusBadRequest, "the client's settings are invalid")
	}
	to, err := s.oauth.Codes.AuthorizePassword(c.Request().Context(), client, q, remoteIP(c.Request()))
	var ae *auth.AuthorizeError
	if errors.As(err, &ae) {
		status := http.StatusBadRequest
		if ae.Status != 0 {
			status = ae.Status
		}
		if ae.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
		return c.JSON(status, map[string]string{"error": ae.Code, "error_description": ae.Description})
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusFound, to)
}

// handleCloseSession answers DELETE /Session: the session of the bearer token it is
// sent with ends, at once and on every instance (conformance R7). A token that is already
// invalid still gets 200 (conformance R2), so closing twice is harmless.
func (s *Server) handleCloseSession(c echo.Context) error {
	r := c.Request()
	scheme, token, _ := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		return resources.Errorf(codeUnauthorized, "DELETE /Session closes the session of the bearer token it is sent with")
	}
	if err := s.oauth.Sessions.CloseByToken(r.Context(), token); err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, map[string]any{})
}

// handleUserinfo answers GET /auth/userinfo with the token's User, plus sub, the
// user's id as the ID token names it: OpenID Connect Core §5.3.2 requires it in every
// UserInfo answer (conformance L9).
func (s *Server) handleUserinfo(c echo.Context) error {
	id := auth.FromContext(c.Request().Context())
	if id.SessionID == "" {
		return resources.Errorf(codeUnauthorized, "userinfo needs a bearer token")
	}
	if id.User == nil {
		return resources.Errorf(resources.CodeNotFound, "this token acts for client %q, not for a user", id.ClientID)
	}
	noStore(c)
	// A copy: the User is the session cache's.
	answer := maps.Clone(id.User)
	answer["sub"] = id.UserID
	return c.JSON(http.StatusOK, answer)
}

func (s *Server) handleJWKS(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.oauth.Keys.JWKS())
}

// handleDiscovery serves both discovery documents (conformance C6): OpenID Connect's and RFC
// 8414's, with the authorization code flow's S256 PKCE and RFC 9207 iss (conformance A1). No
// token_endpoint_auth_signing_alg_values_supported is given: RFC 8414 §2 ties it to the
// private_key_jwt and client_secret_jwt methods, which fhirbox does not take.
func (s *Server) handleDiscovery(c echo.Context) error {
	b := s.cfg.BaseURL
	// The grants and what follows from them (response types, PKCE methods) as the SMART
	// configuration derives them, so that the three documents never disagree.
	grants := s.oauth.Token.GrantTypes()
	smart := auth.SMARTConfiguration(b, grants)
	return c.JSON(http.StatusOK, map[string]any{
		"issuer":                                b,
		"token_endpoint":                        b + "/auth/token",
		"authorization_endpoint":                b + "/auth/authorize",
		"userinfo_endpoint":                     b + "/auth/userinfo",
		"jwks_uri":                              b + "/.well-known/jwks.json",
		"grant_types_supported":                 grants,
		"response_types_supported":              smart["response_types_supported"],
		"code_challenge_methods_supported":      smart["code_challenge_methods_supported"],
		"response_modes_supported":              []string{"query"},
		"token_endpoint_auth_methods_supported": auth.TokenAuthMethods,
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		// RFC 9207 (conformance A1).
		"authorization_response_iss_parameter_supported": true,
		// RFC 7662 and RFC 7009 (clienttokens.go, conformance C6).
		"introspection_endpoint":                        b + auth.IntrospectionPath,
		"introspection_endpoint_auth_methods_supported": auth.IntrospectionAuthMethods,
		"revocation_endpoint":                           b + auth.RevocationPath,
		"revocation_endpoint_auth_methods_supported":    auth.RevocationAuthMethods,
	})
}
