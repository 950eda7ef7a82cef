package server

import (
	"context"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
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
			var conf resources.Confinement
			ok, conf = s.decideProbe(ctx, probe)
			// Allowed within a compartment: the read decides whether it is in it.
			ok = ok && s.reachedUnder(ctx, conf, typ, id)
		}
		decided[k] = ok
		return ok
	}
}

// listCheck returns the check of the List a search's _list names (see
// resources.WithReadCheck): the caller must be allowed to read it, decided as readCheck
// decides an included resource, or the search is refused as the read would be (403,
// 401 for an anonymous caller), whether the List exists or not. Unlike an include, which
// the search adds and may silently leave out, the List decides which matches there are:
// answering without it, or as if it were empty, would be a wrong answer given as right.
func (s *Server) listCheck(c echo.Context, info *accesspolicy.Info) resources.ReadCheck {
	return func(_ context.Context, typ, id string) error {
		if s.readCheck(c)(typ, id) {
			return nil
		}
		base := ""
		if isFHIRBase(c) {
			base = "/fhir"
		}
		return refusal(info, "_list names %s/%s, which no access policy allows %s to read (GET %s/%s/%s)",
			typ, id, callerName(info), base, typ, id)
	}
}
