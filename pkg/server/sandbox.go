package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/ui"
	"github.com/fhirbox/fhirbox/resources"
)

// The Auth Sandbox (/ui/sandbox): a page on which a signed-in person whom the policies
// allow runs each OAuth flow from the browser against the real endpoints. Its routes are
// reached with the browser's cookie, not with credentials, so to the policies the
// request itself is anonymous (the shipped policy fhirbox-public-sandbox lets it through);
// every decision that matters is then taken here, as the signed-in User: a policy probe
// of GET /ui/sandbox for the page, and of GET /Client or POST /Client for the JSON API,
// exactly as that User calling those endpoints would be decided.

// Paths of the sandbox.
const (
	sandboxPath        = "/ui/sandbox"
	sandboxCallback    = sandboxPath + "/callback"
	sandboxClientsPath = sandboxPath + "/api/clients"
)

// csrfHeader carries the CSRF token on the sandbox's JSON writes. A form post from
// another site cannot set it, and the JSON content type already makes a cross-site
// fetch need a preflight that fhirbox does not grant.
const csrfHeader = "X-CSRF-Token"

// sandboxClientLimit is the most Clients the sandbox lists; more are left out, and the
// page says so.
const sandboxClientLimit = 200

// handleSandbox answers GET /ui/sandbox and its callback, /ui/sandbox/callback, where
// the authorization code flows come back: the same page, whose script takes the code
// from the URL. Not signed in: the login page, and back here after it.
func (s *Server) handleSandbox(c echo.Context) error {
	pageHeaders(c)
	b, err := s.browser(c)
	if err != nil {
		return err
	}
	if b == nil {
		return c.Redirect(http.StatusFound, s.pagePath("/auth/login")+"?"+url.Values{nextParam: {sandboxPath}}.Encode())
	}
	id := browserCaller(b)
	if !s.probe(c, id, http.MethodGet, sandboxPath, "", "", nil) {
		return s.page(c, http.StatusForbidden, "sandbox-denied", ui.Error{Page: s.pageBase("Auth Sandbox"),
			Message: "No access policy allows " + id.String() + " to GET " + sandboxPath + "."})
	}
	return s.page(c, http.StatusOK, "sandbox", ui.Sandbox{Page: s.pageBase("Auth Sandbox"), User: userName(b.User),
		CSRF: auth.CSRFToken(s.cookie(c, sessionCookie)), Origin: s.cfg.BaseURL, RedirectURI: s.sandboxRedirectURI()})
}

// sandboxRedirectURI is the redirect URI the sandbox registers on the Clients it creates
// and sends in its authorization requests.
func (s *Server) sandboxRedirectURI() string { return s.cfg.BaseURL + sandboxCallback }

// browserCaller is a signed-in browser as the caller that policies decide: its User,
// with no client and no bearer Session.
func browserCaller(b *auth.Browser) *auth.Identity {
	return &auth.Identity{UserID: b.UserID, User: b.User}
}

// probe decides, without making it, the request method path?query (of the resource
// type typ, with body) by id: the sandbox acts for its User only where the policies
// would let that User act directly. The request's own headers, address and scheme go
// with it.
func (s *Server) probe(c echo.Context, id *auth.Identity, method, path, query, typ string, body map[string]any) bool {
	info := s.requestInfo(c, id)
	info.Method, info.Path, info.RawQuery, info.Query = method, path, query, nil
	info.ResourceType, info.ResourceID, info.Body = typ, "", body
	return s.policies.Decide(c.Request().Context(), info.Build(), false).Allowed
}

// sandboxCaller is the signed-in User behind a call of the sandbox's JSON API; not
// signed in is a 403 rather than a 401, whose Basic challenge would make the browser
// ask for a password.
func (s *Server) sandboxCaller(c echo.Context) (*auth.Identity, error) {
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	b, err := s.browser(c)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, resources.Errorf(codeForbidden, "the Auth Sandbox's API is for a signed-in browser: sign in at /auth/login")
	}
	return browserCaller(b), nil
}

// describeClient is the sandbox's view of a stored Client, never its secret.
func (s *Server) describeClient(r *resources.Resource) (auth.ClientSummary, error) {
	var doc map[string]any
	if err := json.Unmarshal(r.Content, &doc); err != nil {
		return auth.ClientSummary{}, resources.Internal(err)
	}
	return auth.Summarize(r.ID, doc, s.sandboxRedirectURI()), nil
}

// handleSandboxClients answers GET /ui/sandbox/api/clients: the Clients the signed-in
// User may list, as GET /Client would give them to that User.
func (s *Server) handleSandboxClients(c echo.Context) error {
	id, err := s.sandboxCaller(c)
	if err != nil {
		return err
	}
	params := url.Values{"_count": {strconv.Itoa(sandboxClientLimit)}, "_sort": {"_id"}}
	if !s.probe(c, id, http.MethodGet, "/Client", params.Encode(), "Client", nil) {
		return resources.Errorf(codeForbidden, "no access policy allows %s to GET /Client", id.String())
	}
	res, _, err := s.svc.Search(auth.WithIdentity(c.Request().Context(), id), "Client", params, false)
	if err != nil {
		return err
	}
	list := make([]auth.ClientSummary, 0, len(res.Entries))
	for _, r := range res.Entries {
		sc, err := s.describeClient(r)
		if err != nil {
			return err
		}
		list = append(list, sc)
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": list, "total": res.Total, "limit": sandboxClientLimit})
}

// handleSandboxCreateClient answers POST /ui/sandbox/api/clients: creates the Client
// the body describes, when the browser's CSRF token comes with it and the policies let
// the signed-in User POST /Client with that Client. The answer names it without its
// secret.
func (s *Server) handleSandboxCreateClient(c echo.Context) error {
	id, err := s.sandboxCaller(c)
	if err != nil {
		return err
	}
	r := c.Request()
	if !auth.CheckCSRF(s.cookie(c, sessionCookie), r.Header.Get(csrfHeader)) {
		return resources.Errorf(codeForbidden, "the %s header must carry the sandbox page's CSRF token: reload the page", csrfHeader)
	}
	if ct, _, _ := strings.Cut(r.Header.Get(echo.HeaderContentType), ";"); strings.TrimSpace(ct) != echo.MIMEApplicationJSON {
		return resources.Errorf(codeUnsupportedMedia, "send the client as application/json")
	}
	body, err := readLimited(r, maxFormBytes)
	if err != nil {
		return err
	}
	var spec auth.ClientSpec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil || dec.More() {
		return resources.Errorf(resources.CodeInvalid, "the body must be one JSON object with id, name, secret, grant_types, first_party and jwt")
	}
	doc := spec.Document(s.sandboxRedirectURI())
	if !s.probe(c, id, http.MethodPost, "/Client", "", "Client", doc) {
		return resources.Errorf(codeForbidden, "no access policy allows %s to POST /Client", id.String())
	}
	res, _, err := s.svc.Create(auth.WithIdentity(r.Context(), id), "Client", doc, resources.CreateOptions{KeepID: true})
	if err != nil {
		return err
	}
	sc, err := s.describeClient(res)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, sc)
}
