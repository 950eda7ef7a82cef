package server

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
)

// readCheck returns the check that a search's _include and _revinclude run on each
// resource they would add: whether the caller may read it, decided by the access
// policies exactly as for the caller sending GET {base}/{type}/{id} at the same base,
// with the same credentials, headers and address (requestInfo, with the method, path,
// query and route of that read instead of the search's). An include must never show
// what a read would refuse. Under /fhir, fhirbox's own types are refused as the read
// would be (404). Each resource is decided once per request.
func (s *Server) readCheck(c echo.Context) func(typ, id string) bool {
	ctx := c.Request().Context()
	caller := auth.FromContext(ctx)
	fhirBase := isFHIRBase(c)
	prefix := ""
	if fhirBase {
		prefix = "/fhir"
	}
	decided := map[string]bool{}
	return func(typ, id string) bool {
		k := typ + "/" + id
		if ok, done := decided[k]; done {
			return ok
		}
		ok := !fhirBase || !s.svc.Registry().Own(typ)
		if ok {
			probe := equivalent(s.requestInfo(c, caller), http.MethodGet, prefix+"/"+k, "", url.Values{}, typ, id, nil)
			ok = s.policies.Decide(ctx, probe.Build(), false).Allowed
		}
		decided[k] = ok
		return ok
	}
}
