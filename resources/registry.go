package resources

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParamType is a FHIR search parameter type.
type ParamType string

// Search parameter types supported by the engine. uri parameters are indexed as tokens
// without a system and matched exactly.
const (
	TypeString    ParamType = "string"
	TypeToken     ParamType = "token"
	TypeDate      ParamType = "date"
	TypeNumber    ParamType = "number"
	TypeQuantity  ParamType = "quantity"
	TypeReference ParamType = "reference"
	TypeURI       ParamType = "uri"
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

// Registry holds the known resource types. It is read-only after construction and safe
// for concurrent use.
type Registry struct {
	types map[string]*TypeDef
	names []string
}

//go:embed searchparams.yaml
var searchParamsYAML []byte

// registryFile is the shape of searchparams.yaml.
type registryFile struct {
	// Types lists the FHIR R4 resource types the server stores.
	Types []string `yaml:"types"`
	// Own lists fhirbox's own resource types (see TypeDef.Own).
	Own []string `yaml:"own"`
	// Secrets maps a type to its hashed, hidden fields.
	Secrets map[string][]string `yaml:"secrets"`
	// Hidden maps a type to the fields only the server writes and nobody reads.
	Hidden map[string][]string `yaml:"hidden"`
	// Common parameters apply to every type.
	Common []*SearchParam `yaml:"common"`
	// Params maps a type to its own parameters.
	Params map[string][]*SearchParam `yaml:"params"`
}

// DefaultRegistry returns the registry built from the embedded definitions
// (searchparams.yaml): every FHIR R4 resource type plus fhirbox's own (Client, User,
// Session, AccessPolicy, AuthorizationCode), marked Own.
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
	r := &Registry{types: map[string]*TypeDef{}}
	own := map[string]bool{}
	for _, name := range f.Own {
		own[name] = true
	}
	for _, name := range append(append([]string(nil), f.Types...), f.Own...) {
		if _, dup := r.types[name]; dup {
			return nil, fmt.Errorf("type %s listed twice", name)
		}
		td := &TypeDef{Name: name, Params: map[string]*SearchParam{}, Secret: f.Secrets[name], Hidden: f.Hidden[name], Own: own[name]}
		for _, p := range f.Common {
			cp := *p
			cp.Expression = strings.ReplaceAll(p.Expression, "Resource.", name+".")
			td.Params[p.Name] = &cp
		}
		r.types[name] = td
		r.names = append(r.names, name)
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
			td.Params[p.Name] = p
		}
	}
	sort.Strings(r.names)
	return r, nil
}

func checkParam(typ string, p *SearchParam) error {
	switch p.Type {
	case TypeString, TypeToken, TypeDate, TypeNumber, TypeQuantity, TypeReference, TypeURI:
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
	td, ok = r.types[name]
	return td, ok
}

// Types returns the names of every known type, fhirbox's own included, sorted.
func (r *Registry) Types() []string { return r.names }

// Own reports whether name is one of fhirbox's own types (see TypeDef.Own).
func (r *Registry) Own(name string) bool {
	td, ok := r.types[name]
	return ok && td.Own
}
