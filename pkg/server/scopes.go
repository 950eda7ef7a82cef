package server

import (
	"context"
	"net/http"
	"slices"
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
// allow it and the token's scopes do. A policy may allow only within compartments:
// whoever acts on the answer applies what decideProbe returns, not this.
func (s *Server) allowed(ctx context.Context, info *accesspolicy.Info) bool {
	ok, _ := s.decideProbe(ctx, info)
	return ok
}

// decideProbe decides a request beyond the route of the one being served (an include, a
// chain, a system-level type, a Bundle entry) as allowed does, and returns what the
// policies that allow it confine it to (nil: nothing). The caller must apply that
// confinement to what the probe stands for, as the request itself would have had it:
// a probe allowed only within a patient's compartment allows nothing beyond it.
func (s *Server) decideProbe(ctx context.Context, info *accesspolicy.Info) (bool, resources.Confinement) {
	d := s.policies.Decide(ctx, info.Build(), false)
	if !d.Allowed || s.scopeRefusal(info) != nil {
		return false, nil
	}
	return true, d.Confinement()
}

// reachedUnder reports whether typ/id, when it exists, is within conf (nil: anything
// is): the check of a probe that names one resource and was allowed only within
// compartments.
func (s *Server) reachedUnder(ctx context.Context, conf resources.Confinement, typ, id string) bool {
	if conf == nil || id == "" {
		return true
	}
	_, err := s.svc.Read(resources.WithConfinement(ctx, conf), typ, id)
	code := resources.ErrorCode(err)
	return err == nil || code == resources.CodeGone || code == resources.CodeNotFound
}

// typeConfinements confines each type to what its own probe was confined to: a
// system-level search's types, a chain's linked types, each decided by a probe of its own.
type typeConfinements map[string]resources.Confinement

func (t typeConfinements) For(typ string) ([]resources.Reach, bool) {
	if c, ok := t[typ]; ok {
		return c.For(typ)
	}
	return nil, false
}

func (t typeConfinements) Describe(typ string) string {
	if c, ok := t[typ]; ok {
		return c.Describe(typ)
	}
	return "nothing"
}

func (t typeConfinements) Key() string {
	keys := make([]string, 0, len(t))
	for typ, c := range t {
		keys = append(keys, typ+"="+c.Key())
	}
	slices.Sort(keys)
	return "types\x00" + strings.Join(keys, "\x00")
}

// confinedTo returns ctx with confs applied, each to its own type.
func confinedTo(ctx context.Context, confs typeConfinements) context.Context {
	if len(confs) == 0 {
		return ctx
	}
	return resources.WithConfinement(ctx, confs)
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
