package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// handleConditionalUpdate is PUT {type}?criteria (conformance F31).
func (s *Server) handleConditionalUpdate(c echo.Context) error {
	f, typ, doc, err := s.writeRequest(c)
	if err != nil {
		return err
	}
	res, created, err := s.svc.ConditionalUpdate(c.Request().Context(), typ, c.Request().URL.RawQuery, doc,
		c.Request().Header.Get("If-Match"), s.writeCheck(c, http.MethodPut, doc))
	if err != nil {
		return err
	}
	return s.writeUpdated(c, f, res, created)
}

// handleConditionalPatch is PATCH {type}?criteria: _method chooses the patch kind, as
// on PATCH {type}/{id}, and is no criterion.
func (s *Server) handleConditionalPatch(c echo.Context) error {
	f, typ, p, err := s.patchRequest(c)
	if err != nil {
		return err
	}
	res, err := s.svc.ConditionalPatch(c.Request().Context(), typ, withoutParam(c.Request().URL.RawQuery, methodParam), p,
		c.Request().Header.Get("If-Match"), s.writeCheck(c, http.MethodPatch, nil))
	if err != nil {
		return err
	}
	return s.writeUpdated(c, f, res, false)
}

// handleConditionalDelete is DELETE {type}?criteria: 204 when nothing matched, else
// 200 with an OperationOutcome naming what was deleted.
func (s *Server) handleConditionalDelete(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	typ := c.Param("type")
	deleted, err := s.svc.ConditionalDelete(c.Request().Context(), typ, c.Request().URL.RawQuery, s.writeCheck(c, http.MethodDelete, nil))
	if err != nil {
		return err
	}
	if len(deleted) == 0 {
		return c.NoContent(http.StatusNoContent)
	}
	names := make([]string, len(deleted))
	for i, r := range deleted {
		names[i] = r.Type + "/" + r.ID
	}
	if len(deleted) == 1 {
		setVersionHeaders(c, deleted[0])
	}
	oo := fhir.NewOutcome("information", "informational", "deleted "+strings.Join(names, ", "))
	return s.writeValue(c, http.StatusOK, f, oo)
}

// writeCheck returns the check a conditional write runs on the resource it matched:
// whether the caller may send the same write naming that resource — method on
// {base}/{type}/{id}, or POST {base}/{type} for a conditional update that creates
// under a new id — decided by the access policies with the request's credentials,
// headers and address, and body when policies may read it (requestInfo). The request
// itself was already allowed as written (type-level, with its criteria as query), so
// a policy that allows writes of some resources only, by path or id, cannot be slipped
// past by naming them through criteria.
func (s *Server) writeCheck(c echo.Context, method string, body map[string]any) resources.WriteCheck {
	caller := auth.FromContext(c.Request().Context())
	prefix := ""
	if isFHIRBase(c) {
		prefix = "/fhir"
	}
	return func(ctx context.Context, typ, id string) error {
		m, path := method, prefix+"/"+typ
		if id != "" {
			path += "/" + id
		} else if method == http.MethodPut {
			m = http.MethodPost
		}
		info := equivalent(s.requestInfo(c, caller), m, path, "", url.Values{}, typ, id, body)
		if ok, conf := s.decideProbe(ctx, info); ok && s.reachedUnder(ctx, conf, typ, id) {
			return nil
		}
		code := codeForbidden
		if caller.Anonymous() {
			code = codeUnauthorized
		}
		return resources.Errorf(code, "no access policy allows %s to %s %s, which the criteria of this conditional %s reach",
			callerName(info), info.Method, info.Path, strings.ToLower(method))
	}
}
