package resources

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/fhirbox/fhirbox/resources/fhirpath"
	"github.com/fhirbox/fhirbox/resources/r4"
)

// ParamType is a FHIR search parameter type.
type ParamType string

// Search parameter types (FHIR R4 SearchParamType). uri parameters are indexed as
// tokens without a system and matched exactly.
const (
	TypeString    ParamType = "string"
	TypeToken     ParamType = "token"
	TypeDate      ParamType = "date"
	TypeNumber    ParamType = "number"
	TypeQuantity  ParamType = "quantity"
	TypeReference ParamType = "reference"
	TypeURI       ParamType = "uri"
	// TypeComposite combines the values of other parameters taken from one element
	// (Observation component-code-value-quantity: a component's code and its value).
	TypeComposite ParamType = "composite"
	// TypeSpecial is a parameter with its own search logic (R4 has one: Location near).
	TypeSpecial ParamType = "special"
)

// SearchParam is the definition of one search parameter: data, not code. The engine
// indexes the values that Expression selects and the parser reads queries by Type.
type SearchParam struct {
	Name string    `yaml:"name"`
	Type ParamType `yaml:"type"`
	// Expression selects the values: FHIRPath-like paths joined by "|", each starting
	// with the resource type (or "Resource" for common parameters), with optional
	// .where(field='value') filters, e.g. "Patient.telecom.where(system='email')".
	Expression string `yaml:"expression"`
	// Targets restricts reference parameters to these resource types (empty: any).
	Targets []string `yaml:"targets,omitempty"`
	// Column names a column of the resource table that the parameter reads instead of the
	// index ("id" for _id, "last_updated" for _lastUpdated).
	Column string `yaml:"column,omitempty"`
	// Description is shown in the CapabilityStatement.
	Description string `yaml:"description,omitempty"`
	// Internal parameters are indexed for the server's own look-ups (a token's hash) and
	// are neither searchable through the API nor shown in the CapabilityStatement.
	Internal bool `yaml:"internal,omitempty"`
	// URL is the canonical URL of the definition (R4's, or a SearchParameter resource's).
	URL string `yaml:"url,omitempty"`
	// Components are the parts of a composite parameter, in order.
	Components []Component `yaml:"components,omitempty"`

	// expr is Expression compiled for the type the parameter is registered on (the
	// branches of other types pruned); nil for column parameters.
	expr *fhirpath.Expr
	// indexing is set on a parameter of a SearchParameter resource whose existing
	// resources are still being indexed (see custom.go): searches on it are incomplete.
	indexing bool
	// elements are the top-level elements of the resource that expr reads, when
	// elementsOK (fhirpath.Expr.Elements; never for composite and special parameters,
	// whose components derived.go evaluates on its own terms): extractStored decodes
	// those alone.
	elements   []string
	elementsOK bool
	// ranged is set on a quantity parameter whose expression names Range (R4's
	// "onset.as(Range)", "useContext.value as Range", a path through referenceRange):
	// its Range values are indexed and searched as ranges (see range.go).
	ranged bool
}

// Indexing reports whether the parameter's index is still being built for the
// resources that existed before it was defined: a search on it may miss some.
func (p *SearchParam) Indexing() bool { return p.indexing }

// Component is one part of a composite parameter: the code and type of the parameter
// that gives it meaning, and the expression that selects its value from each element
// the composite's own expression selects.
type Component struct {
	Code       string    `yaml:"code"`
	Type       ParamType `yaml:"type"`
	Expression string    `yaml:"expression"`
	expr       *fhirpath.Expr
}

// compile parses p's expression (and its components') for type typ.
func (p *SearchParam) compile(typ string) error {
	if p.Expression == "" {
		return nil
	}
	e, err := fhirpath.Parse(p.Expression)
	if err != nil {
		return err
	}
	p.expr = e.ForType(typ)
	p.ranged = selectsRanges(p.Type, p.Expression)
	p.readElements()
	for i := range p.Components {
		c := &p.Components[i]
		if c.expr, err = fhirpath.Parse(c.Expression); err != nil {
			return fmt.Errorf("component %s: %w", c.Code, err)
		}
	}
	return nil
}

// readElements sets the elements p's expression reads.
func (p *SearchParam) readElements() {
	p.elements, p.elementsOK = nil, false
	if p.expr != nil && p.Type != TypeComposite && p.Type != TypeSpecial {
		p.elements, p.elementsOK = p.expr.Elements()
	}
}

// TypeDef describes one resource type: its search parameters and the fields the engine
// treats specially.
type TypeDef struct {
	Name   string
	Params map[string]*SearchParam
	// Secret lists top-level fields that are hashed (bcrypt) before storage and removed
	// from every response, e.g. Client.secret and User.password.
	Secret []string
	// Hidden lists top-level fields that only the server itself writes (see WithTrusted)
	// and that are removed from every response, e.g. the token hashes of a Session.
	Hidden []string
	// Own marks fhirbox's own types (Client, User, Session, AccessPolicy, …), which are
	// not FHIR R4 types and so have no place under the FHIR base.
	Own bool
	// indexed lists the parameters with an expression, sorted by name: what Extract
	// evaluates for every write of the type.
	indexed []*SearchParam
}

// Param returns the public parameter called name, or nil (internal ones included: nil).
func (t *TypeDef) Param(name string) *SearchParam {
	if p := t.Params[name]; p != nil && !p.Internal {
		return p
	}
	return nil
}

// InternalParam returns the parameter called name, internal or not, or nil.
func (t *TypeDef) InternalParam(name string) *SearchParam { return t.Params[name] }

// ParamNames returns the type's public parameter names, sorted.
func (t *TypeDef) ParamNames() []string { return t.paramNames(false) }

// allParamNames returns every parameter name, internal ones included, sorted.
func (t *TypeDef) allParamNames() []string { return t.paramNames(true) }

func (t *TypeDef) paramNames(internal bool) []string {
	names := make([]string, 0, len(t.Params))
	for n, p := range t.Params {
		if p.Internal && !internal {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Registry holds the known resource types. It is safe for concurrent use, and changes
// at run time only as SearchParameter resources come and go (custom.go): every change
// builds a new snapshot of the types and swaps it in whole (copy on write), so a
// reader takes one snapshot without a lock and a TypeDef, once read, never changes.
type Registry struct {
	cur atomic.Pointer[registryTypes]
	// mu serialises changes; base is the snapshot as built from the definitions, and
	// custom the parameters of SearchParameter resources, by resource id, that every
	// new snapshot adds to it.
	mu     sync.Mutex
	base   *registryTypes
	custom map[string]*CustomParam
}

// registryTypes is one snapshot of the types, never changed once published.
type registryTypes struct {
	types map[string]*TypeDef
	names []string
}

//go:embed searchparams.yaml
var searchParamsYAML []byte

// registryFile is the shape of searchparams.yaml.
type registryFile struct {
	// R4 adds every FHIR R4 resource type with every R4 search parameter, from the
	// official definitions embedded in resources/r4.
	R4 bool `yaml:"r4"`
	// Types lists further resource types (tests use their own).
	Types []string `yaml:"types"`
	// Own lists fhirbox's own resource types (see TypeDef.Own).
	Own []string `yaml:"own"`
	// Secrets maps a type to its hashed, hidden fields.
	Secrets map[string][]string `yaml:"secrets"`
	// Hidden maps a type to the fields only the server writes and nobody reads.
	Hidden map[string][]string `yaml:"hidden"`
	// Common parameters apply to every type listed in Types and Own (the R4 types have
	// R4's).
	Common []*SearchParam `yaml:"common"`
	// Params maps a type to its own parameters.
	Params map[string][]*SearchParam `yaml:"params"`
}

// DefaultRegistry returns the registry built from the embedded definitions: every FHIR
// R4 resource type with every R4 search parameter (resources/r4), plus fhirbox's own
// types (Client, User, Session, AccessPolicy, AuthorizationCode) from searchparams.yaml,
// marked Own.
func DefaultRegistry() *Registry {
	r, err := LoadRegistry(searchParamsYAML)
	if err != nil {
		panic("resources: embedded searchparams.yaml: " + err.Error())
	}
	return r
}

// LoadRegistry builds a registry from definitions in the searchparams.yaml format.
func LoadRegistry(data []byte) (*Registry, error) {
	var f registryFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	r := &registryTypes{types: map[string]*TypeDef{}}
	if f.R4 {
		defs, err := r4Types()
		if err != nil {
			return nil, err
		}
		for _, td := range defs {
			cp := *td
			cp.Params = make(map[string]*SearchParam, len(td.Params))
			for k, v := range td.Params {
				cp.Params[k] = v
			}
			r.types[td.Name] = &cp
			r.names = append(r.names, td.Name)
		}
	}
	own := map[string]bool{}
	for _, name := range f.Own {
		own[name] = true
	}
	for _, name := range append(append([]string(nil), f.Types...), f.Own...) {
		if _, dup := r.types[name]; dup {
			return nil, fmt.Errorf("type %s listed twice", name)
		}
		td := &TypeDef{Name: name, Params: map[string]*SearchParam{}, Own: own[name]}
		for _, p := range f.Common {
			cp := *p
			cp.Expression = strings.ReplaceAll(p.Expression, "Resource.", name+".")
			if err := cp.compile(name); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, p.Name, err)
			}
			td.Params[p.Name] = &cp
		}
		r.types[name] = td
		r.names = append(r.names, name)
	}
	for name, td := range r.types {
		td.Secret, td.Hidden = f.Secrets[name], f.Hidden[name]
	}
	for typ, params := range f.Params {
		td, ok := r.types[typ]
		if !ok {
			return nil, fmt.Errorf("parameters for unknown type %s", typ)
		}
		for _, p := range params {
			if err := checkParam(typ, p); err != nil {
				return nil, err
			}
			if _, dup := td.Params[p.Name]; dup {
				return nil, fmt.Errorf("%s: parameter %s defined twice", typ, p.Name)
			}
			if err := p.compile(typ); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", typ, p.Name, err)
			}
			td.Params[p.Name] = p
		}
	}
	for _, td := range r.types {
		td.index()
	}
	sort.Strings(r.names)
	reg := &Registry{base: r, custom: map[string]*CustomParam{}}
	reg.cur.Store(r)
	return reg, nil
}

// index lists td's parameters that Extract evaluates, sorted by name.
func (td *TypeDef) index() {
	td.indexed = td.indexed[:0:0]
	for _, name := range td.allParamNames() {
		if p := td.Params[name]; p.Column == "" && p.expr != nil {
			td.indexed = append(td.indexed, p)
		}
	}
}

// r4Types returns the R4 resource types with their parameters, built once: the
// parameters are shared, read-only, by every registry.
var r4Types = sync.OnceValues(func() ([]*TypeDef, error) {
	defs, err := r4.Load()
	if err != nil {
		return nil, err
	}
	byType := defs.ForTypes()
	var out []*TypeDef
	for _, rt := range defs.ResourceTypes {
		td := &TypeDef{Name: rt.Name, Params: map[string]*SearchParam{}}
		for _, d := range byType[rt.Name] {
			p, err := r4Param(rt.Name, d)
			if err != nil {
				return nil, err
			}
			if p == nil {
				continue
			}
			if _, dup := td.Params[p.Name]; dup {
				return nil, fmt.Errorf("r4: %s: parameter %s defined twice", rt.Name, p.Name)
			}
			td.Params[p.Name] = p
		}
		out = append(out, td)
	}
	return out, nil
})

// describeFor returns the part of an R4 description that concerns typ: a parameter
// shared by several types is described as "Multiple Resources:" and a line
// "* [Patient](patient.html): Gender of the patient" per type.
func describeFor(typ, desc string) string {
	if !strings.HasPrefix(desc, "Multiple Resources:") {
		return desc
	}
	prefix := "* [" + typ + "]("
	for _, line := range strings.Split(desc, "\n") {
		if strings.HasPrefix(line, prefix) {
			if _, text, ok := strings.Cut(line, "): "); ok {
				return strings.TrimSpace(text)
			}
		}
	}
	return desc
}

// r4Param converts one R4 definition for type typ; nil for the ones the search engine
// handles by name rather than by expression (_text, _content, _query).
func r4Param(typ string, d r4.SearchParameter) (*SearchParam, error) {
	p := &SearchParam{
		Name:        d.Code,
		Type:        ParamType(d.Type),
		Expression:  d.Expression,
		Targets:     d.Target,
		Description: describeFor(typ, d.Description),
		URL:         d.URL,
	}
	switch d.Code {
	case "_id":
		p.Column, p.Expression = "id", ""
	case "_lastUpdated":
		p.Column, p.Expression = "last_updated", ""
	}
	if p.Column == "" && p.Expression == "" {
		return nil, nil
	}
	for _, c := range d.Component {
		p.Components = append(p.Components, Component{Code: c.Code, Type: ParamType(c.Type), Expression: c.Expression})
	}
	if d.ID == "DocumentReference-relationship" && len(p.Components) == 2 && p.Components[0].Expression == "code" {
		// R4 4.0.1 reads the reference from relatesTo.code and the code from
		// relatesTo.target, so the parameter could never match; R4B swapped them back.
		p.Components[0].Expression, p.Components[1].Expression = "target", "code"
	}
	if err := p.compile(typ); err != nil {
		return nil, fmt.Errorf("r4: %s.%s: %w", typ, p.Name, err)
	}
	if p.Column == "" && p.expr == nil {
		return nil, fmt.Errorf("r4: %s.%s: no branch of %q applies to %s", typ, p.Name, p.Expression, typ)
	}
	return p, nil
}

func checkParam(typ string, p *SearchParam) error {
	switch p.Type {
	case TypeString, TypeToken, TypeDate, TypeNumber, TypeQuantity, TypeReference, TypeURI, TypeComposite, TypeSpecial:
	default:
		return fmt.Errorf("%s.%s: unknown type %q", typ, p.Name, p.Type)
	}
	if p.Expression == "" && p.Column == "" {
		return fmt.Errorf("%s.%s: no expression", typ, p.Name)
	}
	for _, path := range strings.Split(p.Expression, "|") {
		if path = strings.TrimSpace(path); path != "" && !strings.HasPrefix(path, typ+".") {
			return fmt.Errorf("%s.%s: path %q does not start with %s", typ, p.Name, path, typ)
		}
	}
	return nil
}

// Type returns the definition of a resource type; ok is false for unknown types.
func (r *Registry) Type(name string) (td *TypeDef, ok bool) {
	td, ok = r.cur.Load().types[name]
	return td, ok
}

// Types returns the names of every known type, fhirbox's own included, sorted.
func (r *Registry) Types() []string { return r.cur.Load().names }

// Own reports whether name is one of fhirbox's own types (see TypeDef.Own).
func (r *Registry) Own(name string) bool {
	td, ok := r.Type(name)
	return ok && td.Own
}
