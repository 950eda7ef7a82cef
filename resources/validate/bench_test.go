package validate_test

import (
	"testing"

	"github.com/fhirbox/fhirbox/resources/validate"
)

// BenchmarkValidateSynthea validates the Synthea patients and observations in turn: the
// cost validation adds to each write of them.
func BenchmarkValidateSynthea(b *testing.B) {
	v, err := validate.Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct{ name, file, typ string }{
		{"Patient", "patients.ndjson.gz", "Patient"},
		{"Observation", "observations.ndjson.gz", "Observation"},
	} {
		docs := loadNDJSON(b, f.file)
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if issues := v.Validate(f.typ, docs[i%len(docs)]); len(issues) > 0 {
					b.Fatal(issues)
				}
			}
		})
	}
}
