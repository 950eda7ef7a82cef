package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// TestReindexMeasure measures reindexing on the Synthea sample (485 Patients, 16,067
// Observations), on each backend: the background job of a SearchParameter on
// Observation, then fhirbox reindex of everything as a process of its own under
// /usr/bin/time -v (its peak memory). A measurement, not a test: it runs only with
// FHIRBOX_REINDEX_MEASURE=1, and logs its figures.
func TestReindexMeasure(t *testing.T) {
	if os.Getenv("FHIRBOX_REINDEX_MEASURE") != "1" {
		t.Skip("a measurement: set FHIRBOX_REINDEX_MEASURE=1")
	}
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			ctx := context.Background()
			dbURL := b.DatabaseURL(t)
			db, _ := app.ParseDatabase(dbURL)
			st, err := app.OpenStore(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(ctx, st, app.Config{Server: server.Config{BaseURL: "http://x.test", AdminClientID: "admin"}, AdminSecret: "s3cret", BcryptCost: bcrypt.MinCost})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			n := 0
			for _, f := range []string{"patients", "observations"} {
				n += loadSynthea(t, a.Service, f)
			}
			t.Logf("loaded %d resources in %.1f s", n, time.Since(start).Seconds())

			sp := map[string]any{"resourceType": "SearchParameter", "code": "category-code", "base": []any{"Observation"},
				"type": "token", "status": "active", "expression": "Observation.category.coding.code"}
			start = time.Now()
			if _, _, err := a.Service.Update(ctx, "SearchParameter", "cat", sp, ""); err != nil {
				t.Fatal(err)
			}
			for {
				r, _ := a.Service.Current(ctx, "SearchParameter", "cat")
				if bytes.Contains(r.Content, []byte(`"active"`)) {
					break
				}
				if time.Since(start) > 10*time.Minute {
					t.Fatal("the job did not end")
				}
				time.Sleep(50 * time.Millisecond)
			}
			took := time.Since(start)
			jobs := a.Service.ReindexJobs()
			t.Logf("SearchParameter job: 16,067 Observations indexed (pass 1 at %d/s), SearchParameter active after %.1f s (both passes: the sample was loaded within the last minute, so the second pass re-extracts it all)",
				jobs[0].Progress[0].Rate, took.Seconds())
			// As after an upgrade that adds parameters: the rows of some are missing
			// (here every token and reference row), those of others are there.
			var before int
			st.SQL().QueryRow(`SELECT (SELECT count(*) FROM search_string) + (SELECT count(*) FROM search_token) + (SELECT count(*) FROM search_date) + (SELECT count(*) FROM search_number) + (SELECT count(*) FROM search_reference)`).Scan(&before)
			for _, tb := range []string{"search_token", "search_reference"} {
				if _, err := st.SQL().Exec("DELETE FROM " + tb); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%d index rows, those of token and reference parameters removed", before)
			st.Close()

			cmd := exec.Command("/usr/bin/time", "-v", os.Args[0], "reindex")
			cmd.Env = append(os.Environ(), asServerEnv+"=1", "FHIRBOX_DATABASE_URL="+dbURL)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			sum := regexp.MustCompile(`reindexed .*`).Find(out)
			rss := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindSubmatch(out)
			cpu := regexp.MustCompile(`User time \(seconds\): ([\d.]+)\s+System time \(seconds\): ([\d.]+)`).FindSubmatch(out)
			obs := regexp.MustCompile(`reindex Observation: .*`).Find(out)
			if rss == nil || sum == nil {
				t.Fatalf("output:\n%s", out)
			}
			t.Logf("fhirbox reindex: %s; %s; peak RSS %s kB; CPU of the process: %s s user, %s s system", sum, obs, rss[1], cpu[1], cpu[2])
		})
	}
}

// loadSynthea writes every resource of the Synthea file name (testdata/synthea) with
// its own id, eight at a time, and returns how many.
func loadSynthea(t *testing.T, svc *resources.Service, name string) int {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "synthea", name+".ndjson.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	lines := make(chan []byte)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range lines {
				dec := json.NewDecoder(bytes.NewReader(l))
				dec.UseNumber()
				var doc map[string]any
				if err := dec.Decode(&doc); err != nil {
					t.Error(err)
					continue
				}
				if _, _, err := svc.Update(context.Background(), doc["resourceType"].(string), doc["id"].(string), doc, ""); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	n := 0
	for sc.Scan() {
		lines <- bytes.Clone(sc.Bytes())
		n++
	}
	close(lines)
	wg.Wait()
	return n
}
