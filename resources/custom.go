package resources

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/fhirbox/fhirbox/resources/fhirpath"
)

// SearchParameterType is the resource type whose instances define search parameters of
// their own: each one written to the server adds a parameter to every type of its base.
const SearchParameterType = "SearchParameter"

// CustomParam is the search parameter a SearchParameter resource defines: one
// SearchParam for each type of its base.
type CustomParam struct {
	// ID and Version are the SearchParameter resource's.
	ID      string
	Version int64
	// Code is the name searches use; Base the types it applies to.
	Code string
	Base []string
	Type ParamType
	// Expression, Targets, URL and Description are the resource's expression, target,
	// url and description.
	Expression  string
	Targets     []string
	URL         string
	Description string
	// Active is false while the resources that existed before the definition are being
	// indexed (the SearchParameter's status is draft): searches on it are incomplete.
	Active bool

	params map[string]*SearchParam // by base type, compiled for it
}

// Definition is what decides the index the parameter makes: two CustomParams with the
// same Definition index alike (a new description or status needs no reindex).
func (c *CustomParam) Definition() string {
	return strings.Join([]string{c.Code, strings.Join(c.Base, ","), string(c.Type), c.Expression, strings.Join(c.Targets, ",")}, "\x00")
}

// customCode is the syntax of a parameter code written in a SearchParameter: a name that
// a query string can carry without escaping and that no search syntax reads into (no
// ':' of modifiers, '.' of chains, '_' of the control parameters in front).
var customCode = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)

// customTypes are the parameter types a SearchParameter written to the server may have:
// the ones the index and the search engine handle from an expression alone.
var customTypes = []ParamType{TypeString, TypeToken, TypeDate, TypeNumber, TypeQuantity, TypeReference, TypeURI}

// ParseSearchParameter reads the search parameter that the SearchParameter document doc
// defines and checks it against the registry: a CodeUnprocessable error naming the
// element for a code that is missing, malformed or taken on one of the base types
// (by a built-in parameter, or by another SearchParameter, whichever its id), a base
// that is no known FHIR type, a type outside string, token, date, number, quantity,
// reference and uri (composite and special are refused), an expression that does not
// parse or selects nothing from one of the base types, or an unknown target. id is the
// resource's id (the parameters it defined already are no clash).
func (r *Registry) ParseSearchParameter(id string, doc map[string]any) (*CustomParam, error) {
	c, err := r.parseSearchParameter(id, doc)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.clash(c); err != nil {
		return nil, badParam("code", "%s", err.Error())
	}
	return c, nil
}

func badParam(expr, format string, args ...any) error {
	return &Error{Code: CodeUnprocessable, Message: "SearchParameter." + expr + ": " + fmt.Sprintf(format, args...), Expression: expr}
}

// parseSearchParameter is ParseSearchParameter without the check for clashes.
func (r *Registry) parseSearchParameter(id string, doc map[string]any) (*CustomParam, error) {
	bad := badParam
	c := &CustomParam{ID: id}
	var ok bool
	if c.Code, ok = doc["code"].(string); !ok || c.Code == "" {
		return nil, bad("code", "required: the name that searches use, e.g. mothers-maiden-name")
	}
	if !customCode.MatchString(c.Code) {
		return nil, bad("code", "%q is not a parameter name fhirbox can search by: a letter, then up to 63 letters, digits and '-'", c.Code)
	}
	var err error
	if c.Base, err = stringList(doc["base"]); err != nil || len(c.Base) == 0 {
		return nil, bad("base", "required: a list of resource types, e.g. [Patient]")
	}
	for _, b := range c.Base {
		td, known := r.Type(b)
		switch {
		case b == "Resource" || b == "DomainResource":
			return nil, bad("base", "%s is not supported: list the resource types the parameter applies to", b)
		case !known:
			return nil, bad("base", "unknown resource type %q", b)
		case td.Own:
			return nil, bad("base", "%s is one of fhirbox's own types, which take no SearchParameters", b)
		}
	}
	c.Base = sortedUnique(c.Base)
	t, _ := doc["type"].(string)
	c.Type = ParamType(t)
	switch {
	case t == "":
		return nil, bad("type", "required: one of %s", typeList(customTypes))
	case c.Type == TypeComposite || c.Type == TypeSpecial:
		return nil, bad("type", "%s parameters cannot be defined by a SearchParameter on fhirbox: only %s", t, typeList(customTypes))
	case !slices.Contains(customTypes, c.Type):
		return nil, bad("type", "%q is not a search parameter type: one of %s", t, typeList(customTypes))
	}
	if doc["component"] != nil {
		return nil, bad("component", "components belong to composite parameters, which a SearchParameter cannot define on fhirbox")
	}
	if c.Expression, ok = doc["expression"].(string); !ok || strings.TrimSpace(c.Expression) == "" {
		return nil, bad("expression", "required: the FHIRPath expression that selects the values, e.g. Patient.extension('http://…').value")
	}
	e, err := fhirpath.Parse(c.Expression)
	if err != nil {
		return nil, bad("expression", "%v", err)
	}
	if doc["target"] != nil {
		if c.Targets, err = stringList(doc["target"]); err != nil {
			return nil, bad("target", "a list of resource types")
		}
		if c.Type != TypeReference && len(c.Targets) > 0 {
			return nil, bad("target", "only reference parameters have targets")
		}
		for _, tt := range c.Targets {
			if _, known := r.Type(tt); !known {
				return nil, bad("target", "unknown resource type %q", tt)
			}
		}
		c.Targets = sortedUnique(c.Targets)
	}
	c.URL, _ = doc["url"].(string)
	c.Description, _ = doc["description"].(string)
	c.Active = doc["status"] == "active"
	c.params = map[string]*SearchParam{}
	for _, b := range c.Base {
		x := e.ForType(b)
		if x == nil {
			return nil, bad("expression", "%q selects nothing from %s: its paths start from other types", c.Expression, b)
		}
		sp := &SearchParam{
			Name: c.Code, Type: c.Type, Expression: c.Expression, Targets: c.Targets,
			Description: c.Description, URL: c.URL, expr: x, ranged: selectsRanges(c.Type, c.Expression),
		}
		sp.readElements()
		c.params[b] = sp
	}
	return c, nil
}

// clash says why c cannot join the registry: its code is taken on one of its base
// types. Built-in parameters are never replaced (a SearchParameter that redefined R4's
// Patient.name would change what every existing search means, on every server, with
// no way back but deleting it), and two SearchParameters never share a code on a type.
// r.mu is held.
func (r *Registry) clash(c *CustomParam) error {
	for _, b := range c.Base {
		if p := r.base.types[b].Params[c.Code]; p != nil {
			return fmt.Errorf("%s already has a built-in search parameter %q (%s); a SearchParameter cannot replace it: choose another code", b, c.Code, p.Type)
		}
		for _, o := range r.custom {
			if o.ID != c.ID && o.Code == c.Code && slices.Contains(o.Base, b) {
				return fmt.Errorf("%s already has the search parameter %q of SearchParameter/%s: choose another code, or change that one", b, c.Code, o.ID)
			}
		}
	}
	return nil
}

// SetCustom adds the parameters of c to the registry, replacing those the same
// SearchParameter (c.ID) defined before; a clash (see ParseSearchParameter) is a
// CodeUnprocessable error and changes nothing.
func (r *Registry) SetCustom(c *CustomParam) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.clash(c); err != nil {
		return &Error{Code: CodeUnprocessable, Message: err.Error(), Expression: "code"}
	}
	r.custom[c.ID] = c
	r.rebuild()
	return nil
}

// RemoveCustom removes the parameters of the SearchParameter id and returns what it
// defined (nil: nothing).
func (r *Registry) RemoveCustom(id string) *CustomParam {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.custom[id]
	if c != nil {
		delete(r.custom, id)
		r.rebuild()
	}
	return c
}

// Custom returns what the SearchParameter id defines in the registry, nil if nothing.
// The CustomParam is the registry's: read it, never change it.
func (r *Registry) Custom(id string) *CustomParam {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.custom[id]
}

// Customs returns the parameters of every SearchParameter in the registry, by id.
func (r *Registry) Customs() []*CustomParam {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*CustomParam, 0, len(r.custom))
	for _, c := range r.custom {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// rebuild publishes a new snapshot: the base types with the custom parameters added.
// Only the types that take one are copied; the others are shared with the base.
// r.mu is held.
func (r *Registry) rebuild() {
	next := &registryTypes{types: make(map[string]*TypeDef, len(r.base.types)), names: r.base.names}
	for k, v := range r.base.types {
		next.types[k] = v
	}
	copied := map[string]*TypeDef{}
	ids := make([]string, 0, len(r.custom))
	for id := range r.custom {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := r.custom[id]
		for typ, p := range c.params {
			td := copied[typ]
			if td == nil {
				cp := *next.types[typ]
				cp.Params = make(map[string]*SearchParam, len(cp.Params)+1)
				for k, v := range next.types[typ].Params {
					cp.Params[k] = v
				}
				td = &cp
				copied[typ] = td
				next.types[typ] = td
			}
			sp := *p
			sp.indexing = !c.Active
			td.Params[sp.Name] = &sp
		}
	}
	for _, td := range copied {
		td.index()
	}
	r.cur.Store(next)
}

// stringList reads a JSON array of strings.
func stringList(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not a list")
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("not a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return slices.Compact(s)
}

func typeList(ts []ParamType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// indexing notes that the search uses sp while its index is still being built: in
// lenient mode a warning on the answer, which may miss resources written before the
// parameter was defined; with handling=strict a CodeConflict error (409), since the
// answer could not be complete. Each parameter is noted once.
func (p *searchParser) indexing(name string, sp *SearchParam) error {
	if !sp.indexing {
		return nil
	}
	msg := fmt.Sprintf("search parameter %s of %s is being indexed: resources written before it was defined may be missing from the results until its SearchParameter's status is active", sp.Name, p.td.Name)
	if p.opts.Strict {
		return &Error{Code: CodeConflict, Message: msg + " (Prefer: handling=strict refuses an incomplete answer; try again later)", Expression: name}
	}
	if !slices.Contains(p.q.Warnings, msg) {
		p.q.Warnings = append(p.q.Warnings, msg)
	}
	return nil
}
