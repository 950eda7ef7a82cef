// Package accesspolicy is fhirbox's policy engine: AccessPolicy resources, written by
// policy admins through the ordinary resource API, are compiled once, kept in memory
// and evaluated on every request for the user or client behind it. Policies are OR-ed:
// the first that allows wins, and nothing is allowed unless a policy allows it.
//
// The package knows nothing of HTTP: the server builds the request object (see
// Request) and asks an Engine for a Decision.
package accesspolicy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fhirbox/fhirbox/accesspolicy/matcho"
	"github.com/fhirbox/fhirbox/resources"
)

// Engine names, as written in AccessPolicy.engine.
const (
	EngineAllow      = "allow"
	EngineMatcho     = "matcho"
	EngineJSONSchema = "json-schema"
	EngineComplex    = "complex"
	EngineSQL        = "sql"
)

// maxComplexDepth bounds the nesting of complex policies so a hostile policy cannot
// exhaust the stack at compile or evaluation time.
const maxComplexDepth = 16

// Link is a subject a policy applies to: a User or a Client.
type Link struct {
	Type string `json:"resourceType"`
	ID   string `json:"id"`
}

// Policy is a compiled AccessPolicy. It is immutable and safe for concurrent use.
type Policy struct {
	// ID is the AccessPolicy id ("" for a policy under test that was never stored).
	ID string
	// Engine is the engine named by the policy.
	Engine string
	// Links are the Users and Clients the policy applies to; none makes it global
	// (unless RoleName is set).
	Links []Link
	// RoleName applies the policy to Users that have this role.
	RoleName string

	rule  rule
	reads map[string]bool
	// compartment, when set, confines what the policy allows to the compartments it
	// names (compartment.go).
	compartment *compartmentSpec // request-object parts the rule may look at (see Reads)
}

// Reads reports whether the policy may look at the part key of the request object
// ("body", "params"). It errs towards true: false means evaluating the policy cannot
// depend on that part, so the part need not be read to evaluate it.
func (p *Policy) Reads(key string) bool {
	if p.reads == nil {
		return true
	}
	return p.reads[key]
}

// deferrable are the request-object parts that may be pending (Info.Pending).
var deferrable = []string{"body", "params"}

// wholeObjectKeywords are the JSON Schema keywords that can make a schema depend on a
// property it does not name (additionalProperties: false, a const of the whole object,
// ...): a json-schema policy using any of them may read every part.
var wholeObjectKeywords = []string{"additionalProperties", "patternProperties", "propertyNames",
	"unevaluatedProperties", "minProperties", "maxProperties", "const", "enum", "dependentSchemas",
	"dependencies", "$dynamicRef", "$recursiveRef"}

// readsOf finds the parts of the request object that the engine part of doc may read.
// A policy reaches a part of the request object only through its name (a matcho key or
// .path reference, a schema property, a {{.path}} placeholder), so a policy whose text
// never names "body" cannot depend on the body; JSON Schema's keywords that constrain
// unnamed properties are the exception, handled by wholeObjectKeywords.
func readsOf(doc map[string]any) map[string]bool {
	rule := map[string]any{}
	for k, v := range doc {
		switch k {
		case "id", "meta", "description", "link", "roleName", "resourceType", "text":
			continue
		}
		rule[k] = v
	}
	b, err := json.Marshal(rule)
	if err != nil {
		return nil // Reads answers true for everything
	}
	text := string(b)
	all := strings.Contains(text, `"engine":"`+EngineJSONSchema+`"`) && slices.ContainsFunc(wholeObjectKeywords, func(k string) bool {
		return strings.Contains(text, `"`+k+`"`)
	})
	reads := make(map[string]bool, len(deferrable))
	for _, part := range deferrable {
		reads[part] = all || strings.Contains(text, part)
	}
	return reads
}

// Global reports whether the policy applies to every request: it has neither links nor
// a role.
func (p *Policy) Global() bool { return len(p.Links) == 0 && p.RoleName == "" }

// Eval evaluates the policy alone against req. why says, when it did not allow, which
// part failed. An error is a failure to evaluate (a SQL policy whose query failed); it
// counts as a denial.
func (p *Policy) Eval(ctx context.Context, req *Request) (ok bool, why string, err error) {
	return p.rule.eval(ctx, req, true)
}

// rule is one compiled engine. Without explain, a rule may leave why empty: building
// it costs more than deciding, and only traces show it.
type rule interface {
	eval(ctx context.Context, req *Request, explain bool) (bool, string, error)
}

// SQLRunner runs the queries of sql policies; only PostgreSQL has one. Check validates a
// query with n parameters when a policy is written; Eval runs it read-only, with a short
// statement timeout, and returns its one boolean.
type SQLRunner interface {
	CheckPolicySQL(ctx context.Context, query string, nparams int) error
	EvalPolicySQL(ctx context.Context, query string, args []any) (bool, error)
}

// Compiler turns AccessPolicy documents into Policies.
type Compiler struct {
	// SQL runs sql policies; nil refuses them (the embedded database has no sql engine).
	SQL SQLRunner
}

// Compile validates doc (a decoded AccessPolicy) and compiles it. Every problem is a
// *resources.Error with CodeUnprocessable whose Expression names the field at fault, so
// that a broken policy can never be stored.
func (c *Compiler) Compile(ctx context.Context, doc map[string]any) (*Policy, error) {
	// Compile keeps parts of doc (patterns, schemas): work on a plain copy, so the caller
	// may go on using doc and numbers compare as float64.
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, invalid("engine", "the policy is not JSON: %v", err)
	}
	if doc, err = Decode(b); err != nil {
		return nil, invalid("engine", "the policy is not JSON: %v", err)
	}
	p := &Policy{}
	p.ID, _ = doc["id"].(string)
	var links []Link
	links, err = parseLinks(doc["link"])
	if err != nil {
		return nil, err
	}
	p.Links = links
	if rn, ok := doc["roleName"]; ok && rn != nil {
		s, ok := rn.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return nil, invalid("roleName", "roleName must be a non-empty string")
		}
		p.RoleName = s
	}
	p.Engine, _ = doc["engine"].(string)
	p.rule, err = c.compileRule(ctx, doc, "", 0)
	if err != nil {
		return nil, err
	}
	p.reads = readsOf(doc)
	if p.compartment, err = parseCompartment(doc["compartment"]); err != nil {
		return nil, err
	}
	return p, nil
}

// compileRule compiles the engine part of doc; path prefixes field names in errors
// ("and[1]." for a sub-policy of a complex one).
func (c *Compiler) compileRule(ctx context.Context, doc map[string]any, path string, depth int) (rule, error) {
	if depth > maxComplexDepth {
		return nil, invalid(path+"engine", "complex policies nest at most %d levels", maxComplexDepth)
	}
	raw, ok := doc["engine"]
	if !ok || raw == nil {
		return nil, invalid(path+"engine", "engine is required: one of allow, matcho, json-schema, complex, sql")
	}
	engine, ok := raw.(string)
	if !ok {
		return nil, invalid(path+"engine", "engine must be a string: one of allow, matcho, json-schema, complex, sql")
	}
	switch engine {
	case EngineAllow:
		return allowRule{}, nil
	case EngineMatcho:
		pat, ok := doc["matcho"]
		if !ok || pat == nil {
			return nil, invalid(path+"matcho", "the matcho engine needs a matcho pattern")
		}
		m, err := matcho.Compile(pat)
		if err != nil {
			return nil, invalid(path+"matcho", "%v", err)
		}
		return matchoRule{m}, nil
	case EngineJSONSchema:
		sch, ok := doc["schema"]
		if !ok || sch == nil {
			return nil, invalid(path+"schema", "the json-schema engine needs a schema")
		}
		r, err := compileSchema(sch)
		if err != nil {
			return nil, invalid(path+"schema", "invalid schema: %v", err)
		}
		return r, nil
	case EngineComplex:
		return c.compileComplex(ctx, doc, path, depth)
	case EngineSQL:
		if c.SQL == nil {
			return nil, invalid(path+"engine", "the sql engine needs PostgreSQL; this server runs on the embedded database")
		}
		return compileSQL(ctx, c.SQL, doc["sql"], path+"sql")
	}
	return nil, invalid(path+"engine", "unknown engine %q: one of allow, matcho, json-schema, complex, sql", engine)
}

func (c *Compiler) compileComplex(ctx context.Context, doc map[string]any, path string, depth int) (rule, error) {
	var r complexRule
	for _, op := range []string{"and", "or"} {
		raw, ok := doc[op]
		if !ok || raw == nil {
			continue
		}
		list, ok := raw.([]any)
		if !ok || len(list) == 0 {
			return nil, invalid(path+op, "%s must be a non-empty list of policies", op)
		}
		for i, item := range list {
			sub, ok := item.(map[string]any)
			if !ok {
				return nil, invalid(fmt.Sprintf("%s%s[%d]", path, op, i), "each entry of %s must be a policy (an object with an engine)", op)
			}
			sr, err := c.compileRule(ctx, sub, fmt.Sprintf("%s%s[%d].", path, op, i), depth+1)
			if err != nil {
				return nil, err
			}
			if op == "and" {
				r.and = append(r.and, sr)
			} else {
				r.or = append(r.or, sr)
			}
		}
	}
	if r.and == nil && r.or == nil {
		return nil, invalid(path+"and", "the complex engine needs and: [...] or or: [...]")
	}
	return r, nil
}

// parseLinks reads link entries in both reference forms: {resourceType, id} (as in the
// Aidbox docs) and {reference: "User/u1"}.
func parseLinks(raw any) ([]Link, error) {
	if raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, invalid("link", "link must be a list of references to Users or Clients")
	}
	links := make([]Link, 0, len(list))
	for i, item := range list {
		field := fmt.Sprintf("link[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			return nil, invalid(field, "a link is a reference: {resourceType: User, id: u1} or {reference: User/u1}")
		}
		var l Link
		if ref, ok := m["reference"].(string); ok {
			l.Type, l.ID, _ = strings.Cut(ref, "/")
		} else {
			l.Type, _ = m["resourceType"].(string)
			l.ID, _ = m["id"].(string)
		}
		if l.Type != "User" && l.Type != "Client" {
			return nil, invalid(field, "a link must name a User or a Client, got %q", l.Type)
		}
		if !resources.ValidID(l.ID) {
			return nil, invalid(field, "invalid id %q in link", l.ID)
		}
		links = append(links, l)
	}
	return links, nil
}

func invalid(field, format string, args ...any) *resources.Error {
	return &resources.Error{Code: resources.CodeUnprocessable, Message: "AccessPolicy." + field + ": " + fmt.Sprintf(format, args...), Expression: field}
}

// allowRule is the allow engine: always true.
type allowRule struct{}

func (allowRule) eval(context.Context, *Request, bool) (bool, string, error) { return true, "", nil }

// matchoRule is the matcho engine.
type matchoRule struct{ m *matcho.Pattern }

func (r matchoRule) eval(_ context.Context, req *Request, explain bool) (bool, string, error) {
	if !explain {
		return r.m.Matches(req.Object()), "", nil
	}
	ok, why := r.m.Match(req.Object())
	return ok, why, nil
}

// complexRule is the complex engine: every and-rule must allow and, when there are
// or-rules, at least one of them; both short-circuit.
type complexRule struct{ and, or []rule }

func (r complexRule) eval(ctx context.Context, req *Request, explain bool) (bool, string, error) {
	for i, sub := range r.and {
		ok, why, err := sub.eval(ctx, req, explain)
		if err != nil || !ok {
			if !explain {
				return false, "", err
			}
			return false, fmt.Sprintf("and[%d]: %s", i, whyOf(why, err)), err
		}
	}
	if len(r.or) == 0 {
		return true, "", nil
	}
	var whys []string
	var firstErr error
	for i, sub := range r.or {
		ok, why, err := sub.eval(ctx, req, explain)
		if err == nil && ok {
			return true, "", nil
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if explain {
			whys = append(whys, fmt.Sprintf("or[%d]: %s", i, whyOf(why, err)))
		}
	}
	// An or-branch that failed to evaluate is reported like an and-branch's: it is
	// logged and traced, not only folded into why.
	return false, strings.Join(whys, "; "), firstErr
}

func whyOf(why string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return why
}

// Decode reads an AccessPolicy's stored JSON.
func Decode(content []byte) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(content, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}
