package server

import (
	"net/url"

	"github.com/fhirbox/fhirbox/accesspolicy"
)

// equivalent returns what the policies see of the single request method path?rawQuery
// (query parsed, nil: parsed from rawQuery) on the route of resource typ/id with body,
// sent by the caller of info over the same connection: caller, address, scheme, host
// and headers stay info's. A request that reaches beyond its own route — a system-level
// search its types, an include the resources it adds, a chain the types it leads to, a
// Bundle its entries — is decided on these, so that it is allowed exactly what the
// equivalent requests would be (conformance F44).
func equivalent(info *accesspolicy.Info, method, path, rawQuery string, query url.Values, typ, id string, body map[string]any) *accesspolicy.Info {
	p := *info
	p.Method, p.Path, p.RawQuery, p.Query = method, path, rawQuery, query
	p.ResourceType, p.ResourceID, p.Body, p.Pending = typ, id, body, ""
	return &p
}
