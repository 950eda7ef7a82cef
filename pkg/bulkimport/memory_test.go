package bulkimport

import (
	"context"
	"os"
	"strings"
	"testing"
)

// discard is a sink that stores nothing and says every resource was created.
type discard struct{}

func (discard) WriteBatch(_ context.Context, items []*Item) ([]Result, error) {
	res := make([]Result, len(items))
	for i, it := range items {
		res[i] = Result{Outcome: Created}
		if it.Err != nil {
			res[i] = Result{Err: it.Err}
		}
	}
	return res, nil
}

// TestReadMemory reads the file FHIRBOX_IMPORT_MEMORY_FILE names through the whole
// import pipeline (every line decoded, batched and handed to a sink) with a sink that
// stores nothing, and logs the process's peak RSS: what the reading side of an import
// holds, whatever the file's size. A measurement, not a test.
func TestReadMemory(t *testing.T) {
	path := os.Getenv("FHIRBOX_IMPORT_MEMORY_FILE")
	if path == "" {
		t.Skip("a measurement: set FHIRBOX_IMPORT_MEMORY_FILE to a large NDJSON file")
	}
	files, total, err := Files([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), files, total, discard{}, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	status, _ := os.ReadFile("/proc/self/status")
	var hwm string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM") {
			hwm = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	t.Logf("%d resources, %d failed, %.1f MB read in %.1f s (%.0f resources/s); peak RSS %s",
		sum.Done(), sum.Failed, float64(sum.Read)/(1<<20), sum.Elapsed.Seconds(), sum.Rate(sum.Elapsed), hwm)
}
