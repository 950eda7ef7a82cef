package format

import (
	"bufio"
	"compress/gzip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// syntheaFirst returns the first resource of one of the repository's Synthea extracts.
func syntheaFirst(tb testing.TB, file string) []byte {
	tb.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "synthea", file))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	if !sc.Scan() {
		tb.Fatalf("%s: no resource: %v", file, sc.Err())
	}
	return append([]byte(nil), sc.Bytes()...)
}

func BenchmarkDecodeJSON(b *testing.B) {
	for _, bm := range []struct{ name, file string }{
		{"Patient", "patients.ndjson.gz"},
		{"Observation", "observations.ndjson.gz"},
	} {
		doc := syntheaFirst(b, bm.file)
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := DecodeJSON(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
