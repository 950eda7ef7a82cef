package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// handleSystemSearch answers a system-level search, GET [base]?_type=A,B&… (and
// POST [base]/_search): the matches of every type named by _type, or of every type
// served at the base without it.
//
// The authorize middleware has let the request itself through (its uri is the base,
// with no resource/type). Each type is then decided as if the type-level search
// (GET [base]/{Type}?…, POST [base]/{Type}/_search) had been sent, by the same policy
// engine, and the types no policy allows are left out of the search: the Bundle holds
// only what the caller could have found type by type. When none is allowed the answer
// is what the type-level search would get: 401 for an anonymous caller, 403 otherwise.
func (s *Server) handleSystemSearch(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	params, err := s.searchParams(c)
	if err != nil {
		return err
	}
	types, err := s.svc.SystemTypes(params, isFHIRBase(c))
	if err != nil {
		return err
	}
	allowed := s.searchableTypes(c, types, params)
	if len(allowed) == 0 {
		r := c.Request()
		id := auth.FromContext(r.Context())
		if id.Anonymous() {
			return resources.Errorf(codeUnauthorized, "authentication required: no access policy allows anonymous searches of %s", strings.Join(types, ", "))
		}
		return resources.Errorf(codeForbidden, "no access policy allows %s to search %s", id.String(), strings.Join(types, ", "))
	}
	res, q, err := s.svc.SystemSearch(c.Request().Context(), allowed, params, s.strictHandling(c.Request()))
	if err != nil {
		return err
	}
	return s.answerSearch(c, f, q, res)
}

// searchableTypes returns those of types whose type-level search the caller's policies
// allow, with the parameters of this request.
func (s *Server) searchableTypes(c echo.Context, types []string, params map[string][]string) []string {
	r := c.Request()
	ctx := r.Context()
	id := auth.FromContext(ctx)
	// The base of /fhir, /fhir/, /fhir/_search: "/fhir"; of /, /_search: "".
	base := strings.TrimSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/_search")
	var allowed []string
	for _, typ := range types {
		info := s.requestInfo(c, id)
		path := base + "/" + typ
		if r.Method == http.MethodPost {
			path += "/_search"
		}
		probe := equivalent(info, info.Method, path, info.RawQuery, params, typ, "", nil)
		if s.policies.Decide(ctx, probe.Build(), false).Allowed {
			allowed = append(allowed, typ)
		}
	}
	return allowed
}
