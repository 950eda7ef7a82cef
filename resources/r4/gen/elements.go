package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// sourceStructure is a StructureDefinition of the source, only the fields read.
type sourceStructure struct {
	Type           string `json:"type"`
	Version        string `json:"version"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	Derivation     string `json:"derivation"`
	BaseDefinition string `json:"baseDefinition"`
	Snapshot       struct {
		Element []struct {
			Path string `json:"path"`
			Min  int    `json:"min"`
			Max  string `json:"max"`
			Type []struct {
				Code          string   `json:"code"`
				TargetProfile []string `json:"targetProfile"`
				Extension     []struct {
					URL         string `json:"url"`
					ValueString string `json:"valueString"`
				} `json:"extension"`
			} `json:"type"`
			ContentReference string `json:"contentReference"`
			Binding          *struct {
				Strength string `json:"strength"`
				ValueSet string `json:"valueSet"`
			} `json:"binding"`
		} `json:"element"`
	} `json:"snapshot"`
}

// The prefixes the source writes before type names: FHIRPath's system types (the
// values inside primitive types) and FHIR's StructureDefinitions (reference targets).
const (
	systemTypePrefix = "http://hl7.org/fhirpath/"
	structurePrefix  = "http://hl7.org/fhir/StructureDefinition/"
	// regexExtension carries, on the type of a primitive type's value element, the
	// regular expression its values match.
	regexExtension = "http://hl7.org/fhir/StructureDefinition/regex"
)

// buildElements reduces the R4 StructureDefinitions of the data types and resource
// types (the kinds a document is made of; profiles, logical models and definitions
// of other versions are left out) to their snapshots' elements.
func buildElements(types, resources []byte) (*r4.Elements, error) {
	out := &r4.Elements{Source: pkgName + "@" + pkgVersion, FHIRVersion: fhirVersion}
	seen := map[string]bool{}
	for _, f := range []struct {
		path string
		data []byte
	}{{typesPath, types}, {profilesPath, resources}} {
		var b bundle
		if err := json.Unmarshal(f.data, &b); err != nil {
			return nil, fmt.Errorf("%s: %w", f.path, err)
		}
		for _, e := range b.Entry {
			// Other kinds of resource use the names differently (an OperationDefinition's
			// type is a boolean): the kind is read first.
			var kind struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(e.Resource, &kind); err != nil {
				return nil, fmt.Errorf("%s: %w", f.path, err)
			}
			if kind.ResourceType != "StructureDefinition" {
				continue
			}
			var d sourceStructure
			if err := json.Unmarshal(e.Resource, &d); err != nil {
				return nil, fmt.Errorf("%s: %w", f.path, err)
			}
			if d.Version != fhirVersion || d.Derivation == "constraint" {
				continue
			}
			switch d.Kind {
			case "resource", "complex-type", "primitive-type":
			default:
				continue
			}
			if seen[d.Type] {
				return nil, fmt.Errorf("%s: two definitions of %s", f.path, d.Type)
			}
			seen[d.Type] = true
			s := r4.Structure{Name: d.Type, Kind: d.Kind, Abstract: d.Abstract, Base: strings.TrimPrefix(d.BaseDefinition, structurePrefix)}
			if len(d.Snapshot.Element) == 0 || d.Snapshot.Element[0].Path != d.Type {
				return nil, fmt.Errorf("%s: %s has no snapshot rooted at its type", f.path, d.Type)
			}
			for _, se := range d.Snapshot.Element {
				el := r4.Element{Path: se.Path, Min: se.Min, Max: se.Max, ContentReference: strings.TrimPrefix(se.ContentReference, "#")}
				if b := se.Binding; b != nil && b.Strength == "required" && b.ValueSet != "" {
					el.Binding = strings.Split(b.ValueSet, "|")[0] // the package holds 4.0.1's
				}
				for _, t := range se.Type {
					if d.Kind == "primitive-type" && se.Path == d.Type+".value" {
						for _, x := range t.Extension {
							if x.URL == regexExtension {
								s.Regex = x.ValueString
							}
						}
					}
					el.Types = append(el.Types, strings.TrimPrefix(t.Code, systemTypePrefix))
					for _, p := range t.TargetProfile {
						name := strings.TrimPrefix(p, structurePrefix)
						if !contains(el.Targets, name) {
							el.Targets = append(el.Targets, name)
						}
					}
				}
				if se.Path == d.Type {
					el.Types = nil // the root's "type" is its own name or none
				}
				s.Elements = append(s.Elements, el)
			}
			out.Structures = append(out.Structures, s)
		}
	}
	sort.Slice(out.Structures, func(i, j int) bool { return out.Structures[i].Name < out.Structures[j].Name })
	for _, s := range out.Structures {
		for _, el := range s.Elements {
			if el.ContentReference != "" && !hasPath(s, el.ContentReference) {
				return nil, fmt.Errorf("%s: content reference %s names no element", el.Path, el.ContentReference)
			}
		}
	}
	return out, nil
}

func hasPath(s r4.Structure, path string) bool {
	for _, el := range s.Elements {
		if el.Path == path {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// encodeElements writes els as compact JSON, one structure or value set a line.
func encodeElements(els *r4.Elements) ([]byte, error) {
	head := *els
	head.Structures, head.ValueSets, head.Unexpanded = nil, nil, nil
	h, err := marshal(head)
	if err != nil {
		return nil, err
	}
	const tail = `"valueSets":null,"unexpanded":null,"structures":null}`
	if !bytes.HasSuffix(h, []byte(tail)) {
		return nil, errors.New("encode: the lists are not at the end")
	}
	var buf bytes.Buffer
	buf.Write(h[:len(h)-len(tail)])
	list := func(name string, n int, item func(int) any, last bool) error {
		buf.WriteString(`"` + name + "\":[\n")
		for i := 0; i < n; i++ {
			line, err := marshal(item(i))
			if err != nil {
				return err
			}
			buf.Write(line)
			if i < n-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString("]")
		if !last {
			buf.WriteString(",\n")
		}
		return nil
	}
	if err := list("valueSets", len(els.ValueSets), func(i int) any { return els.ValueSets[i] }, false); err != nil {
		return nil, err
	}
	if err := list("unexpanded", len(els.Unexpanded), func(i int) any { return els.Unexpanded[i] }, false); err != nil {
		return nil, err
	}
	if err := list("structures", len(els.Structures), func(i int) any { return els.Structures[i] }, true); err != nil {
		return nil, err
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}
