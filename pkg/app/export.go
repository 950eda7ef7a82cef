package app

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/resources"
)

// ExportOptions says what Export writes.
type ExportOptions struct {
	// Types are the types to export (none: every FHIR R4 type).
	Types []string
	// Since (zero: none) keeps the resources last updated at or after it.
	Since time.Time
	// Progress, when set, is told of each type's size before it is written (Total
	// set, Done 0) and of every resource written.
	Progress func(ExportProgress)
}

// ExportProgress is where Export stands.
type ExportProgress struct {
	Type string
	// Total is the number of resources of all types to write; Done those written.
	Total, Done int
}

// ExportSummary is what Export wrote.
type ExportSummary struct {
	// Files maps each type written to its file and count, in the order written.
	Files     []ExportFile
	Resources int
	Elapsed   time.Duration
}

// ExportFile is one NDJSON file Export wrote.
type ExportFile struct {
	Type, Path string
	Count      int
}

// Rate is the resources written a second.
func (s ExportSummary) Rate() int {
	if s.Elapsed <= 0 {
		return 0
	}
	return int(float64(s.Resources) / s.Elapsed.Seconds())
}

// Export writes the live resources of opts.Types, straight from st, into dir as one
// NDJSON file a type ({Type}.ndjson; none for a type without resources), as the
// operator of the database: `fhirbox export DIR`. It reads as the server's exports
// do (export.WalkType: in id order, through the Service's searches), what was stored
// up to the moment it starts.
func Export(ctx context.Context, st Store, dir string, opts ExportOptions) (ExportSummary, error) {
	start := time.Now()
	svc := resources.NewService(resources.DefaultRegistry(), st, resources.Options{})
	v := url.Values{}
	for _, t := range opts.Types {
		v.Add("_type", t)
	}
	types, err := svc.SystemTypes(v, true)
	if err != nil {
		return ExportSummary{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ExportSummary{}, err
	}
	job := &exportjob.Job{Since: opts.Since, TransactionTime: time.Now().UTC().Truncate(time.Millisecond)}
	params := export.Params(job)
	// The counts first: the progress has a total, and empty types no file.
	counts := map[string]int{}
	total := 0
	for _, t := range types {
		p := url.Values{"_summary": {"count"}}
		for k, vs := range params {
			p[k] = vs
		}
		res, _, err := svc.Search(ctx, t, p, true)
		if err != nil {
			return ExportSummary{}, err
		}
		counts[t] = res.Total
		total += res.Total
	}
	var sum ExportSummary
	for _, t := range types {
		if counts[t] == 0 {
			continue
		}
		if opts.Progress != nil {
			opts.Progress(ExportProgress{Type: t, Total: total, Done: sum.Resources})
		}
		path := filepath.Join(dir, t+".ndjson")
		n, err := exportType(ctx, svc, t, params, job.TransactionTime, path, func() {
			sum.Resources++
			if opts.Progress != nil {
				opts.Progress(ExportProgress{Type: t, Total: total, Done: sum.Resources})
			}
		})
		if err != nil {
			return sum, err
		}
		sum.Files = append(sum.Files, ExportFile{Type: t, Path: path, Count: n})
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// exportType writes the resources of typ into path, one a line, calling done after
// each, and returns how many it wrote. The file appears whole or not at all: it is
// written beside its name and renamed at the end.
func exportType(ctx context.Context, svc *resources.Service, typ string, params url.Values, until time.Time, path string, done func()) (int, error) {
	tmp := path + ".part-" + strconv.Itoa(os.Getpid())
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp) // after the rename, nothing
	w := bufio.NewWriterSize(f, 1<<20)
	n := 0
	err = export.WalkType(ctx, svc, typ, params, until, export.DefaultPageSize, func(content []byte) error {
		if _, err := w.Write(export.Line(content)); err != nil {
			return err
		}
		n++
		done()
		return w.WriteByte('\n')
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("%s: %w", typ, err)
	}
	return n, os.Rename(tmp, path)
}
