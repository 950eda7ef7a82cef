package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/bulkimport"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/resources"
)

// importEvery is how often a progress line is printed when no terminal shows a bar.
const importEvery = 3 * time.Second

// importCmd is `fhirbox import [flags] PATH…`: NDJSON and Bundle files, or directories
// of them, into the configured database, or into a server with --server.
func importCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("fhirbox import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dbURL, dataDir, validation, server, token string
	var batch, workers, cacheMB int
	fs.StringVar(&dbURL, "database-url", env("FHIRBOX_DATABASE_URL", ""), "the database to import into, as for serve (env FHIRBOX_DATABASE_URL)")
	fs.StringVar(&dataDir, "data-dir", env("FHIRBOX_DATA_DIR", "./data"), "directory of the SQLite file when no database URL is given (env FHIRBOX_DATA_DIR)")
	fs.StringVar(&validation, "validation", env(resources.ValidationSetting, "on"), "on: every resource is validated against the R4 definitions, as a write is; off: stored as read (env "+resources.ValidationSetting+")")
	fs.StringVar(&server, "server", "", "send the resources to the fhirbox (or FHIR) server at this base URL, e.g. http://host:8080/fhir, as batch Bundles, instead of writing into the database")
	fs.StringVar(&token, "token", env("FHIRBOX_TOKEN", ""), "bearer token for --server; prefer the environment variable to the flag, which other users can see (env FHIRBOX_TOKEN)")
	fs.IntVar(&batch, "batch", 0, "resources per batch: one database transaction, or one batch Bundle with --server (default 250 on PostgreSQL, 1000 on SQLite, 200 to a server)")
	fs.IntVar(&cacheMB, "sqlite-cache-mb", 0, "SQLite only: megabytes of page cache for the writes (0: SQLite's 2 MB); more is faster on large files, and is memory of the process")
	fs.IntVar(&workers, "workers", 0, "batches written at once (default 4 on PostgreSQL, 2 to a server, 2 on SQLite: one is built while the other is written by its one writer)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: fhirbox import [flags] PATH…\n\nPATH is an NDJSON file (.ndjson, .ndjson.gz), a Bundle (.json), or a directory of them (recursively).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import: no file or directory given")
	}
	mode, err := resources.ParseValidationMode(validation)
	if err != nil {
		return err
	}
	files, total, err := bulkimport.Files(fs.Args())
	if err != nil {
		return err
	}

	var sink bulkimport.Sink
	var target string
	if server != "" {
		r, err := bulkimport.NewRemote(server, token)
		if err != nil {
			return err
		}
		sink, target = r, server
		workers, batch = orDefault(workers, 2), orDefault(batch, 200)
	} else {
		db := app.Database{Backend: app.SQLite, Target: filepath.Join(dataDir, "fhirbox.db")}
		if dbURL != "" {
			if db, err = app.ParseDatabase(dbURL); err != nil {
				return fmt.Errorf("FHIRBOX_DATABASE_URL: %v", err)
			}
		}
		st, err := app.OpenStore(ctx, db, app.WithWriteCache(cacheMB<<10), app.WithBulkLoad())
		if app.IsInUse(err) {
			return fmt.Errorf("%v\nfhirbox import into a SQLite file runs with the server stopped (one process per file), or use --server", err)
		}
		if err != nil {
			return err
		}
		defer st.Close()
		s, err := app.ImportStore(ctx, st, mode, observe.NewLogger(stderr, true, 0))
		if err != nil {
			return err
		}
		sink, target = s, fmt.Sprintf("%s (%s)", db, db.Backend)
		switch {
		case db.Backend == app.Postgres:
			// A transaction spends about half its time waiting for fhirbox to prepare
			// its resources and half in PostgreSQL: four smaller batches at once kept
			// both busier than two of 500 (1,118–1,318/s against 1,055/s, with the same
			// memory, BENCHMARKS.md).
			workers, batch = orDefault(workers, 4), orDefault(batch, 250)
		default:
			// SQLite has one writer, but a batch is checked and built before its
			// transaction: with two, the next batch is built while one is written. Its
			// index rows go in together, sorted: batches of 1,000 wrote 2,000–2,140
			// Observations a second where 500 wrote 1,700–1,810 (BENCHMARKS.md).
			workers, batch = orDefault(workers, 2), orDefault(batch, 1000)
		}
	}

	// Memory stays within the import's budget (docs/bulk.md: under 200 MB on a 1 GB
	// file) when the collector works harder as the heap nears a limit, rather than let
	// it grow to twice what is live: peak RSS 206 MB without, 167 MB with a limit of
	// 100 MiB, on 128,536 Observations into SQLite at 3% of the rate. GOMEMLIMIT, when
	// set, decides instead.
	if prev := debug.SetMemoryLimit(-1); prev == math.MaxInt64 {
		debug.SetMemoryLimit(importMemoryLimit)
		defer debug.SetMemoryLimit(prev)
	}
	tty := false
	if f, ok := stdout.(*os.File); ok {
		tty = observe.IsTerminal(f)
	}
	fmt.Fprintf(stdout, "importing %d files (%s) into %s\n", len(files), bulkimport.Bytes(total), target)
	show := newImportProgress(stdout, tty, total)
	sum, err := bulkimport.Run(ctx, files, total, sink, bulkimport.Options{
		BatchSize: batch, Workers: workers,
		Failed:   show.failed,
		Progress: show.progress,
	})
	show.finish()
	fmt.Fprintln(stdout, summaryLine(sum))
	switch {
	case err != nil:
		return fmt.Errorf("import stopped: %w", err)
	case sum.Interrupted:
		return errors.New("import interrupted: what is counted above is stored; run the same command again to import the rest")
	case sum.Failed > 0:
		return fmt.Errorf("%s resources could not be imported (see above)", resources.Thousands(sum.Failed))
	}
	return nil
}

// summaryLine is the last line of an import.
func summaryLine(s bulkimport.Summary) string {
	return fmt.Sprintf("imported %s resources from %d files in %.1f s (%s resources/s): %s stored, %s updated, %s unchanged, %s failed",
		resources.Thousands(s.Done()), s.Files, s.Elapsed.Seconds(), resources.Thousands(int64(s.Rate(s.Elapsed))),
		resources.Thousands(s.Created), resources.Thousands(s.Updated), resources.Thousands(s.Unchanged), resources.Thousands(s.Failed))
}

// importProgress shows an import: a bar by bytes read with the rate in resources a
// second and the time left on a terminal, a line every few seconds elsewhere, and the
// places that failed, each as file:line: reason.
type importProgress struct {
	mu   sync.Mutex
	out  io.Writer
	bar  *progressbar.ProgressBar
	last time.Time
	p    bulkimport.Progress
}

func newImportProgress(out io.Writer, tty bool, total int64) *importProgress {
	ip := &importProgress{out: out, last: time.Now()}
	if tty {
		ip.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(out),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionSetTheme(progressbar.Theme{Saucer: "=", SaucerHead: ">", SaucerPadding: " ", BarStart: "[", BarEnd: "]"}),
		)
	}
	return ip
}

func (ip *importProgress) failed(where string, err error) {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.bar != nil {
		_ = ip.bar.Clear()
	}
	fmt.Fprintf(ip.out, "%s: %s\n", where, bulkimport.Reason(err))
}

func (ip *importProgress) progress(p bulkimport.Progress) {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	ip.p = p
	if ip.bar != nil {
		ip.bar.Describe(fmt.Sprintf("%s resources, %s/s, %s failed", resources.Thousands(p.Done()), resources.Thousands(int64(p.Rate(p.Elapsed))), resources.Thousands(p.Failed)))
		_ = ip.bar.Set64(p.Read)
		return
	}
	if time.Since(ip.last) >= importEvery {
		ip.last = time.Now()
		fmt.Fprintln(ip.out, p.Line())
	}
}

func (ip *importProgress) finish() {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if ip.bar != nil {
		_ = ip.bar.Exit()
		fmt.Fprintln(ip.out)
	}
}

// importMemoryLimit is the soft limit of the Go heap during an import (see importCmd).
const importMemoryLimit = 100 << 20

// orDefault is v, or def when v is not set (0).
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
