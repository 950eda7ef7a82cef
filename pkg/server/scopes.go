package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// permsOf returns the SMART permission letters that a request on a resource type needs
// (conformance M5): read r, search s, create c, update u, delete d; "" when the request
// names no resource type (metadata, a Bundle, the system level: their types and entries
// are decided one by one) or is an operation that reads nothing but its body
// ($validate needs some permission on the type, any). The letters are those of the
// request as sent: a conditional update needs u, a conditional delete d.
func permsOf(info *accesspolicy.Info) string {
	if info.ResourceType == "" {
		return ""
	}
	rest := strings.TrimPrefix(info.Path, "/fhir")
	rest = strings.TrimPrefix(rest, "/"+info.ResourceType)
	if strings.Contains(rest, "$") {
		return "cruds"
	}
	id := info.ResourceID
	switch info.Method {
	case http.MethodGet, http.MethodHead:
		if id == "" {
			return "s" // a search, or the type's history
		}
		return "r" // a read, a version, the resource's history
	case http.MethodPost:
		if strings.HasSuffix(rest, "/_search") {
			return "s"
		}
		return "c"
	case http.MethodPut, http.MethodPatch:
		return "u"
	case http.MethodDelete:
		return "d"
	}
	return ""
}

// reachPerms are the permissions whose scopes' reach confines a request of method: a
// read or search reaches what r and s scopes reach, a write what its own letter's do,
// and a Bundle (whose entries mix them) what any scope does.
func reachPerms(method, path string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "rs"
	case http.MethodPost:
		if strings.HasSuffix(path, "/_search") || strings.Contains(path, "$") {
			return "rs"
		}
		if p := strings.TrimSuffix(strings.TrimPrefix(path, "/fhir"), "/"); p == "" {
			return "cruds"
		}
		return "c"
	case http.MethodPut, http.MethodPatch:
		return "u"
	case http.MethodDelete:
		return "d"
	}
	return "cruds"
}

// scopeRefusal is nil when the token's scopes allow the request info describes, else the
// 403 that says why.
func (s *Server) scopeRefusal(info *accesspolicy.Info) error {
	sc := auth.ScopesOf(info.Caller)
	if sc == nil {
		return nil
	}
	perms := permsOf(info)
	if perms == "" {
		return nil
	}
	if !sc.Allows(info.ResourceType, s.svc.Registry().Own(info.ResourceType), perms) {
		return resources.Errorf(codeForbidden, "%s", sc.Refusal(info.ResourceType, perms))
	}
	return nil
}

// allowed reports whether the caller may send the request info describes: the policies
// allow it and the token's scopes do. Every probe of a request beyond its own route (an
// include, a chain, a system-level type, a Bundle entry) is decided this way.
func (s *Server) allowed(ctx context.Context, info *accesspolicy.Info) bool {
	return s.policies.Decide(ctx, info.Build(), false).Allowed && s.scopeRefusal(info) == nil
}

// confineScopes returns ctx confined to what the token's scopes reach for a request of
// method on path (unchanged for a caller without scopes).
func confineScopes(ctx context.Context, id *auth.Identity, method, path string) context.Context {
	sc := auth.ScopesOf(id)
	if sc == nil {
		return ctx
	}
	return resources.WithConfinement(ctx, sc.Confinement(reachPerms(method, path)))
}
