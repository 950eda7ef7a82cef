package resources

import (
	"maps"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

// syntheaDocs returns up to 500 of the Synthea resources of testdata, in a stable order.
func syntheaDocs(b *testing.B, file string) []map[string]any {
	byID := loadNDJSON(b, file)
	var docs []map[string]any
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		docs = append(docs, byID[id])
	}
	return docs[:min(len(docs), 500)]
}

// BenchmarkExtractFullText measures the words of _text and _content of a Synthea
// Patient or Observation, as every write computes them.
func BenchmarkExtractFullText(b *testing.B) {
	benchSynthea(b, func(_ *testing.B, doc map[string]any) { ExtractFullText(doc, nil) })
}

// benchSynthea runs f on Synthea Patients and on Synthea Observations, one a turn.
func benchSynthea(b *testing.B, f func(b *testing.B, doc map[string]any)) {
	for _, tc := range []struct{ typ, file string }{{"Patient", "patients.ndjson"}, {"Observation", "observations.ndjson"}} {
		b.Run(tc.typ, func(b *testing.B) {
			docs := syntheaDocs(b, tc.file)
			b.ReportAllocs()
			defer cpuPerOp(b)()
			n := 0
			for b.Loop() {
				f(b, docs[n%len(docs)])
				n++
			}
		})
	}
}

// BenchmarkNormalizeString measures the normalisation of index and query strings:
// ASCII already in normal form, ASCII to lower, and accented text.
func BenchmarkNormalizeString(b *testing.B) {
	for _, tc := range []struct{ name, s string }{
		{"normal", "body mass index (bmi) [ratio]"},
		{"ascii", "Body Mass Index (BMI) [Ratio]"},
		{"accents", "Véliz Ñúñez  Ærø"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				NormalizeString(tc.s)
			}
		})
	}
}

// BenchmarkMarshal measures the encoding of a document as it is stored.
func BenchmarkMarshal(b *testing.B) {
	benchSynthea(b, func(b *testing.B, doc map[string]any) {
		if _, err := marshal(doc); err != nil {
			b.Fatal(err)
		}
	})
}

// cpuPerOp reports, when the returned function is called after the loop, the CPU time
// of the whole process per iteration (user and system, so the GC's work counts): on a
// shared machine the wall time per iteration mostly measures the other processes.
func cpuPerOp(b *testing.B) func() {
	runtime.GC() // what loading the data left is not the benchmark's to collect
	start := processCPU()
	return func() { b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op") }
}

func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
