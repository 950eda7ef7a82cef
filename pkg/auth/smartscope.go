package auth

import (
	"fmt"
	"net/url"
	"strings"
)

// SMART App Launch scopes (hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
// fhirbox reads them at the token endpoint and on Clients, refuses the malformed ones
// (invalid_scope), records the granted ones on the Session as it records any scope, and
// enforces them (scopeaccess.go, conformance M5): they narrow what AccessPolicy allows.

// smartContexts are the first part of a SMART resource scope: whose data it reaches.
var smartContexts = []string{"patient", "user", "system"}

// smartOtherScopes are the SMART scopes that name no resources: identity, launch context
// and refresh-token lifetime.
var smartOtherScopes = []string{"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access"}

// smartV1 maps the permissions of a SMART v1 scope to the v2 letters they stand for.
var smartV1 = map[string]string{"read": "rs", "write": "cud", "*": "cruds"}

// maxScopeQuery bounds the qualifiers of one v2 scope: a scope rides in every token
// response and Session, and no real one has more than a few.
const maxScopeQuery = 10

// SMARTScope is a SMART resource scope, v1 (patient/*.read) or v2
// (patient/Observation.rs?category=vital-signs).
type SMARTScope struct {
	// Context is patient, user or system.
	Context string
	// Type is a resource type, or * for every type.
	Type string
	// Permissions are the v2 letters granted, in the order c r u d s. A v1 scope's
	// read is rs, write cud and * cruds.
	Permissions string
	// V1 is set for a v1 scope (.read, .write or .*).
	V1 bool
	// Query holds a v2 scope's search-parameter qualifiers (after ?), nil without.
	Query url.Values
}

// String writes the scope back in its own version's form, qualifiers sorted.
func (s *SMARTScope) String() string {
	perm := s.Permissions
	if s.V1 {
		for v1, v2 := range smartV1 {
			if v2 == s.Permissions {
				perm = v1
			}
		}
	}
	out := s.Context + "/" + s.Type + "." + perm
	if len(s.Query) > 0 {
		out += "?" + s.Query.Encode()
	}
	return out
}

// IsSMARTScope reports whether tok is in SMART's part of the scope space: a resource
// scope (patient/, user/, system/), a launch scope (launch, launch/…) or one of SMART's
// identity and refresh scopes. Other scope tokens are the client's own business.
func IsSMARTScope(tok string) bool {
	if tok == "launch" || strings.HasPrefix(tok, "launch/") {
		return true
	}
	for _, c := range smartContexts {
		if strings.HasPrefix(tok, c+"/") {
			return true
		}
	}
	for _, o := range smartOtherScopes {
		if tok == o {
			return true
		}
	}
	return false
}

// ParseSMARTScope reads a SMART resource scope. It returns nil and no error for a token
// that is no resource scope (openid, launch/patient, a scope of the client's own), and an
// error that says what is wrong for a token in SMART's namespace that breaks its grammar.
func ParseSMARTScope(tok string) (*SMARTScope, error) {
	context, rest, ok := strings.Cut(tok, "/")
	if !ok {
		return nil, nil
	}
	if context == "launch" {
		if tok == "launch/patient" || tok == "launch/encounter" {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown launch scope %q: SMART defines launch/patient and launch/encounter", tok)
	}
	isContext := false
	for _, c := range smartContexts {
		isContext = isContext || c == context
	}
	if !isContext {
		return nil, nil
	}
	s := &SMARTScope{Context: context}
	rest, query, hasQuery := strings.Cut(rest, "?")
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, fmt.Errorf("scope %q names no permissions: write %s/Type.rs (v2) or %s/Type.read (v1)", tok, context, context)
	}
	if typ != "*" && !isTypeName(typ) {
		return nil, fmt.Errorf("scope %q: %q is not a resource type name nor *", tok, typ)
	}
	s.Type = typ
	if v2, ok := smartV1[perm]; ok {
		s.Permissions, s.V1 = v2, true
		if hasQuery {
			return nil, fmt.Errorf("scope %q: only v2 scopes (.cruds) take ?qualifiers", tok)
		}
		return s, nil
	}
	if s.Permissions = v2Permissions(perm); s.Permissions == "" {
		return nil, fmt.Errorf("scope %q: permissions must be read, write or * (v1), or some of c, r, u, d, s in that order (v2)", tok)
	}
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil || len(q) == 0 {
			return nil, fmt.Errorf("scope %q: the qualifiers after ? must be param=value pairs joined by &", tok)
		}
		n := 0
		for k, vs := range q {
			n += len(vs)
			for _, v := range vs {
				if k == "" || v == "" {
					return nil, fmt.Errorf("scope %q: the qualifiers after ? must be param=value pairs joined by &", tok)
				}
			}
		}
		if n > maxScopeQuery {
			return nil, fmt.Errorf("scope %q: more than %d qualifiers", tok, maxScopeQuery)
		}
		s.Query = q
	}
	return s, nil
}

// v2Permissions returns perm when it is a non-empty subsequence of "cruds", "" when not.
func v2Permissions(perm string) string {
	const order = "cruds"
	i := 0
	for j := 0; j < len(perm); j++ {
		k := strings.IndexByte(order[i:], perm[j])
		if k < 0 {
			return ""
		}
		i += k + 1
	}
	return perm
}

// isTypeName reports whether s has the shape of a FHIR resource type name.
func isTypeName(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
