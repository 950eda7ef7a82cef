package validate_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"testing"

	"github.com/fhirbox/fhirbox/resources/validate"
)

// loadNDJSON reads a gzipped NDJSON file of testdata/synthea as the engine decodes
// documents (numbers as json.Number).
func loadNDJSON(t testing.TB, name string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/synthea/" + name)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var doc map[string]any
		if err := d.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		out = append(out, doc)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSyntheaValid validates every patient and observation of testdata/synthea: all
// 485 and 16,067 must pass.
func TestSyntheaValid(t *testing.T) {
	v, err := validate.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		file, typ string
		count     int
	}{{"patients.ndjson.gz", "Patient", 485}, {"observations.ndjson.gz", "Observation", 16067}} {
		docs := loadNDJSON(t, f.file)
		if len(docs) != f.count {
			t.Errorf("%s: %d documents, want %d", f.file, len(docs), f.count)
		}
		failed := 0
		for _, d := range docs {
			if issues := v.Validate(f.typ, d); len(issues) > 0 {
				if failed < 10 {
					t.Errorf("%s/%v: %+v", f.typ, d["id"], issues)
				}
				failed++
			}
		}
		if failed > 0 {
			t.Errorf("%s: %d of %d invalid", f.file, failed, len(docs))
		}
	}
}
