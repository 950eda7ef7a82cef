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
	f, params, err := s.queryRequest(c)
	if err != nil {
		return err
	}
	types, err := s.svc.SystemTypes(params, isFHIRBase(c))
	if err != nil {
		return err
	}
	allowed := s.searchableTypes(c, types, params)
	if len(allowed) == 0 {
		return noTypeAllowed(c, "search", types)
	}
	ctx := c.Request().Context()
	res, q, err := s.svc.SystemSearch(ctx, allowed, params, resources.SearchOptions{
		Strict: s.strictHandling(c.Request()), Caller: resultSetCaller(ctx)})
	if err != nil {
		return err
	}
	return s.answerSearch(c, f, q, res)
}

// searchableTypes returns those of types whose type-level search the caller's policies
// allow, with the parameters of this request.
func (s *Server) searchableTypes(c echo.Context, types []string, params map[string][]string) []string {
	suffix := ""
	if c.Request().Method == http.MethodPost {
		suffix = "/_search"
	}
	return s.allowedTypes(c, types, params, "/_search", suffix)
}

// allowedTypes returns those of types whose type-level request the caller's policies
// allow (see typesAllowed), and confines the request's context to what each type's own
// decision confined it to.
func (s *Server) allowedTypes(c echo.Context, types []string, params map[string][]string, own, suffix string) []string {
	allowed, confs := s.typesAllowed(c, types, params, own, suffix)
	c.SetRequest(c.Request().WithContext(confinedTo(c.Request().Context(), confs)))
	return allowed
}

// typesAllowed returns those of types whose type-level request the caller's policies
// allow: the request as if sent to [base]/{Type}+suffix with params, where the system-level
// request's path is [base], [base]/ or [base]+own (own: "/_search", "/_history"); and,
// for the types a policy allowed only within compartments, those confinements.
func (s *Server) typesAllowed(c echo.Context, types []string, params map[string][]string, own, suffix string) ([]string, typeConfinements) {
	r := c.Request()
	ctx := r.Context()
	id := auth.FromContext(ctx)
	// The base of /fhir, /fhir/, /fhir/_search: "/fhir"; of /, /_search: "".
	base := strings.TrimSuffix(strings.TrimSuffix(r.URL.Path, "/"), own)
	var allowed []string
	confs := typeConfinements{}
	for _, typ := range types {
		info := s.requestInfo(c, id)
		probe := equivalent(info, info.Method, base+"/"+typ+suffix, info.RawQuery, params, typ, "", nil)
		if ok, conf := s.decideProbe(ctx, probe); ok {
			allowed = append(allowed, typ)
			if conf != nil {
				confs[typ] = conf
			}
		}
	}
	return allowed, confs
}

// noTypeAllowed is the answer to a system-level request (what: "search", "read the
// history of") when no policy allows the type-level one of any of types: what the
// type-level request would get, 401 for an anonymous caller and 403 otherwise.
func noTypeAllowed(c echo.Context, what string, types []string) error {
	id := auth.FromContext(c.Request().Context())
	if id.Anonymous() {
		return resources.Errorf(codeUnauthorized, "authentication required: no access policy allows anonymous callers to %s %s", what, strings.Join(types, ", "))
	}
	return resources.Errorf(codeForbidden, "no access policy allows %s to %s %s", id.String(), what, strings.Join(types, ", "))
}
