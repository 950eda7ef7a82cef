package resources

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
)

// storedDocs are documents whose shapes the partial decoding must follow: choice
// elements, contained resources that resolve() reads, extensions, duplicate members.
var storedDocs = []string{
	`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},
	  "contained":[{"resourceType":"Patient","id":"c1"}],"subject":{"reference":"Patient/p1"},
	  "performer":[{"reference":"#c1"},{"reference":"Practitioner/d1"},{"reference":"https://h/fhir/Patient/p2/_history/3"}],
	  "valueQuantity":{"value":3.5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"},
	  "component":[{"code":{"text":"a"},"valueCodeableConcept":{"coding":[{"code":"v"}]}}],
	  "effectivePeriod":{"start":"2020-01-01","end":"2020-02-01"},"meta":{"tag":[{"code":"t"}],"profile":["http://p"]}}`,
	`{"resourceType":"Patient","id":"p1","name":[{"family":"Doe","given":["J"]}],"link":[{"other":{"reference":"Patient/p2"},"type":"seealso"}],
	  "extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"text","valueString":"x"}]}],
	  "deceasedDateTime":"2021-03-04","birthDate":"1970","telecom":[{"system":"email","value":"a@b"}],"gender":"female"}`,
	`{"resourceType":"Observation","id":"o2","subject":{"reference":"Patient/p1"},"subject":{"reference":"Patient/p9"},"valueString":"last wins"}`,
}

// extractStored decodes only the elements a parameter's expression reads, yet indexes
// as the whole document does: every parameter of Patient and Observation, alone and
// all together, over the Synthea sample and documents of awkward shapes.
func TestExtractStored(t *testing.T) {
	reg := DefaultRegistry()
	var raws [][]byte
	for _, s := range storedDocs {
		raws = append(raws, []byte(s))
	}
	for _, file := range []string{"patients.ndjson", "observations.ndjson"} {
		docs := loadNDJSON(t, file)
		for _, id := range slices.Sorted(maps.Keys(docs))[:min(300, len(docs))] {
			raw, err := json.Marshal(docs[id])
			if err != nil {
				t.Fatal(err)
			}
			raws = append(raws, raw)
		}
	}
	partial := 0
	for _, typ := range []string{"Patient", "Observation"} {
		td, _ := reg.Type(typ)
		var all []string
		for _, p := range td.indexed {
			all = append(all, p.Name)
			if p.elementsOK {
				partial++
			}
		}
		for _, raw := range raws {
			var doc map[string]any
			if err := decodeNumbers(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if doc["resourceType"] != typ {
				continue
			}
			for _, names := range append([][]string{all}, splitNames(all)...) {
				want, err := extract(td, doc, paramsNamed(td, names))
				if err != nil {
					t.Fatal(err)
				}
				got, err := reg.extractStored(typ, raw, names)
				if err != nil {
					t.Fatalf("%s %v: %v", typ, names, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s %v of %s:\n got %+v\nwant %+v", typ, names, raw, got, want)
				}
			}
		}
	}
	// The test means something only if most parameters are decoded partially.
	if partial < 50 {
		t.Errorf("only %d parameters of Patient and Observation read named elements alone", partial)
	}
	if _, err := reg.extractStored("Observation", []byte(`{"subject":`), []string{"subject"}); err == nil {
		t.Error("a broken document was indexed")
	}
}

// splitNames returns each name alone.
func splitNames(names []string) [][]string {
	out := make([][]string, len(names))
	for i, n := range names {
		out[i] = []string{n}
	}
	return out
}

// paramsNamed returns td's indexed parameters named in names.
func paramsNamed(td *TypeDef, names []string) []*SearchParam {
	var out []*SearchParam
	for _, p := range td.indexed {
		if slices.Contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// FuzzExtractStored: whatever the document, the partial decoding indexes a
// confinement's parameters as the whole document does.
func FuzzExtractStored(f *testing.F) {
	for _, s := range storedDocs {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"resourceType":"Observation","subject":[1,{"reference":"Patient/x"}],"performer":"Patient/y","contained":{"id":"c"}}`))
	reg := DefaultRegistry()
	f.Fuzz(func(t *testing.T, raw []byte) {
		var doc map[string]any
		if !json.Valid(raw) || decodeNumbers(raw, &doc) != nil || doc == nil {
			return // stored documents are one JSON object
		}
		for _, typ := range []string{"Patient", "Observation"} {
			td, _ := reg.Type(typ)
			names := append(CompartmentParams("Patient", typ), "code", "value-quantity", "_tag", "name")
			want, werr := extract(td, doc, paramsNamed(td, names))
			got, err := reg.extractStored(typ, raw, names)
			if (err != nil) != (werr != nil) {
				t.Fatalf("%s: error %v, whole document: %v", typ, err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%s of %s:\n got %+v\nwant %+v", typ, raw, got, want)
			}
		}
	})
}
