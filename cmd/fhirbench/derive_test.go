package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a small Synthea-shaped sample, so the tests need no shared data.
func fixture(t *testing.T) *Source {
	t.Helper()
	var pats, obs strings.Builder
	families := []string{"Smith", "Smithers", "Haley", "Escobar", "Von"}
	for i, f := range families {
		fmt.Fprintf(&pats, `{"resourceType":"Patient","id":"src-%d","identifier":[`+
			`{"system":"https://github.com/synthetichealth/synthea","value":"c1eebdbf-4e33-43a0-a8fe-467287bd6e6%d"},`+
			`{"system":"http://hospital.smarthealthit.org","value":"c1eebdbf-4e33-43a0-a8fe-467287bd6e6%d"},`+
			`{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-95-610%d"}],`+
			`"name":[{"use":"official","family":%q,"given":["Ann"]},{"use":"maiden","family":"Barrios"}],`+
			`"gender":"female","birthDate":"19%d5-09-12","extension":[{"url":"x","valueDecimal":1.6173064128852657}]}`+"\n",
			i, i, i, i, f, 5+i)
	}
	codes := []string{"8302-2", "29463-7", "72514-3"}
	for i := range 12 {
		fmt.Fprintf(&obs, `{"resourceType":"Observation","id":"o-%d","status":"final",`+
			`"code":{"coding":[{"system":"http://loinc.org","code":%q}]},`+
			`"subject":{"reference":"Patient/src-%d"},"encounter":{"reference":"Encounter/e"},`+
			`"valueQuantity":{"value":176.35499866729558,"unit":"cm"}}`+"\n", i, codes[i%3], i%2)
	}
	src, err := ParseSource(strings.NewReader(pats.String()), strings.NewReader(obs.String()))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestDeriveDeterministic(t *testing.T) {
	src := fixture(t)
	a, b, c := NewDeriver(src, 7), NewDeriver(src, 7), NewDeriver(src, 8)
	differs := false
	for n := range 50 {
		ja, ia, err := a.PatientJSON(n)
		if err != nil {
			t.Fatal(err)
		}
		jb, ib, _ := b.PatientJSON(n)
		if !bytes.Equal(ja, jb) || fmt.Sprint(ia) != fmt.Sprint(ib) {
			t.Fatalf("patient %d differs between two derivers with one seed:\n%s\n%s", n, ja, jb)
		}
		jc, _, _ := c.PatientJSON(n)
		differs = differs || !bytes.Equal(ja, jc)
		_, oa, _, _ := a.Observations(n, 4)
		_, ob, _, _ := b.Observations(n, 4)
		for k := range oa {
			if !bytes.Equal(oa[k], ob[k]) {
				t.Fatalf("observation %d of patient %d differs between two derivers with one seed", k, n)
			}
		}
	}
	if !differs {
		t.Error("seeds 7 and 8 derive the same patients")
	}
	// A patient does not depend on which others were derived before it.
	j1, _, _ := NewDeriver(src, 7).PatientJSON(42)
	j2, _, _ := a.PatientJSON(42)
	if !bytes.Equal(j1, j2) {
		t.Error("patient 42 depends on the derivation order")
	}
}

func TestDeriveUnique(t *testing.T) {
	src := fixture(t)
	d := NewDeriver(src, 1)
	const n = 5000
	ids := map[string]bool{}
	mrns := map[string]bool{}
	for i := range n {
		doc, info := d.PatientDoc(i)
		if doc["id"] != info.ID || ids[info.ID] {
			t.Fatalf("patient %d: id %v repeated or not in the document", i, info.ID)
		}
		ids[info.ID] = true
		if ParsePatientID(info.ID) != i {
			t.Fatalf("ParsePatientID(%q) = %d, want %d", info.ID, ParsePatientID(info.ID), i)
		}
		mrn := info.Identifiers[1]
		if mrn.System != "http://hospital.smarthealthit.org" || !isUUID(mrn.Value) || mrns[mrn.Value] {
			t.Fatalf("patient %d: medical record number %v not a new UUID", i, mrn)
		}
		mrns[mrn.Value] = true
		// Synthea's own identifier repeats the MRN, and the copies keep doing so.
		if info.Identifiers[0].Value != mrn.Value {
			t.Fatalf("patient %d: synthea identifier %v and MRN %v differ", i, info.Identifiers[0], mrn)
		}
		oids, _, codes, err := d.Observations(i, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range oids {
			if ids[id] {
				t.Fatalf("observation id %s repeated", id)
			}
			ids[id] = true
		}
		if len(codes) == 0 {
			t.Fatalf("patient %d: observations without codes", i)
		}
	}
}

func TestDeriveSourceUnchanged(t *testing.T) {
	src := fixture(t)
	before, _ := json.Marshal(src.Patients)
	d := NewDeriver(src, 3)
	for n := range 20 {
		d.PatientJSON(n)
		d.UpdateJSON(n, d.stream(9, n))
		d.Observations(n, 5)
	}
	after, _ := json.Marshal(src.Patients)
	if !bytes.Equal(before, after) {
		t.Error("deriving changed the source documents")
	}
}

func TestDeriveFamilySpread(t *testing.T) {
	src := fixture(t)
	d := NewDeriver(src, 1)
	const n = 5000
	copies := n / len(src.Patients)
	exact := map[string]int{}
	for i := range n {
		doc, info := d.PatientDoc(i)
		base := src.Patients[i%len(src.Patients)]["name"].([]any)[0].(map[string]any)["family"].(string)
		// Prefix search stays realistic: every family starts with its source family,
		// and the search value is a prefix of the family.
		if !strings.HasPrefix(info.Family, base) || !strings.HasPrefix(info.Family, info.FamilyQuery) ||
			!strings.HasPrefix(info.FamilyQuery, base) {
			t.Fatalf("patient %d: family %q, query %q, source %q", i, info.Family, info.FamilyQuery, base)
		}
		if familyQuery(info.Family) != info.FamilyQuery {
			t.Fatalf("familyQuery(%q) = %q, want %q", info.Family, familyQuery(info.Family), info.FamilyQuery)
		}
		// The original copies keep their names.
		if i < len(src.Patients) && info.Family != base {
			t.Fatalf("original copy %d renamed %q to %q", i, base, info.Family)
		}
		// The maiden name varies with the official one.
		maiden := doc["name"].([]any)[1].(map[string]any)["family"].(string)
		if (info.Family == base) != (maiden == "Barrios") {
			t.Fatalf("patient %d: family %q but maiden name %q", i, info.Family, maiden)
		}
		exact[info.Family]++
	}
	// About half the copies keep the source family: a common name per source family.
	for _, f := range []string{"Smith", "Haley"} {
		if got := exact[f]; got < copies*2/5 || got > copies*3/5 {
			t.Errorf("%d patients named exactly %s, want about %d", got, f, copies/2)
		}
	}
	// The other half are rare names: far more distinct names than sources.
	if len(exact) < n/3 {
		t.Errorf("%d distinct families among %d patients, want at least %d", len(exact), n, n/3)
	}
	// A search for "Smith" finds the Smiths, their variants and the Smithers.
	smith := 0
	for f, c := range exact {
		if strings.HasPrefix(f, "Smith") {
			smith += c
		}
	}
	if want := 2 * copies; smith != want {
		t.Errorf("%d families start with Smith, want %d", smith, want)
	}
}

func TestDeriveDates(t *testing.T) {
	src := fixture(t)
	d := NewDeriver(src, 1)
	dates := map[string]bool{}
	for i := range 2000 {
		_, info := d.PatientDoc(i)
		if info.BirthDate > latestBirth.Format("2006-01-02") || len(info.BirthDate) != 10 {
			t.Fatalf("patient %d: birth date %q", i, info.BirthDate)
		}
		dates[info.BirthDate] = true
	}
	// 5 source dates spread over ±10 years: nearly every patient on a day of its own.
	if len(dates) < 1500 {
		t.Errorf("%d distinct birth dates among 2000 patients", len(dates))
	}
}

func TestDeriveCreateAndUpdate(t *testing.T) {
	src := fixture(t)
	d := NewDeriver(src, 1)
	var doc map[string]any
	b, err := d.CreateJSON(3)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc["id"] != nil || doc["resourceType"] != "Patient" {
		t.Fatalf("create body %s: id must be absent", b)
	}
	rng := d.stream(9, 0)
	u1, _ := d.UpdateJSON(3, rng)
	u2, _ := d.UpdateJSON(3, rng)
	if bytes.Equal(u1, u2) {
		t.Error("two updates of one patient send the same document")
	}
	var doc1 map[string]any
	json.Unmarshal(u1, &doc1)
	orig, _ := d.PatientDoc(3)
	for _, k := range []string{"id", "birthDate"} {
		if doc1[k] != orig[k] {
			t.Errorf("update changed %s: %v → %v", k, orig[k], doc1[k])
		}
	}
}

func TestObservations(t *testing.T) {
	src := fixture(t)
	d := NewDeriver(src, 1)
	// Source patient 0 has observations, source patient 2 none (it takes any).
	for _, n := range []int{0, 2} {
		ids, docs, codes, err := d.Observations(n, 5)
		if err != nil || len(ids) != 5 || len(docs) != 5 || len(codes) != 3 {
			t.Fatalf("patient %d: %d ids, %d docs, codes %v, %v", n, len(ids), len(docs), codes, err)
		}
		for k, b := range docs {
			var o map[string]any
			if err := json.Unmarshal(b, &o); err != nil {
				t.Fatal(err)
			}
			if o["id"] != ObservationID(n, k) || dig(o, "subject", "reference") != "Patient/"+PatientID(n) || o["encounter"] != nil {
				t.Errorf("observation %s", b)
			}
			if !bytes.Contains(b, []byte("176.35499866729558")) {
				t.Errorf("observation lost its decimal: %s", b)
			}
		}
	}
	if ids, _, _, _ := d.Observations(1, 0); ids != nil {
		t.Error("0 observations asked, some derived")
	}
}

func TestParsePatientID(t *testing.T) {
	for id, want := range map[string]int{"bench-0": 0, "bench-17": 17, "bench-017": -1, "bench-": -1, "bench-1-obs-2": -1, "x": -1} {
		if got := ParsePatientID(id); got != want {
			t.Errorf("ParsePatientID(%q) = %d, want %d", id, got, want)
		}
	}
}

// TestSyntheaSample derives from the repository's sample (testdata/synthea), found as
// fhirbench finds it by default.
func TestSyntheaSample(t *testing.T) {
	t.Setenv("FHIRBOX_SYNTHEA", "")
	dir, err := FindDataDir("")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "synthea")); dir != want {
		t.Errorf("FindDataDir found %s, want the repository's %s", dir, want)
	}
	src, err := LoadSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDeriver(src, 1)
	const n = 20000
	ids := map[string]bool{}
	exact := map[string]int{}
	for i := range n {
		_, info := d.PatientDoc(i)
		if ids[info.ID] || info.Family == "" || info.BirthDate == "" || len(info.Identifiers) < 3 {
			t.Fatalf("patient %d: %+v", i, info)
		}
		ids[info.ID] = true
		exact[info.Family]++
	}
	if len(exact) < n/3 {
		t.Errorf("%d distinct families among %d patients", len(exact), n)
	}
	if _, _, codes, err := d.Observations(0, 30); err != nil || len(codes) < 3 {
		t.Errorf("observations of patient 0: codes %v, %v", codes, err)
	}
}

// TestFindDataDir: -data, then FHIRBOX_SYNTHEA, name a directory of NDJSON files,
// gzipped or not (the full extract is plain); a directory without patients is an error
// that names it.
func TestFindDataDir(t *testing.T) {
	plain := t.TempDir()
	pat := `{"resourceType":"Patient","id":"p","name":[{"family":"Doe"}],"birthDate":"1970-01-01"}` + "\n"
	if err := os.WriteFile(filepath.Join(plain, "patients.ndjson"), []byte(pat), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()

	t.Setenv("FHIRBOX_SYNTHEA", plain)
	if dir, err := FindDataDir(""); err != nil || dir != plain {
		t.Errorf("FindDataDir with FHIRBOX_SYNTHEA = %q, %v; want %s", dir, err, plain)
	}
	if dir, err := FindDataDir(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("FindDataDir(%s) without patients = %q, %v; want an error naming it", empty, dir, err)
	}
	src, err := LoadSource(plain)
	if err != nil || len(src.Patients) != 1 || len(src.Observations) != 0 {
		t.Fatalf("LoadSource(plain) = %v, %v", src, err)
	}
	t.Setenv("FHIRBOX_SYNTHEA", empty)
	if _, err := FindDataDir(""); err == nil {
		t.Error("FHIRBOX_SYNTHEA naming a directory without patients: no error")
	}
}
