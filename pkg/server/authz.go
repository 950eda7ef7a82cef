package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// TraceHeader carries the policy trace of a request sent with x-debug: policy (or
// ?__debug=policy) by a caller who may debug policies: compact JSON, ASCII only.
const TraceHeader = "X-Fhirbox-Policy-Trace"

// debugParam is the query parameter that asks for the policy trace; it is removed
// before the request goes on, so it never reaches search.
const debugParam = "__debug"

// testPolicyPath is the debugging endpoint; whoever policies allow to call it may also
// see traces.
const testPolicyPath = "/auth/test-policy"

// prereadKey carries a request body that the authorize middleware read so policies
// could see it; the handler takes it from there instead of the spent stream.
type prereadKey struct{}

type preread struct {
	doc    map[string]any // create and update
	params url.Values     // POST _search: query and form merged
	err    error
}

// authorize identifies the caller and lets the request through only when a policy
// allows it: 401 for an anonymous caller (or bad credentials), 403 for an
// authenticated one (conformance B1, B3).
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id, err := s.identify(c)
		if err != nil {
			return err
		}
		debug := wantsTrace(r)
		if debug && r.URL.Query().Has(debugParam) {
			r.URL.RawQuery = withoutParam(r.URL.RawQuery, debugParam)
			c.QueryParams().Del(debugParam) // echo caches the parsed query
		}
		info := s.requestInfo(c, id)
		info.Pending = pendingPart(c, info)
		ctx := r.Context()
		d := s.policies.Decide(ctx, info.Build(), debug)
		if !d.Allowed && d.Deferred {
			// Only a policy that reads the body can still allow: read it now, and not
			// before, so that a caller whom no policy could allow never has a body read
			// or decoded on its behalf.
			s.preread(c, info)
			info.Pending = ""
			d = s.policies.Decide(ctx, info.Build(), debug)
		}
		if debug && s.mayDebug(c, id) {
			c.Response().Header().Set(TraceHeader, traceJSON(d.Trace))
		}
		if !d.Allowed {
			if id.Anonymous() {
				return resources.Errorf(codeUnauthorized, "authentication required: no access policy allows anonymous %s %s", r.Method, r.URL.Path)
			}
			return resources.Errorf(codeForbidden, "no access policy allows %s to %s %s", id.String(), r.Method, r.URL.Path)
		}
		if err := s.scopeRefusal(info); err != nil {
			return err
		}
		ctx = auth.WithIdentity(c.Request().Context(), id)
		ctx = confineScopes(ctx, id, r.Method, r.URL.Path)
		ctx = resources.WithConfinement(ctx, d.Confinement())
		ctx = resources.WithReadCheck(resources.WithChainCheck(ctx, s.chainCheck(info)), s.listCheck(c, info))
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// requestInfo collects what policies see of the request.
func (s *Server) requestInfo(c echo.Context, id *auth.Identity) *accesspolicy.Info {
	r := c.Request()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	method := r.Method
	if method == http.MethodHead {
		// HEAD tells what GET would (existence, ETag, length): a policy that allows or
		// refuses GET decides it too, and none needs to name head.
		method = http.MethodGet
	}
	info := &accesspolicy.Info{
		Method: method, Scheme: scheme, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		RemoteAddr: remoteIP(r), Header: r.Header, Host: r.Host, Caller: id,
	}
	if typ := c.Param("type"); typ != "" {
		info.ResourceType = typ
		info.ResourceID = c.Param("id")
	}
	return info
}

// remoteIP is the peer's address without the port. Forwarded-for headers are not
// trusted: any client can send them.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// pendingPart names the part of the request object that the body would fill: "body"
// for resource writes, "params" for POST _search (its form parameters join params);
// "" when the body is none of the policies' business.
func pendingPart(c echo.Context, info *accesspolicy.Info) string {
	r := c.Request()
	if info.ResourceType == "" || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		return ""
	}
	if strings.HasSuffix(r.URL.Path, "/_search") {
		return "params"
	}
	return "body"
}

// preread reads the body of a resource write or a POST _search for the policies that
// need it (body, and the form parameters among params); a body that cannot be read is
// left out here and reported by the handler, after the decision.
func (s *Server) preread(c echo.Context, info *accesspolicy.Info) {
	r := c.Request()
	pr := &preread{}
	if strings.HasSuffix(r.URL.Path, "/_search") {
		pr.params, pr.err = s.searchParams(c)
		if pr.err == nil {
			info.Query = pr.params
		}
	} else {
		pr.doc, pr.err = s.readBody(c)
		if pr.err == nil {
			info.Body = pr.doc
		}
	}
	c.SetRequest(r.WithContext(context.WithValue(r.Context(), prereadKey{}, pr)))
}

// withoutParam removes every occurrence of name from a raw query, keeping the rest as
// it was written (policies see query-string as sent).
func withoutParam(raw, name string) string {
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// wantsTrace reports whether the request asks for the policy trace.
func wantsTrace(r *http.Request) bool {
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Debug")), "policy") {
		return true
	}
	return r.URL.RawQuery != "" && r.URL.Query().Get(debugParam) == "policy"
}

// mayDebug reports whether policies allow id to call POST /auth/test-policy: the same
// caller may see traces.
func (s *Server) mayDebug(c echo.Context, id *auth.Identity) bool {
	info := &accesspolicy.Info{Method: http.MethodPost, Scheme: "http", Path: testPolicyPath, Header: http.Header{},
		Caller: id}
	return s.policies.Decide(c.Request().Context(), info.Build(), false).Allowed
}

// traceJSON encodes a trace for a header: compact JSON with every non-ASCII character
// escaped, since header values are ASCII.
func traceJSON(t []accesspolicy.TraceEntry) string {
	if t == nil {
		t = []accesspolicy.TraceEntry{}
	}
	b, _ := json.Marshal(t)
	var sb strings.Builder
	for _, r := range string(b) {
		if r < 0x20 || r > 0x7e {
			if r > 0xffff {
				r = '?'
			}
			sb.WriteString(`\u`)
			const hex = "0123456789abcdef"
			sb.WriteByte(hex[r>>12&0xf])
			sb.WriteByte(hex[r>>8&0xf])
			sb.WriteByte(hex[r>>4&0xf])
			sb.WriteByte(hex[r&0xf])
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
