package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/resources"
)

// exportEvery is how often export prints a progress line when stderr is not a
// terminal.
const exportEvery = 2 * time.Second

// exportCmd writes the stored resources of cfg.Types (all FHIR types when none) into
// cfg.ExportDir, one NDJSON file a type, straight from the database: a progress bar
// with rate and ETA on a terminal, plain lines otherwise, and a summary. On SQLite
// the server must be stopped (one process per file); on PostgreSQL servers keep
// serving meanwhile.
func exportCmd(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	st, err := app.OpenStore(ctx, cfg.Database)
	if app.IsInUse(err) {
		return fmt.Errorf("%v\nfhirbox export on a SQLite file runs with the server stopped: stop the server, run fhirbox export, then start the server again (or export over HTTP with GET /fhir/$export)", err)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "exporting %s (%s) into %s\n", cfg.Database, cfg.Database.Backend, cfg.ExportDir)
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = observe.IsTerminal(f)
	}
	var bar *progressbar.ProgressBar
	last, lastType := time.Now(), ""
	progress := func(p app.ExportProgress) {
		if tty {
			if bar == nil {
				bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(stderr),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("resources"),
					progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish())
			}
			if p.Type != lastType {
				bar.Describe(p.Type)
			}
			_ = bar.Set(p.Done)
		} else if p.Type != lastType || time.Since(last) >= exportEvery {
			last = time.Now()
			fmt.Fprintf(stderr, "%s: %s of %s resources\n", p.Type, resources.Thousands(int64(p.Done)), resources.Thousands(int64(p.Total)))
		}
		lastType = p.Type
	}
	sum, err := app.Export(ctx, st, cfg.ExportDir, app.ExportOptions{Types: cfg.Types, Since: cfg.ExportSince, Progress: progress})
	if bar != nil {
		_ = bar.Finish()
	}
	for _, f := range sum.Files {
		fmt.Fprintf(stdout, "%s\t%s resources\n", f.Path, resources.Thousands(int64(f.Count)))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %s resources of %d types in %.1f s (%s resources/s)\n",
		resources.Thousands(int64(sum.Resources)), len(sum.Files), sum.Elapsed.Seconds(), resources.Thousands(int64(sum.Rate())))
	return nil
}
