package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// syntheaRepeated writes the Synthea Observations of testdata repeat times, each copy
// under fresh ids (the copy's number prefixed), to an NDJSON file, and returns it with
// the ids and documents, for the ceiling.
func syntheaRepeated(t *testing.T, repeat int) (string, [][2]string) {
	t.Helper()
	obs := syntheaLines(t, "observations", 0)
	idRe := regexp.MustCompile(`^\{"resourceType":"Observation","id":"([^"]+)"`)
	path := filepath.Join(t.TempDir(), "observations.ndjson")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var rows [][2]string
	for r := range repeat {
		for _, l := range obs {
			m := idRe.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("an Observation line without its id first: %.80s", l)
			}
			id := fmt.Sprintf("r%d-%s", r, m[1])
			doc := strings.Replace(l, `"id":"`+m[1]+`"`, `"id":"`+id+`"`, 1)
			rows = append(rows, [2]string{id, doc})
			w.WriteString(doc)
			w.WriteByte('\n')
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, rows
}

var importedRe = regexp.MustCompile(`imported ([\d,]+) resources from \d+ files in ([\d.]+) s \(([\d,]+) resources/s\)`)

// TestImportMeasure measures fhirbox import of the Synthea Observations of testdata
// (16,067; FHIRBOX_IMPORT_MEASURE_REPEAT copies under fresh ids, default 1) into each
// backend, as a process of its own (its peak RSS from the kernel), then the ceiling on
// the same database in the same run: the same rows (type, id, document) into a table
// with only its key, by multi-row INSERTs of 500 a transaction, and on PostgreSQL by
// COPY too. A measurement, not a test: it runs only with FHIRBOX_IMPORT_MEASURE=1.
func TestImportMeasure(t *testing.T) {
	if os.Getenv("FHIRBOX_IMPORT_MEASURE") != "1" {
		t.Skip("a measurement: set FHIRBOX_IMPORT_MEASURE=1")
	}
	repeat := 1
	if v := os.Getenv("FHIRBOX_IMPORT_MEASURE_REPEAT"); v != "" {
		repeat, _ = strconv.Atoi(v)
	}
	path, rows := syntheaRepeated(t, repeat)
	fi, _ := os.Stat(path)
	t.Logf("%d Observations, %.1f MB of NDJSON", len(rows), float64(fi.Size())/(1<<20))
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			dbURL := b.DatabaseURL(t)
			load, _ := os.ReadFile("/proc/loadavg")
			cmd := exec.Command(os.Args[0], "import", path)
			cmd.Env = append(os.Environ(), asServerEnv+"=1", "FHIRBOX_DATABASE_URL="+dbURL)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("import: %v\n%s", err, out)
			}
			m := importedRe.FindStringSubmatch(string(out))
			if m == nil {
				t.Fatalf("no summary in:\n%s", out)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			t.Logf("import: %s resources in %s s, %s resources/s; peak RSS %d MB, CPU %.1f s; load before: %s", m[1], m[2], m[3],
				ru.Maxrss>>10, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds(), strings.TrimSpace(string(load)))

			st := openDB(t, dbURL)
			defer st.Close()
			db := st.SQL()
			ctx := context.Background()
			col := "text"
			if b == testdb.Postgres {
				col = "jsonb"
			}
			if _, err := db.Exec(`CREATE TABLE import_ceiling (resource_type text NOT NULL, id text NOT NULL, content ` + col + ` NOT NULL, PRIMARY KEY (resource_type, id))`); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i := 0; i < len(rows); i += 500 {
				chunk := rows[i:min(i+500, len(rows))]
				var q strings.Builder
				q.WriteString(`INSERT INTO import_ceiling (resource_type, id, content) VALUES `)
				args := make([]any, 0, 2*len(chunk))
				for j, r := range chunk {
					if j > 0 {
						q.WriteByte(',')
					}
					fmt.Fprintf(&q, "('Observation', $%d, $%d)", 2*j+1, 2*j+2)
					args = append(args, r[0], r[1])
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(q.String(), args...); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			el := time.Since(start)
			t.Logf("ceiling, multi-row INSERT of 500 a transaction: %d rows in %.2f s, %.0f rows/s", len(rows), el.Seconds(), float64(len(rows))/el.Seconds())
			if b != testdb.Postgres {
				return
			}
			if _, err := db.Exec(`TRUNCATE import_ceiling`); err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			start = time.Now()
			n, err := conn.CopyFrom(ctx, pgx.Identifier{"import_ceiling"}, []string{"resource_type", "id", "content"},
				pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return []any{"Observation", rows[i][0], rows[i][1]}, nil }))
			if err != nil {
				t.Fatal(err)
			}
			el = time.Since(start)
			t.Logf("ceiling, COPY: %d rows in %.2f s, %.0f rows/s", n, el.Seconds(), float64(n)/el.Seconds())
		})
	}
}
