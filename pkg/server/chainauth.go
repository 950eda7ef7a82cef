package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/resources"
)

// chainCheck returns the check a search's chains and _has must pass (see
// resources.WithChainCheck): the caller of the request info describes must be allowed
// to search every type they lead to, as if it sent GET on that type, under the same
// base, with the same headers and no query. Otherwise a policy that allows searching
// Patients only would answer Patient?_has:Observation:subject:code=X, which tells
// which patients have such an Observation.
func (s *Server) chainCheck(info *accesspolicy.Info) resources.ChainCheck {
	return func(ctx context.Context, types []string) (resources.Confinement, error) {
		base := ""
		if info.Path == "/fhir" || strings.HasPrefix(info.Path, "/fhir/") {
			base = "/fhir"
		}
		confs := typeConfinements{}
		for _, t := range types {
			probe := equivalent(info, http.MethodGet, base+"/"+t, "", nil, t, "", nil)
			ok, conf := s.decideProbe(ctx, probe)
			if !ok {
				return nil, refusal(info, "the search leads, through a chain or _has, to %s, which no access policy allows %s to search (GET %s)",
					t, callerName(info), probe.Path)
			}
			if conf != nil {
				confs[t] = conf
			}
		}
		if len(confs) == 0 {
			return nil, nil
		}
		return confs, nil
	}
}

// refusal is the error of a request refused for what it reaches beyond its own
// resource: 401 for an anonymous caller, 403 otherwise, as the request that reads or
// searches it directly would get.
func refusal(info *accesspolicy.Info, format string, args ...any) error {
	code := codeForbidden
	if info.Caller.Anonymous() {
		code = codeUnauthorized
	}
	return resources.Errorf(code, format, args...)
}

// callerName names the caller of info in messages.
func callerName(info *accesspolicy.Info) string {
	if info.Caller.Anonymous() {
		return "an anonymous caller"
	}
	return info.Caller.String()
}
