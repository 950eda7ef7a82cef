package auth

import (
	"fmt"
	"strings"

	"github.com/fhirbox/fhirbox/resources"
)

// Scopes is what the SMART resource scopes of a token allow (conformance M5, M6): they
// narrow what the access policies allow and never widen it. A patient/ scope reaches the
// compartment of the token's patient; user/ and system/ scopes reach what the policies
// let the caller reach. A token without any resource scope has no Scopes: the policies
// alone decide for it, as for HTTP Basic.
type Scopes struct {
	list []*SMARTScope
	// Patient is the id of the patient in the token's launch context, "" without one.
	Patient string
	raw     string
}

// ScopesOf returns the Scopes of the bearer token id authenticated with, nil when it has
// no resource scope (or id is no bearer token).
func ScopesOf(id *Identity) *Scopes {
	if id == nil || id.Session == nil {
		return nil
	}
	// A JWT carries its own scope, signed; a Session's access_scope is that of its
	// current token, which a refresh may have narrowed or widened since an earlier JWT
	// of the Session (still unexpired) was issued. An opaque token is always the current.
	raw, _ := id.Session["access_scope"].(string)
	if id.JWT != nil {
		raw, _ = id.JWT["scope"].(string)
	}
	if !strings.Contains(raw, "/") {
		return nil
	}
	var list []*SMARTScope
	for _, tok := range strings.Fields(raw) {
		// Granted scopes were checked when issued; one that no longer parses grants
		// nothing rather than everything.
		if sc, err := ParseSMARTScope(tok); err == nil && sc != nil {
			list = append(list, sc)
		}
	}
	if len(list) == 0 {
		return nil
	}
	s := &Scopes{list: list, raw: raw}
	if p, ok := id.Session["patient"].(map[string]any); ok {
		s.Patient, _ = p["id"].(string)
	}
	return s
}

// String is the token's scope as granted.
func (s *Scopes) String() string { return s.raw }

// names reports whether sc names typ: by name, or by * for every FHIR type. fhirbox's
// own types (Client, User, …) are named only by name, so that patient/*.rs never reaches
// the server's configuration.
func (sc *SMARTScope) names(typ string, own bool) bool {
	return sc.Type == typ || sc.Type == "*" && !own
}

// Allows reports whether some scope names typ with one of the permission letters
// (c, r, u, d, s) of perms.
func (s *Scopes) Allows(typ string, own bool, perms string) bool {
	for _, sc := range s.list {
		if sc.names(typ, own) && strings.ContainsAny(sc.Permissions, perms) {
			return true
		}
	}
	return false
}

// Refusal says why the scopes refuse perms on typ, for a 403.
func (s *Scopes) Refusal(typ string, perms string) string {
	return fmt.Sprintf("the token's scope %q grants no %s of %s (SMART scopes narrow what the access policies allow)", s.raw, permNames(perms), typ)
}

// permNames spells permission letters for messages.
func permNames(perms string) string {
	names := map[rune]string{'c': "create", 'r': "read", 'u': "update", 'd': "delete", 's': "search"}
	var out []string
	for _, p := range perms {
		out = append(out, names[p])
	}
	return strings.Join(out, " or ")
}

// Confinement returns what the scopes granting one of perms reach, type by type, as the
// resource engine applies it (resources.WithConfinement).
func (s *Scopes) Confinement(perms string) resources.Confinement {
	return &scopeConfinement{s: s, perms: perms}
}

// scopeConfinement is the resources.Confinement of a token's scopes for one kind of
// request (the permission letters it needs).
type scopeConfinement struct {
	s     *Scopes
	perms string
}

// For returns the reaches of the scopes naming typ with one of the permissions: a
// patient/ scope reaches its patient's compartment, or nothing without a patient in the
// launch context; a type that no Patient compartment holds (Practitioner, Medication,
// Organization…) is not confined by a patient/ scope, since none of its resources is a
// patient's. A scope's ?qualifiers narrow its reach to what they match.
func (c *scopeConfinement) For(typ string) ([]resources.Reach, bool) {
	inCompartment := resources.Compartment{Type: "Patient"}.Holds(typ)
	var reaches []resources.Reach
	for _, sc := range c.s.list {
		if !sc.names(typ, false) || !strings.ContainsAny(sc.Permissions, c.perms) {
			continue
		}
		r := resources.Reach{Params: sc.Query}
		if sc.Context == "patient" && inCompartment {
			if c.s.Patient == "" {
				continue // no patient in context: a patient scope reaches nobody's data
			}
			r.Compartment = &resources.Compartment{Type: "Patient", ID: c.s.Patient}
		}
		if r.Compartment == nil && len(r.Params) == 0 {
			return nil, false
		}
		reaches = append(reaches, r)
	}
	return reaches, true
}

// Describe names the scopes for messages.
func (c *scopeConfinement) Describe(typ string) string {
	if c.s.Patient != "" {
		return fmt.Sprintf("the token's scope %q (patient Patient/%s)", c.s.raw, c.s.Patient)
	}
	return fmt.Sprintf("the token's scope %q (no patient in its launch context)", c.s.raw)
}

// Key identifies the scopes, the patient and the permissions.
func (c *scopeConfinement) Key() string {
	return "scope\x00" + c.perms + "\x00" + c.s.Patient + "\x00" + c.s.raw
}
