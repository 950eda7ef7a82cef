package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// Purge removes what has run out, every row of it, and nothing else: a live resource
// whose end has passed, a deleted one written before the cut-off; not a live one without
// an end, one whose end is still to come, one of another type, or a deletion after the
// cut-off.
func testPurge(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	ends := func(at time.Time) *resources.Index {
		return &resources.Index{
			Numbers: []resources.NumberEntry{{Param: "ends", Value: float64(at.Unix())}},
			Tokens:  []resources.TokenEntry{{Param: "type", Code: "password"}},
		}
	}
	now := t0.Add(24 * time.Hour)
	put(t, s, "Session", "ended", t0, `{"id":"ended"}`, ends(now.Add(-time.Second)))
	put(t, s, "Session", "ended", t0.Add(time.Minute), `{"id":"ended"}`, ends(now.Add(-time.Second)))
	put(t, s, "Session", "live", t0, `{"id":"live"}`, ends(now.Add(time.Hour)))
	put(t, s, "Session", "endless", t0, `{"id":"endless"}`, &resources.Index{Tokens: []resources.TokenEntry{{Param: "type", Code: "password"}}})
	put(t, s, "Session", "closed-long-ago", t0, `{"id":"closed-long-ago"}`, ends(now.Add(time.Hour)))
	del(t, s, "Session", "closed-long-ago", t0.Add(time.Hour))
	put(t, s, "Session", "closed-lately", t0, `{"id":"closed-lately"}`, ends(now.Add(time.Hour)))
	del(t, s, "Session", "closed-lately", now.Add(-time.Minute))
	put(t, s, "Patient", "ended", t0, `{"id":"ended"}`, ends(now.Add(-time.Hour)))

	n, err := s.Purge(ctx, "Session", "ends", now, now.Add(-time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("Purge removed %d, want 2 (ended, closed-long-ago)", n)
	}
	for _, id := range []string{"ended", "closed-long-ago"} {
		if r, err := s.Read(ctx, "Session", id); resources.ErrorCode(err) != resources.CodeNotFound {
			t.Errorf("Read Session/%s after the purge = %+v, %v; want not found", id, r, err)
		}
		h, err := s.History(ctx, resources.HistoryQuery{Type: "Session", ID: id, Count: 10})
		if err != nil || len(h.Entries) != 0 {
			t.Errorf("history of Session/%s after the purge: %v, %v; want none", id, h, err)
		}
		if rows := indexRows(t, s, "Session", id); rows != 0 {
			t.Errorf("%d index rows of Session/%s left", rows, id)
		}
	}
	for _, ref := range []struct{ typ, id string }{{"Session", "live"}, {"Session", "endless"}, {"Session", "closed-lately"}, {"Patient", "ended"}} {
		if r, err := s.Read(ctx, ref.typ, ref.id); err != nil || r == nil {
			t.Errorf("%s/%s is gone after the purge (%v): it has not run out", ref.typ, ref.id, err)
		}
	}
	if n, err := s.Purge(ctx, "Session", "ends", now, now.Add(-time.Hour), 100); err != nil || n != 0 {
		t.Errorf("a second purge removed %d, %v; want 0", n, err)
	}
}

// Purge takes at most limit resources a call; calls until it returns fewer take all.
func testPurgeLimit(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	for i := range 7 {
		put(t, s, "AuthorizationCode", fmt.Sprintf("c%d", i), t0, `{}`,
			&resources.Index{Numbers: []resources.NumberEntry{{Param: "exp", Value: float64(t0.Unix())}}})
	}
	var got []int
	for range 4 {
		n, err := s.Purge(ctx, "AuthorizationCode", "exp", t0.Add(time.Second), t0, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[3 3 1 0]" {
		t.Errorf("purges of 3 at most removed %v, want [3 3 1 0]", got)
	}
}
