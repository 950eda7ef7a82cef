package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// SearchIDs lists the matches in the order of the pages, however the search is sorted
// and filtered, up to its limit; ReadLive reads the live ones among given ids.
func testSearchIDs(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	ctx := context.Background()
	byName := []resources.SortKey{{Param: pName}}
	female := []resources.Clause{cl(pGender, "", code("female"))}
	for _, q := range []resources.Query{
		{Count: 10},
		{Count: 10, Sort: byName},
		{Count: 10, Sort: []resources.SortKey{{Param: pName, Desc: true}}},
		{Count: 10, Clauses: female},
		{Count: 10, Clauses: female, Sort: byName},
	} {
		q.Type = "Patient"
		page := search(t, s, &q)
		got, err := s.SearchIDs(ctx, &q, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := ids(page.Entries); strings.Join(got, " ") != want {
			t.Errorf("sort %v clauses %d: SearchIDs %v, the page %q", q.Sort, len(q.Clauses), got, want)
		}
		limited, err := s.SearchIDs(ctx, &q, 1)
		if err != nil || len(got) > 0 && !slices.Equal(limited, got[:1]) {
			t.Errorf("limit 1: %v %v", limited, err)
		}
	}
	live, err := s.ReadLive(ctx, "Patient", []string{"p3", "p5", "nope", "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(ids(live)); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"p1", "p3"}) {
		t.Errorf("ReadLive p3 p5(deleted) nope p1: %v", got)
	}
	for _, r := range live {
		if len(r.Content) == 0 || r.VersionID == 0 || r.LastUpdated.IsZero() {
			t.Errorf("ReadLive %s: incomplete %+v", r.ID, r)
		}
	}
	if live, err := s.ReadLive(ctx, "Patient", nil); err != nil || len(live) != 0 {
		t.Errorf("ReadLive of nothing: %v %v", live, err)
	}
}

// A stored set gives back any range of its positions, across the rows it is stored in;
// an unknown key is CodeNotFound; purging removes the expired sets and only them.
func testResultSets(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	all := make([]string, 2345)
	for i := range all {
		all[i] = fmt.Sprintf("id-%04d", i)
	}
	exp := t0.Add(time.Hour)
	set := &resources.ResultSet{Key: "k1", Type: "Patient", Fingerprint: "fp", Total: 3000, Size: len(all), Expires: exp, IDs: all}
	if err := s.SaveResultSet(ctx, set); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int{{0, 20}, {990, 1010}, {999, 1000}, {1000, 1001}, {0, 1000}, {1500, 2500}, {2340, 2400}, {2345, 2365}, {3000, 3020}, {5, 5}} {
		got, err := s.LoadResultSet(ctx, "k1", r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		want := all[min(r[0], len(all)):min(r[1], len(all))]
		if !slices.Equal(got.IDs, want) && !(len(got.IDs) == 0 && len(want) == 0) {
			t.Errorf("[%d, %d): %d ids from %v, want %d from %v", r[0], r[1], len(got.IDs), first(got.IDs), len(want), first(want))
		}
		if got.Type != "Patient" || got.Fingerprint != "fp" || got.Total != 3000 || got.Size != len(all) || !got.Expires.Equal(exp) || got.From != r[0] {
			t.Errorf("[%d, %d): set %+v", r[0], r[1], *got)
		}
	}
	if _, err := s.LoadResultSet(ctx, "nope", 0, 10); resources.ErrorCode(err) != resources.CodeNotFound {
		t.Errorf("unknown key: %v, want not found", err)
	}
	if err := s.SaveResultSet(ctx, &resources.ResultSet{Key: "k2", Type: "Patient", Total: 2, Size: 2, Expires: exp.Add(time.Hour), IDs: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeResultSets(ctx, exp.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("purge: %d %v, want 1", n, err)
	}
	if _, err := s.LoadResultSet(ctx, "k1", 0, 10); resources.ErrorCode(err) != resources.CodeNotFound {
		t.Errorf("purged set: %v", err)
	}
	var left int
	if err := s.SQL().QueryRowContext(ctx, `SELECT count(*) FROM search_set_ids WHERE set_key = 'k1'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("purged set left %d rows of ids (%v)", left, err)
	}
	if got, err := s.LoadResultSet(ctx, "k2", 1, 5); err != nil || !slices.Equal(got.IDs, []string{"b"}) {
		t.Errorf("the set that has not expired: %v %v", got, err)
	}
}

func first(ids []string) string {
	if len(ids) == 0 {
		return "nothing"
	}
	return ids[0]
}
