// Command gen writes the Synthea sample under testdata/synthea from the full extract
// (the NDJSON files described in testdata/synthea/README.md), so that the tests and
// fhirbench need nothing outside the repository:
//
//	go run ./testdata/gen [-src DIR] [-out DIR]
//
// -src (or $FHIRBOX_SYNTHEA) names the folder of the full extract, which the repository
// does not hold; -out defaults to testdata/synthea under the root. The output is a pure function of the
// input: the lines are copied byte for byte, in order, and gzipped without a name or
// time in the header, so a re-run on the same data with the same Go gives the same
// files.
//
// What is kept is what something reads. Every patient and every observation: the
// search tests compute their answers over all patients and page through them, and
// fhirbench derives its population from every patient and draws each derived
// patient's observations from its source patient's (or, for the 359 without any, from
// all of them), so a smaller set would change the benchmark's data and its figures
// against BENCHMARKS.md. The practitioners and organizations of the extract are
// dropped: nothing reads them.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// files are the extract's files that the sample keeps, with the resource type of
// their lines.
var files = []struct{ name, resourceType string }{
	{"patients.ndjson", "Patient"},
	{"observations.ndjson", "Observation"},
}

func main() {
	src := flag.String("src", "", "folder of the full Synthea extract (default $FHIRBOX_SYNTHEA; required)")
	out := flag.String("out", "", "where to write the sample (default testdata/synthea under the repository root)")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if src == "" {
		src = os.Getenv("FHIRBOX_SYNTHEA")
	}
	if src == "" {
		return errors.New("name the full Synthea extract with -src DIR or FHIRBOX_SYNTHEA: the repository holds only the sample this writes")
	}
	if out == "" {
		out = filepath.Join(root, "testdata", "synthea")
	}
	for _, f := range files {
		n, size, err := convert(filepath.Join(src, f.name), filepath.Join(out, f.name+".gz"), f.resourceType)
		if err != nil {
			return err
		}
		fmt.Printf("%s.gz: %d %s resources, %d bytes\n", filepath.Join(out, f.name), n, f.resourceType, size)
	}
	return nil
}

// convert copies the NDJSON file in to the gzipped file out, checking that each line is
// one resource of type typ with an id not seen before.
func convert(in, out, typ string) (n int, size int64, err error) {
	r, err := os.Open(in)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		var head struct{ ResourceType, ID string }
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return 0, 0, fmt.Errorf("%s:%d: %w", in, line, err)
		}
		if head.ResourceType != typ || head.ID == "" || seen[head.ID] {
			return 0, 0, fmt.Errorf("%s:%d: want a %s with an id of its own, got %s/%s", in, line, typ, head.ResourceType, head.ID)
		}
		seen[head.ID] = true
		zw.Write(sc.Bytes())
		zw.Write([]byte{'\n'})
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", in, err)
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return 0, 0, err
	}
	return n, int64(buf.Len()), nil
}

// repoRoot is the working directory, which must be the repository's root: the
// generator is run as go run ./testdata/gen from there.
func repoRoot() (string, error) {
	if _, err := os.Stat("go.mod"); err != nil {
		return "", errors.New("run from the repository's root: go run ./testdata/gen")
	}
	return os.Getwd()
}
