package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/ui"
	"github.com/fhirbox/fhirbox/resources"
)

// The browser side of the authorization code flow: GET /auth/authorize for
// response_type=code, the login form (/auth/login), the consent form (/auth/consent) and
// sign-out (/auth/logout). The checks are pkg/auth's, the pages pkg/ui's.

// maxFormBytes bounds the body of the sign-in forms: a name, a password, a token and
// the authorization request.
const maxFormBytes = 64 << 10

// handleAuthorizeCode answers GET /auth/authorize?response_type=code…: the login page
// when the browser is not signed in, then the consent page (none for a first-party
// client), then the patient picker of a standalone launch (launch.go), then a 302 to the
// client with a code (conformance A1–A4, A9, L1).
func (s *Server) handleAuthorizeCode(c echo.Context) error {
	pageHeaders(c)
	q := c.QueryParams()
	req, ae, err := s.authorizeRequest(c, q)
	if err != nil || req == nil {
		return s.pageOrErr(c, ae, err)
	}
	if ae != nil {
		return c.Redirect(http.StatusFound, req.RedirectError(ae, s.cfg.BaseURL))
	}
	b, err := s.browser(c)
	if err != nil {
		return err
	}
	if b == nil {
		if req.Prompt == "none" {
			return c.Redirect(http.StatusFound, req.RedirectError(&auth.AuthorizeError{Code: "login_required", Description: "the user is not signed in"}, s.cfg.BaseURL))
		}
		return s.loginPage(c, http.StatusOK, clientName(req.Client), q.Encode(), "", "")
	}
	if !req.Client.FirstParty {
		if req.Prompt == "none" {
			return c.Redirect(http.StatusFound, req.RedirectError(&auth.AuthorizeError{Code: "consent_required", Description: "the user has not consented"}, s.cfg.BaseURL))
		}
		return s.page(c, http.StatusOK, "consent", ui.Consent{Page: s.pageBase("Allow access?"), Client: clientName(req.Client),
			User: userName(b.User), Scopes: req.Scope, CSRF: auth.CSRFToken(s.cookie(c, sessionCookie)), Request: q.Encode()})
	}
	return s.continueAuthorize(c, req, b, http.StatusFound, q.Encode())
}

// authorizeRequest finds the client of an authorization request and validates the
// request. A nil request means: show the error (ae), never redirect.
func (s *Server) authorizeRequest(c echo.Context, q url.Values) (*auth.AuthorizeRequest, *auth.AuthorizeError, error) {
	id := q.Get("client_id")
	if id == "" || len(q["client_id"]) > 1 {
		return nil, &auth.AuthorizeError{Code: auth.ErrCodeInvalidRequest, Description: "client_id is required, once"}, nil
	}
	client, err := s.oauth.Dir.ClientConfig(c.Request().Context(), id)
	if resources.ErrorCode(err) == resources.CodeUnprocessable {
		return nil, &auth.AuthorizeError{Code: auth.ErrCodeInvalidRequest, Description: "the client's settings are invalid"}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if client == nil {
		return nil, &auth.AuthorizeError{Code: auth.ErrCodeInvalidRequest, Description: "unknown client_id"}, nil
	}
	req, ae := auth.ParseAuthorizeRequest(client, q)
	if ae == nil && req.Launch != "" {
		// An EHR launch: its context is bound now, so that every page of the flow sees it
		// (launch.go).
		if ae, err = s.bindLaunch(c.Request().Context(), req); err != nil {
			return nil, nil, err
		}
	}
	return req, ae, nil
}

// pageOrErr shows an authorization error that must not be redirected, or passes a
// server failure on.
func (s *Server) pageOrErr(c echo.Context, ae *auth.AuthorizeError, err error) error {
	if err != nil {
		return err
	}
	return s.errorPage(c, http.StatusBadRequest, ae.Code+": "+ae.Description)
}

// issueCode sends the browser to the client with a new code, or with the error that
// stopped it (too many codes from this address).
func (s *Server) issueCode(c echo.Context, req *auth.AuthorizeRequest, b *auth.Browser, status int) error {
	to, err := s.oauth.Codes.IssueCode(c.Request().Context(), req, auth.SignedIn{UserID: b.UserID, AuthTime: b.AuthTime}, s.cfg.BaseURL, remoteIP(c.Request()))
	var ae *auth.AuthorizeError
	if errors.As(err, &ae) {
		return c.Redirect(status, req.RedirectError(ae, s.cfg.BaseURL))
	}
	if err != nil {
		return err
	}
	return c.Redirect(status, to)
}

// handleLoginPage answers GET /auth/login: the login form on its own (after which the
// browser lands on the signed-in page), or the signed-in page.
func (s *Server) handleLoginPage(c echo.Context) error {
	pageHeaders(c)
	b, err := s.browser(c)
	if err != nil {
		return err
	}
	if b != nil {
		return c.Redirect(http.StatusFound, s.pagePath(afterSignIn(nextOf(c))))
	}
	return s.loginPage(c, http.StatusOK, "", "", "", "")
}

// handleLogin answers POST /auth/login: checks the CSRF token of the login cookie and
// the password (under the password grant's guessing limits, with one answer for an
// unknown user and a wrong password), opens the browser's Session and resumes the
// authorization request with a 303 (conformance A6, A7, S6).
func (s *Server) handleLogin(c echo.Context) error {
	pageHeaders(c)
	form, err := s.readForm(c)
	if err != nil {
		return s.errorPage(c, http.StatusBadRequest, resources.ErrorMessage(err))
	}
	if !auth.CheckCSRF(s.cookie(c, loginCookie), form.Get("csrf")) {
		return s.csrfFailed(c)
	}
	c.Set(nextParam, form.Get(nextParam))
	request := form.Get("request")
	client := ""
	if request != "" {
		q, err := url.ParseQuery(request)
		if err != nil {
			return s.errorPage(c, http.StatusBadRequest, "the authorization request carried by the form is malformed")
		}
		req, ae, err := s.authorizeRequest(c, q)
		if err != nil || req == nil {
			return s.pageOrErr(c, ae, err)
		}
		client = clientName(req.Client)
		// Re-encoded, so that only parameters go back into the URL.
		request = q.Encode()
	}
	username := form.Get("username")
	user, err := auth.SignIn(c.Request().Context(), s.oauth.Dir, s.oauth.Limiter, username, form.Get("password"), remoteIP(c.Request()))
	var oe *auth.OAuthError
	if errors.As(err, &oe) {
		if oe.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(oe.RetryAfter))
			return s.loginPage(c, oe.HTTPStatus(), client, request, username, "Too many failed sign-ins. Try again in "+strconv.Itoa(oe.RetryAfter)+" seconds.")
		}
		return s.loginPage(c, http.StatusUnauthorized, client, request, username, "Wrong user name or password.")
	}
	if err != nil {
		return err
	}
	// A sign-in replaces the browser's previous one, whose cookie is then worthless.
	if old, err := s.browser(c); err == nil && old != nil {
		if err := s.oauth.Sessions.Close(c.Request().Context(), old.SessionID); err != nil {
			return err
		}
	}
	value, err := s.oauth.Sessions.OpenBrowser(c.Request().Context(), user)
	if err != nil {
		return err
	}
	s.setCookie(c, sessionCookie, value, int(auth.BrowserSessionTTL.Seconds()))
	s.setCookie(c, loginCookie, "", -1)
	if request == "" {
		return c.Redirect(http.StatusSeeOther, s.pagePath(afterSignIn(nextOf(c))))
	}
	return c.Redirect(http.StatusSeeOther, s.pagePath("/auth/authorize")+"?"+request)
}

// handleConsent answers POST /auth/consent: Allow issues the code (or shows the patient
// picker of a standalone launch, whose form comes back here with the patient), Deny
// sends the client access_denied; either way a 303 (conformance A4, S6, L1).
func (s *Server) handleConsent(c echo.Context) error {
	form, b, csrf, err := s.postedBy(c)
	if form == nil {
		return err
	}
	if !csrf {
		return s.csrfFailed(c)
	}
	q, err := url.ParseQuery(form.Get("request"))
	if err != nil {
		return s.errorPage(c, http.StatusBadRequest, "the authorization request carried by the form is malformed")
	}
	req, ae, err := s.authorizeRequest(c, q)
	if err != nil || req == nil {
		return s.pageOrErr(c, ae, err)
	}
	if ae != nil {
		return c.Redirect(http.StatusSeeOther, req.RedirectError(ae, s.cfg.BaseURL))
	}
	switch form.Get("decision") {
	case "allow":
		if form.Has("patient") {
			// The patient picker's form (launch.go).
			return s.pickPatient(c, req, b, form.Get("patient"), q.Encode())
		}
		return s.continueAuthorize(c, req, b, http.StatusSeeOther, q.Encode())
	case "deny":
		return c.Redirect(http.StatusSeeOther, req.RedirectError(&auth.AuthorizeError{Code: "access_denied", Description: "the user denied the request"}, s.cfg.BaseURL))
	}
	return s.errorPage(c, http.StatusBadRequest, "decision must be allow or deny")
}

// handleSignedIn answers GET /auth/logout: who is signed in, with a sign-out button.
func (s *Server) handleSignedIn(c echo.Context) error {
	pageHeaders(c)
	b, err := s.browser(c)
	if err != nil {
		return err
	}
	if b == nil {
		return s.page(c, http.StatusOK, "signed-out", ui.SignedOut{Page: s.pageBase("Signed out")})
	}
	return s.page(c, http.StatusOK, "signed-in", ui.SignedIn{Page: s.pageBase("Signed in"), User: userName(b.User), CSRF: auth.CSRFToken(s.cookie(c, sessionCookie))})
}

// handleLogout answers POST /auth/logout: the browser's Session closes, on every
// instance, and its cookie is cleared (conformance A6).
func (s *Server) handleLogout(c echo.Context) error {
	form, b, csrf, err := s.postedBy(c)
	if form == nil {
		return err
	}
	if b != nil {
		if !csrf {
			return s.csrfFailed(c)
		}
		if err := s.oauth.Sessions.Close(c.Request().Context(), b.SessionID); err != nil {
			return err
		}
	}
	s.setCookie(c, sessionCookie, "", -1)
	return s.page(c, http.StatusOK, "signed-out", ui.SignedOut{Page: s.pageBase("Signed out")})
}

// postedBy reads a form posted to a page of signed-in browsers: the form, the browser
// (nil when it is not signed in) and whether the form carries that browser's CSRF token.
// A nil form means the answer is given already (a form that could not be read), or err
// is the server's failure.
func (s *Server) postedBy(c echo.Context) (form url.Values, b *auth.Browser, csrf bool, err error) {
	pageHeaders(c)
	if form, err = s.readForm(c); err != nil {
		return nil, nil, false, s.errorPage(c, http.StatusBadRequest, resources.ErrorMessage(err))
	}
	if b, err = s.browser(c); err != nil {
		return nil, nil, false, err
	}
	return form, b, b != nil && auth.CheckCSRF(s.cookie(c, sessionCookie), form.Get("csrf")), nil
}

// loginPage shows the login form, giving the browser a login cookie (whose CSRF token
// the form carries) when it has none.
func (s *Server) loginPage(c echo.Context, status int, client, request, username, msg string) error {
	v := s.cookie(c, loginCookie)
	if v == "" {
		v = auth.NewCookieValue()
		s.setCookie(c, loginCookie, v, 3600)
	}
	return s.page(c, status, "login", ui.Login{Page: s.pageBase("Sign in"), Client: client, CSRF: auth.CSRFToken(v),
		Request: request, Username: username, Error: msg, Next: nextOf(c)})
}

func (s *Server) csrfFailed(c echo.Context) error {
	return s.errorPage(c, http.StatusForbidden, "This form has expired or did not come from this site. Go back, reload the page and try again.")
}

func (s *Server) errorPage(c echo.Context, status int, msg string) error {
	return s.page(c, status, "error", ui.Error{Page: s.pageBase("Sign-in failed"), Message: msg})
}

func (s *Server) page(c echo.Context, status int, name string, data any) error {
	return ui.Render(c.Response(), status, name, data)
}

// pageBase is the frame of every page.
func (s *Server) pageBase(title string) ui.Page {
	return ui.Page{Base: s.basePath(), Title: title}
}

// basePath is the path of the base URL, "" at the root: the pages link within it.
func (s *Server) basePath() string {
	u, err := url.Parse(s.cfg.BaseURL)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

func (s *Server) pagePath(p string) string { return s.basePath() + p }

// readForm reads a sign-in form: url-encoded, each field once.
func (s *Server) readForm(c echo.Context) (url.Values, error) {
	r := c.Request()
	if mt, _, _ := strings.Cut(r.Header.Get(echo.HeaderContentType), ";"); strings.TrimSpace(mt) != echo.MIMEApplicationForm {
		return nil, resources.Errorf(resources.CodeInvalid, "the form must be sent as application/x-www-form-urlencoded")
	}
	body, err := readLimited(r, maxFormBytes)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, resources.Errorf(resources.CodeInvalid, "the form is malformed")
	}
	for k, vs := range form {
		if len(vs) > 1 {
			return nil, resources.Errorf(resources.CodeInvalid, "the form field %s is repeated", k)
		}
	}
	return form, nil
}

// The two cookies of the sign-in pages: the login cookie before sign-in (its CSRF
// token guards the login form), the session cookie after.
const (
	loginCookie   = "login"
	sessionCookie = "session"
)

// cookieName gives the cookie its __Host- prefix when the base URL is https: a browser
// then keeps it to this host, path / and secure connections (conformance A6).
func (s *Server) cookieName(kind string) string {
	if s.secureCookies() {
		return "__Host-fhirbox-" + kind
	}
	return "fhirbox-" + kind
}

func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.BaseURL, "https://") }

func (s *Server) cookie(c echo.Context, kind string) string {
	ck, err := c.Cookie(s.cookieName(kind))
	if err != nil {
		return ""
	}
	return ck.Value
}

// setCookie sets (or, with maxAge < 0, clears) a cookie: HttpOnly, SameSite=Lax, Path
// /, Secure behind https.
func (s *Server) setCookie(c echo.Context, kind, value string, maxAge int) {
	c.SetCookie(&http.Cookie{Name: s.cookieName(kind), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
}

// browser is the browser's sign-in, nil when it has none.
func (s *Server) browser(c echo.Context) (*auth.Browser, error) {
	return s.oauth.Sessions.Browser(c.Request().Context(), s.cookie(c, sessionCookie))
}

// pageHeaders are the headers of every sign-in page and answer (conformance A10): no
// framing, no scripts or styles from elsewhere, no Referer, no caching.
func pageHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(echo.HeaderCacheControl, "no-store")
}

func clientName(c *auth.ClientConfig) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// userName is how the pages name a user: the userName, else the email, else the id.
func userName(u map[string]any) string {
	for _, k := range []string{"userName", "email", "id"} {
		if v, _ := u[k].(string); v != "" {
			return v
		}
	}
	return ""
}
