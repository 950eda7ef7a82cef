package bulkimport

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file that cannot be read to its end (a truncated gzip stream) is one failure, named
// by its path; what it held before the break is imported, and so are the other files.
func TestRunTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	var lines bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&lines, `{"resourceType":"Patient","id":"p%d","name":[{"family":"F%d"}]}`+"\n", i, i)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(lines.Bytes())
	zw.Close()
	trunc := filepath.Join(dir, "a.ndjson.gz")
	if err := os.WriteFile(trunc, z.Bytes()[:z.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.ndjson"), []byte(`{"resourceType":"Patient","id":"b"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	files, total, err := Files([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	sum, err := Run(context.Background(), files, total, discard{}, Options{BatchSize: 100,
		Failed: func(where string, err error) { failed = append(failed, where+": "+err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) < 1 || !strings.HasPrefix(failed[len(failed)-1], trunc+": line ") || !strings.Contains(failed[len(failed)-1], "unexpected EOF") {
		t.Errorf("failures: %q", failed)
	}
	if sum.Created < 100 || sum.Created >= 2001 || sum.Read != total {
		t.Errorf("%+v of %d bytes", sum, total)
	}
}
