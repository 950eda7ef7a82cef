package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/resources"
)

// TestExportMeasure measures export's rate against its ceiling, for BENCHMARKS.md
// ("Export (issue 17)"). It runs only with FHIRBOX_EXPORT_MEASURE=N: the Synthea
// Observations are stored once through the Service and N-1 times more by SQL (ids
// suffixed), then exported three ways in
// one run — the bare SELECT of the same rows streamed to a file (the ceiling), an
// $export job (kick-off, the runner, files stored in the database), and
// fhirbox export's path (app.Export into a directory) — each twice, ceiling first.
func TestExportMeasure(t *testing.T) {
	copies, _ := strconv.Atoi(os.Getenv("FHIRBOX_EXPORT_MEASURE"))
	if copies <= 0 {
		t.Skip("set FHIRBOX_EXPORT_MEASURE=N to measure export over N copies of the Synthea Observations")
	}
	forEachBackend(t, func(t *testing.T) { measureExport(t, copies) })
}

func measureExport(t *testing.T, copies int) {
	e := newEnv(t, func(c *app.Config) { c.Validation = resources.ValidationOff })
	ctx := context.Background()
	lines := readNDJSON(t, "observations.ndjson", 0)
	start := time.Now()
	work := make(chan map[string]any)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for doc := range work {
				if _, _, err := e.svc.Update(ctx, "Observation", doc["id"].(string), doc, ""); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for _, l := range lines {
		var doc map[string]any
		if err := json.Unmarshal(l, &doc); err != nil {
			t.Fatal(err)
		}
		work <- doc
	}
	close(work)
	wg.Wait()
	// The other copies by SQL, ids suffixed (in the row and the document): the export
	// reads the resource table only, so the index rows they lack change nothing.
	stmt := `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
SELECT resource_type, id || '-' || $1, version_id, last_updated, deleted, jsonb_set(content, '{id}', to_jsonb(id || '-' || $1))
FROM resource WHERE resource_type = 'Observation' AND id NOT LIKE '%-%-%-%-%-%'`
	if e.backend != "postgres" {
		stmt = strings.NewReplacer("jsonb_set(content, '{id}', to_jsonb(id || '-' || $1))", "json_set(content, '$.id', id || '-' || ?1)",
			"$1", "?1").Replace(stmt)
	}
	for c := 1; c < copies; c++ {
		if _, err := e.store.SQL().ExecContext(ctx, stmt, strconv.Itoa(c)); err != nil {
			t.Fatal(err)
		}
	}
	n := copies * len(lines)
	// Statistics as autovacuum leaves them a minute after a load: without them
	// PostgreSQL reads each page of the id walk through a bitmap scan of the whole type
	// and a sort (docs/bulk.md, "After a bulk load").
	if _, err := e.store.SQL().ExecContext(ctx, "ANALYZE resource"); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("FHIRBOX_EXPORT_EXPLAIN") != "" && e.backend == "postgres" {
		for _, after := range []string{"", "8"} {
			rows, err := e.store.SQL().QueryContext(ctx, `EXPLAIN ANALYZE SELECT r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resource r WHERE r.resource_type = $1 AND NOT r.deleted AND r.id > $2 ORDER BY r.id ASC, r.id LIMIT $3`,
				"Observation", after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var l string
				rows.Scan(&l)
				t.Log(l)
			}
			rows.Close()
		}
	}
	t.Logf("%s: stored %d Observations in %.1f s", e.backend, n, time.Since(start).Seconds())
	dir := t.TempDir()

	ceiling := func() float64 {
		f, err := os.Create(filepath.Join(dir, "ceiling.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		start := time.Now()
		rows, err := e.store.SQL().QueryContext(ctx, `SELECT content FROM resource WHERE resource_type = 'Observation' AND NOT deleted ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		var b []byte
		for rows.Next() {
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			w.Write(b)
			w.WriteByte('\n')
			got++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Fatalf("ceiling read %d rows, want %d", got, n)
		}
		return float64(n) / time.Since(start).Seconds()
	}
	job := func() float64 {
		start := time.Now()
		status := e.kickoff(get("/fhir/$export?_type=Observation"))
		e.runExports()
		el := time.Since(start)
		var m export.Manifest
		if err := json.Unmarshal(e.must(200, get(status)).raw, &m); err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, f := range m.Output {
			got += f.Count
		}
		if got != n {
			t.Fatalf("the job exported %d, want %d", got, n)
		}
		e.must(202, del(status))
		return float64(n) / el.Seconds()
	}
	cli := func() float64 {
		if p := os.Getenv("FHIRBOX_EXPORT_PROFILE"); p != "" {
			f, err := os.Create(p + "." + string(e.backend))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		sum, err := app.Export(ctx, e.store, filepath.Join(dir, "cli"), app.ExportOptions{Types: []string{"Observation"}})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Resources != n {
			t.Fatalf("fhirbox export wrote %d, want %d", sum.Resources, n)
		}
		return float64(n) / sum.Elapsed.Seconds()
	}
	for round := 1; round <= 2; round++ {
		c, j, x := ceiling(), job(), cli()
		t.Logf("%s round %d: %d resources; ceiling %.0f/s; $export job %.0f/s (%.0f%%); fhirbox export %.0f/s (%.0f%%)",
			e.backend, round, n, c, j, 100*j/c, x, 100*x/c)
	}
}
