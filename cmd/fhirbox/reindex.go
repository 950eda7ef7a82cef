package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/resources"
)

// reindexEvery is how often reindex prints where it stands in a type.
const reindexEvery = 2 * time.Second

// reindex re-extracts the search index of the stored resources of cfg.Types (all when
// none), printing progress lines and a summary to stdout: after an upgrade that adds
// search parameters, or to rebuild an index. On SQLite the server must be stopped (one
// process per file); on PostgreSQL servers keep serving meanwhile.
func reindex(ctx context.Context, cfg *config, stdout io.Writer) error {
	st, err := app.OpenStore(ctx, cfg.Database)
	if app.IsInUse(err) {
		return fmt.Errorf("%v\nfhirbox reindex on a SQLite file runs with the server stopped: stop the server, run fhirbox reindex, then start the server again", err)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	log := observe.NewLogger(stdout, true, cfg.LogLevel)
	fmt.Fprintf(stdout, "reindexing %s (%s)\n", cfg.Database, cfg.Database.Backend)
	last := time.Now()
	sum, err := app.Reindex(ctx, st, cfg.Types, log, func(p resources.ReindexProgress) {
		if p.Finished || time.Since(last) >= reindexEvery {
			last = time.Now()
			fmt.Fprintln(stdout, p.Line())
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindexed %s resources of %d types in %.1f s (%s resources/s)",
		resources.Thousands(sum.Resources), sum.Types, sum.Elapsed.Seconds(), resources.Thousands(sum.Rate()))
	if sum.Skipped > 0 {
		fmt.Fprintf(stdout, "; %s could not be indexed (see the warnings above) and kept their index", resources.Thousands(sum.Skipped))
	}
	fmt.Fprintln(stdout)
	return nil
}
