package accesspolicy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/fhirbox/fhirbox/pkg/auth"
)

// Request is the request object that policies are evaluated against: a JSON-like map
// (see docs/accesspolicy.md) with the keys
//
//	request-method  lower case: get, post, put, patch, delete
//	scheme          http or https
//	uri             the path, without the query
//	query-string    the raw query
//	params          query parameters (a string, or a list when repeated) plus
//	                resource/type and resource/id of resource routes; keys under
//	                resource/ belong to the router and are never taken from the query
//	headers         lower-case names; Authorization and Cookie are left out
//	user            the caller's User, without password
//	client          the caller's Client, without secret
//	jwt             the claims of the caller's bearer JWT
//	session         the Session of the caller's bearer token
//	remote-addr     the peer's IP address
//	body            the decoded body of a write
//
// Absent parts are absent keys, never empty maps.
type Request struct {
	once     sync.Once
	info     *Info // what obj is built from, on first use
	obj      map[string]any
	userID   string
	clientID string
	roles    []string
	pending  string
}

// Info is what the server knows of a request; Build turns it into a Request.
type Info struct {
	Method, Scheme, Path, RawQuery, RemoteAddr string
	// Query is the parsed query; nil is parsed from RawQuery.
	Query url.Values
	// ResourceType and ResourceID come from resource routes.
	ResourceType, ResourceID string
	Header                   http.Header
	// Host is the request's Host (Go keeps it out of Header).
	Host string
	// Caller is who is behind the request, as authentication found it; nil is the
	// anonymous caller. Its User and Client must already be stripped of their password
	// and secret: the request object shows them as they are.
	Caller *auth.Identity
	// Body is the decoded body of a write, nil when absent.
	Body map[string]any
	// Pending names a part of the request object that is not read yet: "body" for a
	// write whose body is still unread, "params" for a POST _search whose form is. A
	// policy that may read that part is not evaluated (see Decision.Deferred), so that
	// a caller no other policy allows is refused before the body is read or decoded.
	Pending string
}

// Build returns the request for info. The request object itself is built when a
// policy first looks at it: the policies linked to the admin, or any engine allow,
// decide without it. info must not change afterwards.
func (info *Info) Build() *Request {
	r := &Request{info: info, pending: info.Pending}
	if id := info.Caller; id != nil {
		r.userID = id.UserID
		if id.User != nil {
			r.roles = rolesOf(id.User)
		}
		if r.userID == "" {
			// A token that acts for a user is decided by the user's policies: a policy
			// linked to the client (say, allow for its client_credentials jobs) must not
			// lend every user of that client its rights. The client stays in the request
			// object for policies that want to check it.
			r.clientID = id.ClientID
		}
	}
	return r
}

// object builds the request object of info.
func (info *Info) object() map[string]any {
	obj := make(map[string]any, 12)
	obj["request-method"] = strings.ToLower(info.Method)
	if info.Scheme != "" {
		obj["scheme"] = info.Scheme
	}
	obj["uri"] = info.Path
	obj["query-string"] = info.RawQuery
	q := info.Query
	if q == nil {
		q, _ = url.ParseQuery(info.RawQuery)
	}
	params := make(map[string]any, len(q)+2)
	for k, vs := range q {
		if RouteOwned(k) {
			// What the router decided must not be supplied by the caller: a query or form
			// parameter named resource/id would otherwise stand in for the id of a route
			// that has none (GET /fhir/Patient/_history?resource/id=pt-1).
			continue
		}
		if len(vs) == 1 {
			params[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		params[k] = list
	}
	if info.ResourceType != "" {
		params["resource/type"] = info.ResourceType
	}
	if info.ResourceID != "" {
		params["resource/id"] = info.ResourceID
	}
	obj["params"] = params
	headers := make(map[string]any, len(info.Header)+1)
	for k, vs := range info.Header {
		lk := lowerHeader(k)
		if lk == "authorization" || lk == "cookie" {
			continue
		}
		if len(vs) == 1 {
			headers[lk] = vs[0]
		} else {
			headers[lk] = strings.Join(vs, ", ")
		}
	}
	if info.Host != "" {
		headers["host"] = info.Host
	}
	obj["headers"] = headers
	if info.RemoteAddr != "" {
		obj["remote-addr"] = info.RemoteAddr
	}
	if id := info.Caller; id != nil {
		if id.User != nil {
			obj["user"] = id.User
		}
		if id.Client != nil {
			obj["client"] = id.Client
		}
		if id.JWT != nil {
			// Policies see a plain map, as they would a decoded JSON document.
			obj["jwt"] = map[string]any(id.JWT)
		}
		if id.Session != nil {
			obj["session"] = id.Session
		}
	}
	if info.Body != nil {
		obj["body"] = Plain(info.Body)
	}
	return obj
}

// RouteOwned reports whether a params key belongs to the router (resource/type,
// resource/id and any other key under resource/): such keys are set from the route that
// matched, or absent, and a query or form parameter of that name is left out of params.
func RouteOwned(key string) bool { return strings.HasPrefix(key, "resource/") }

// commonHeaders are the lower-case names of headers most requests carry, so that
// building a request object does not allocate a new string for each.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Length", "Content-Type", "Cookie", "If-Match", "If-None-Match", "Origin", "Prefer",
		"Referer", "User-Agent", "X-Forwarded-For", "X-Request-Id"} {
		m[h] = strings.ToLower(h)
	}
	return m
}()

func lowerHeader(k string) string {
	if lk, ok := commonHeaders[k]; ok {
		return lk
	}
	return strings.ToLower(k)
}

// NewRequest wraps a request object given as a map (as POST /auth/test-policy receives
// it). The user's and client's ids and the user's roles are read from it.
func NewRequest(obj map[string]any) *Request {
	if obj == nil {
		obj = map[string]any{}
	}
	r := &Request{obj: obj}
	if u, ok := obj["user"].(map[string]any); ok {
		r.userID, _ = u["id"].(string)
		r.roles = rolesOf(u)
	}
	if c, ok := obj["client"].(map[string]any); ok && r.userID == "" {
		r.clientID, _ = c["id"].(string)
	}
	return r
}

// Object returns the request object. Callers must not modify it.
func (r *Request) Object() map[string]any {
	r.once.Do(func() {
		if r.obj == nil {
			r.obj = r.info.object()
		}
	})
	return r.obj
}

// ObjectAny returns the request object as an any, for validators that take one.
func (r *Request) ObjectAny() any { return r.Object() }

// UserID is the id of the request's User, "" when none.
func (r *Request) UserID() string { return r.userID }

// ClientID is the id of the request's Client, "" when none or when the request acts
// for a user (policies linked to the client are then no candidates).
func (r *Request) ClientID() string { return r.clientID }

// Roles are the role names of the request's User.
func (r *Request) Roles() []string { return r.roles }

// rolesOf reads User.roles: a list of names, or of objects with a name (or value).
func rolesOf(user map[string]any) []string {
	list, _ := user["roles"].([]any)
	var roles []string
	for _, item := range list {
		switch v := item.(type) {
		case string:
			roles = append(roles, v)
		case map[string]any:
			if s, ok := v["name"].(string); ok {
				roles = append(roles, s)
			} else if s, ok := v["value"].(string); ok {
				roles = append(roles, s)
			}
		}
	}
	return roles
}

// Plain returns a copy of v in which every json.Number is a float64: decoders that keep
// numbers exact (fhirbox's own) hand them over as json.Number, while policies compare
// JSON numbers as float64. v itself is left alone; the resource engine stores it.
func Plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = Plain(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = Plain(e)
		}
		return l
	}
	return v
}
