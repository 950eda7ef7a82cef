// Package bulkimport loads resources from files — NDJSON (one resource a line, plain or
// gzipped) and Bundle JSON — into fhirbox: straight into the database through the
// resource engine (Store), or over HTTP as batch Bundles (Remote). Files are read as
// streams; resources go in batches, each one database transaction or one request; a
// resource that cannot be read or written is reported with where it was found and
// skipped, and the others of its batch are stored all the same.
package bulkimport

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// Item is one resource read from a file, or a place in a file that held none.
type Item struct {
	// Where names the place: "file:line" for NDJSON, "file: entry N" for a Bundle.
	Where    string
	Type, ID string
	// Raw is the resource's JSON, decoded again when a batch is retried (a write
	// changes the document it is given: secrets hashed, meta set).
	Raw []byte
	// Doc is Raw decoded.
	Doc map[string]any
	// Err says why the place holds no resource that can be imported.
	Err error
}

// File kinds by name.
const (
	kindNDJSON = "ndjson"
	kindBundle = "bundle"
)

// fileKind tells what a file holds by its name: "" for a file that is neither, which a
// directory walk leaves out.
func fileKind(name string) string {
	n := strings.ToLower(strings.TrimSuffix(strings.ToLower(name), ".gz"))
	switch {
	case strings.HasSuffix(n, ".ndjson"), strings.HasSuffix(n, ".jsonl"):
		return kindNDJSON
	case strings.HasSuffix(n, ".json"):
		return kindBundle
	}
	return ""
}

// Files expands paths into the files to import, in order: a file as named (its kind by
// its extension: .ndjson or .jsonl for NDJSON, .json for a Bundle, either with .gz), a
// directory as the files of those kinds below it, recursively, sorted by path. It
// returns their total size, which progress is measured against.
func Files(paths []string) ([]string, int64, error) {
	var out []string
	var total int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, 0, err
		}
		if !fi.IsDir() {
			if fileKind(p) == "" {
				return nil, 0, fmt.Errorf("%s: not an NDJSON (.ndjson, .ndjson.gz) or Bundle (.json) file", p)
			}
			out = append(out, p)
			total += fi.Size()
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && fileKind(path) != "" {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		slices.Sort(found)
		for _, f := range found {
			fi, err := os.Stat(f)
			if err != nil {
				return nil, 0, err
			}
			total += fi.Size()
		}
		out = append(out, found...)
	}
	return out, total, nil
}

// countingReader counts the bytes read through it, for progress by bytes of the files
// (compressed bytes for a gzipped file: its size is what is known beforehand).
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// MaxLine bounds one NDJSON line (one resource): a longer one is reported and skipped,
// so that a file without newlines cannot take the memory.
const MaxLine = 16 << 20

// MaxBundle bounds a Bundle file, which is read whole.
const MaxBundle = 256 << 20

// ReadFile reads the resources of the file at path, in order, calling emit for each
// (and for each place that holds none, with Item.Err set); read counts the bytes of
// the file read so far. It stops early when emit returns false, and returns an error
// (not naming the file) only when the file cannot be read on: the items emitted until
// then stand.
func ReadFile(path string, read *atomic.Int64, emit func(*Item) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = countingReader{r: f, n: read}
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		zr, err := gzip.NewReader(bufio.NewReaderSize(r, 64<<10))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	if fileKind(path) == kindBundle {
		return readBundle(path, r, emit)
	}
	return ReadNDJSON(path, r, emit)
}

// ReadNDJSON reads NDJSON from r: one resource a line, blank lines skipped. name starts
// each Item's Where.
func ReadNDJSON(name string, r io.Reader, emit func(*Item) bool) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var long []byte
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gathered up to MaxLine, the rest skipped.
			long = append(long[:0], b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				if len(long) <= MaxLine {
					long = append(long, b...)
				}
			}
			b = long
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", line, err)
		}
		where := fmt.Sprintf("%s:%d", name, line)
		if len(b) > MaxLine {
			if !emit(&Item{Where: where, Err: fmt.Errorf("the line is longer than %d MiB", MaxLine>>20)}) {
				return nil
			}
		} else if t := trimSpace(b); len(t) > 0 {
			// ReadSlice's bytes are overwritten by the next read: the item keeps a copy.
			if !emit(parseResource(where, append([]byte(nil), t...))) {
				return nil
			}
		}
		if err != nil {
			return nil
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}
