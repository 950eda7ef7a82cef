package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// Fresh-id creates that arrive while a statement runs are inserted together, each with
// its own index rows; a batch that fails (here: two writers of one id) is redone one by
// one, so that only the writer at fault sees the failure — which, for a taken id, sends
// it down the ordinary path.
func TestInsertBatched(t *testing.T) {
	s := newStore(t, WithMaxConns(8))
	ctx := context.Background()

	type result struct {
		res  *resources.Resource
		seen *resources.Resource
		err  error
	}
	write := func(id string) result {
		var seen *resources.Resource
		r, err := s.Write(resources.WithFreshID(ctx), "Basic", id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			seen = cur
			v := int64(1)
			if cur != nil {
				v = cur.VersionID + 1
			}
			return &resources.Resource{Type: "Basic", ID: id, VersionID: v, LastUpdated: time.Now(), Content: []byte(`{"id":"` + id + `"}`)},
				&resources.Index{
					Strings:    []resources.StringEntry{{Param: "s", Value: "v-" + id, Exact: "V-" + id}},
					Tokens:     []resources.TokenEntry{{Param: "code", System: "sys", Code: id}, {Param: "type", Code: "basic"}},
					Dates:      []resources.DateEntry{{Param: "d", Low: time.Unix(1, 0), High: time.Unix(2, 0)}},
					Numbers:    []resources.NumberEntry{{Param: "n", Value: 7, Code: id}},
					References: []resources.ReferenceEntry{{Param: "r", TargetType: "Patient", TargetID: id}},
				}, nil
		})
		return result{r, seen, err}
	}
	// round writes ids[0], holds its statement on a lock while the others queue up
	// behind it, then lets them all go.
	round := func(ids ...string) []result {
		lock, err := s.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback()
		if _, err := lock.Exec(`LOCK TABLE resource_history IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		results := make([]result, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			go func() { defer wg.Done(); results[i] = write(id) }()
			if i == 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		time.Sleep(200 * time.Millisecond)
		if err := lock.Commit(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("write %s: %v", ids[i], r.err)
			}
			if ids[i] != "dup" && (r.res.VersionID != 1 || r.seen != nil) {
				t.Errorf("%s: version %d, saw %v", ids[i], r.res.VersionID, r.seen)
			}
		}
		return results
	}

	var ids []string
	for i := range 11 {
		ids = append(ids, fmt.Sprintf("a%d", i))
	}
	round(ids...)
	if st, n, f := s.ins.statements.Load(), s.ins.inserted.Load(), s.ins.failed.Load(); st != 2 || n != 11 || f != 0 {
		t.Errorf("%d statements inserted %d resources, %d batches failed: want a0 alone, then a1…a10 in one", st, n, f)
	}
	results := round("b0", "b1", "dup", "b2", "dup")
	if f := s.ins.failed.Load(); f != 1 {
		t.Errorf("%d batches failed, want the one with dup twice", f)
	}
	if v1, v2 := results[2].res.VersionID, results[4].res.VersionID; v1+v2 != 3 {
		t.Errorf("the two writers of dup made versions %d and %d, want 1 and 2", v1, v2)
	}
	ids = append(ids, "b0", "b1", "b2", "dup")

	// Every resource has exactly its own index rows, and its history row.
	for _, id := range ids {
		var rows int
		err := s.SQL().QueryRow(`SELECT
		  (SELECT count(*) FROM search_string WHERE resource_type = 'Basic' AND id = $1 AND value = 'v-' || $1 AND exact = 'V-' || $1) +
		  (SELECT count(*) FROM search_token WHERE resource_type = 'Basic' AND id = $1 AND (code = $1 AND system = 'sys' OR code = 'basic')) +
		  (SELECT count(*) FROM search_date WHERE resource_type = 'Basic' AND id = $1 AND low = to_timestamp(1)) +
		  (SELECT count(*) FROM search_number WHERE resource_type = 'Basic' AND id = $1 AND code = $1) +
		  (SELECT count(*) FROM search_reference WHERE resource_type = 'Basic' AND id = $1 AND target_id = $1) +
		  (SELECT count(*) FROM resource_history WHERE resource_type = 'Basic' AND id = $1 AND version_id = 1)`, id).Scan(&rows)
		if err != nil || rows != 7 {
			t.Errorf("%s: %d of its 7 rows (%v)", id, rows, err)
		}
	}
	var tokens, history int
	if err := s.SQL().QueryRow(`SELECT (SELECT count(*) FROM search_token WHERE resource_type = 'Basic'), (SELECT count(*) FROM resource_history WHERE resource_type = 'Basic')`).Scan(&tokens, &history); err != nil || tokens != 2*len(ids) || history != len(ids)+1 {
		t.Errorf("%d token and %d history rows for %d resources (%v)", tokens, history, len(ids), err)
	}
}

// After Close a fresh create fails at once instead of waiting for an inserter.
func TestInsertAfterClose(t *testing.T) {
	s := newStore(t)
	s.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(resources.WithFreshID(context.Background()), "Basic", "x", func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Basic", ID: "x", VersionID: 1, LastUpdated: time.Now(), Content: []byte(`{}`)}, &resources.Index{}, nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a create after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a create after Close still waits after 5 s")
	}
}
