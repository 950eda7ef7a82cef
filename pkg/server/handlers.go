package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/pkg/format"
	"github.com/fhirbox/fhirbox/resources"
)

func (s *Server) handleHealth(c echo.Context) error {
	if err := s.health(c.Request().Context()); err != nil {
		if resources.ErrorCode(err) != resources.CodeUnavailable { // an outage is logged by the store
			s.log.WarnContext(c.Request().Context(), "health check failed", "err", err)
		}
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleRead(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	res, err := s.svc.Read(c.Request().Context(), c.Param("type"), c.Param("id"))
	if err != nil {
		return err
	}
	if notModified(c.Request(), res) {
		return answerNotModified(c, res)
	}
	return s.writeResource(c, http.StatusOK, f, res)
}

func (s *Server) handleVRead(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	res, err := s.svc.VRead(c.Request().Context(), c.Param("type"), c.Param("id"), c.Param("vid"))
	if err != nil {
		return err
	}
	if notModified(c.Request(), res) {
		return answerNotModified(c, res)
	}
	return s.writeResource(c, http.StatusOK, f, res)
}

func (s *Server) handleCreate(c echo.Context) error {
	f, typ, doc, err := s.writeRequest(c)
	if err != nil {
		return err
	}
	res, created, err := s.svc.Create(c.Request().Context(), typ, doc, resources.CreateOptions{
		KeepID:      !isFHIRBase(c),
		IfNoneExist: c.Request().Header.Get("If-None-Exist"),
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Response().Header().Set(echo.HeaderLocation, s.versionURL(c, res))
	}
	return s.writeWritten(c, status, f, res)
}

func (s *Server) handleUpdate(c echo.Context) error {
	f, typ, doc, err := s.writeRequest(c)
	if err != nil {
		return err
	}
	res, created, err := s.svc.Update(c.Request().Context(), typ, c.Param("id"), doc, c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	return s.writeUpdated(c, f, res, created)
}

// writeRequest reads what a create or update needs: the answer's format, the route's
// type (which must exist, before the body is read) and the body.
func (s *Server) writeRequest(c echo.Context) (outFormat, string, map[string]any, error) {
	f, typ, err := s.typedRequest(c)
	if err != nil {
		return f, "", nil, err
	}
	doc, err := s.readBody(c)
	return f, typ, doc, err
}

// typedRequest is the answer's format and the route's type, which must exist.
func (s *Server) typedRequest(c echo.Context) (outFormat, string, error) {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return f, "", err
	}
	typ := c.Param("type")
	if _, err := s.svc.TypeDef(typ); err != nil {
		return f, "", err
	}
	return f, typ, nil
}

// writeUpdated answers an update, conditional update or patch: 201 when it created
// the resource, else 200, with the new version's Location.
func (s *Server) writeUpdated(c echo.Context, f outFormat, res *resources.Resource, created bool) error {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.Response().Header().Set(echo.HeaderLocation, s.versionURL(c, res))
	return s.writeWritten(c, status, f, res)
}

func (s *Server) handleDelete(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	res, err := s.svc.Delete(c.Request().Context(), c.Param("type"), c.Param("id"))
	if err != nil {
		return err
	}
	if res == nil {
		// Already deleted or never there: deleting again is harmless (conformance F7).
		return c.NoContent(http.StatusNoContent)
	}
	setVersionHeaders(c, res)
	oo := fhir.NewOutcome("information", "informational", fmt.Sprintf("deleted %s/%s", res.Type, res.ID))
	return s.writeValue(c, http.StatusOK, f, oo)
}

// writeWritten answers a create or update according to Prefer: return= (conformance F1).
func (s *Server) writeWritten(c echo.Context, status int, f outFormat, res *resources.Resource) error {
	switch preferReturn(c.Request()) {
	case "minimal":
		setVersionHeaders(c, res)
		return c.NoContent(status)
	case "OperationOutcome":
		setVersionHeaders(c, res)
		verb := "updated"
		if status == http.StatusCreated {
			verb = "created"
		}
		return s.writeValue(c, status, f, writtenOutcome(verb, res))
	}
	return s.writeResource(c, status, f, res)
}

// writtenOutcome is the answer of a write under Prefer: return=OperationOutcome.
func writtenOutcome(verb string, res *resources.Resource) *fhir.OperationOutcome {
	return fhir.NewOutcome("information", "informational",
		fmt.Sprintf("%s %s/%s version %d", verb, res.Type, res.ID, res.VersionID))
}

// preferReturn reads the return preference of the Prefer header.
func preferReturn(r *http.Request) string {
	for _, h := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(h, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(k, "return") {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

func (s *Server) handleSearch(c echo.Context) error {
	f, params, err := s.queryRequest(c)
	if err != nil {
		return err
	}
	typ := c.Param("type")
	ctx := c.Request().Context()
	res, q, err := s.svc.SearchPages(ctx, typ, params, resources.SearchOptions{
		Strict: s.strictHandling(c.Request()), Caller: resultSetCaller(ctx)})
	if err != nil {
		return err
	}
	return s.answerSearch(c, f, q, res)
}

// answerSearch adds what q's _include and _revinclude reach to res (each included
// resource decided by the policies as a read) and writes the searchset Bundle.
func (s *Server) answerSearch(c echo.Context, f outFormat, q *resources.Query, res *resources.SearchResult) error {
	if err := s.svc.Include(c.Request().Context(), q, res, s.readCheck(c)); err != nil {
		return err
	}
	b, err := s.searchBundle(c, q, res)
	if err != nil {
		return err
	}
	return s.writeValue(c, http.StatusOK, f, b)
}

// queryRequest negotiates the answer's format and reads the request's parameters
// (searchParams): the start of every search and history handler.
func (s *Server) queryRequest(c echo.Context) (outFormat, url.Values, error) {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return f, nil, err
	}
	params, err := s.searchParams(c)
	return f, params, err
}

// searchParams merges the query string with a form body (POST _search, conformance F9).
func (s *Server) searchParams(c echo.Context) (url.Values, error) {
	if pr, ok := c.Request().Context().Value(prereadKey{}).(*preread); ok {
		return pr.params, pr.err
	}
	// Parsed here rather than by c.QueryParams, which drops what does not parse: past
	// 10,000 parameters Go's parser returns none at all, and a parameter holding ";" is
	// skipped, so a search would silently lose its filters.
	params, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return nil, resources.Errorf(resources.CodeInvalid, "malformed query string: %v", err)
	}
	req := c.Request()
	if req.Method != http.MethodPost {
		return params, nil
	}
	ct := req.Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), echo.MIMEApplicationForm) {
		return nil, resources.Errorf(codeUnsupportedMedia, "POST _search takes an application/x-www-form-urlencoded body, not %q", ct)
	}
	data, release, err := s.readReserved(req)
	if err != nil {
		return nil, err
	}
	defer release() // held until the body is decoded
	form, err := url.ParseQuery(string(data))
	if err != nil {
		return nil, resources.Errorf(resources.CodeInvalid, "malformed form body: %v", err)
	}
	for k, v := range form {
		params[k] = append(params[k], v...)
	}
	return params, nil
}

func (s *Server) handleMetadata(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	body, err := s.capabilityJSON(c)
	if err != nil {
		return err
	}
	return s.writeJSON(c, http.StatusOK, f, body)
}

// writeResource writes one resource with its version headers (conformance F1, F3).
func (s *Server) writeResource(c echo.Context, status int, f outFormat, res *resources.Resource) error {
	body, err := s.svc.Public(res, resources.View{})
	if err != nil {
		return err
	}
	setVersionHeaders(c, res)
	return s.writeJSON(c, status, f, body)
}

// writeValue marshals v and writes it in the negotiated format.
func (s *Server) writeValue(c echo.Context, status int, f outFormat, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return resources.Internal(err)
	}
	return s.writeJSON(c, status, f, body)
}

// writeJSON writes a JSON document as JSON or converts it to YAML.
func (s *Server) writeJSON(c echo.Context, status int, f outFormat, body []byte) error {
	if f.yaml {
		y, err := format.EncodeYAML(body)
		if err != nil {
			return resources.Internal(err)
		}
		body = y
	} else if f.pretty {
		body = format.Indent(body)
	}
	// Without a length net/http sends any body over 2 KB chunked, which costs both
	// ends more than the length it knows anyway.
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	s.setWriteDeadline(c, len(body))
	return c.Blob(status, f.ctype+"; charset=utf-8", body)
}

func setVersionHeaders(c echo.Context, res *resources.Resource) {
	h := c.Response().Header()
	h.Set("ETag", resources.ETag(res.VersionID))
	h.Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
}

// sameVersion reports whether an If-None-Match header names version v (or is "*").
func sameVersion(header string, v int64) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if got, err := resources.ParseETag(t); err == nil && got == v {
			return true
		}
	}
	return false
}

// versionURL is the absolute URL of a resource version (conformance F1, C7).
func (s *Server) versionURL(c echo.Context, res *resources.Resource) string {
	return fmt.Sprintf("%s/%s/%s/_history/%d", s.base(c), res.Type, res.ID, res.VersionID)
}
