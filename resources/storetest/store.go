package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// put stores a new version of typ/id with the given content and index, at time at, and
// returns it.
func put(t testing.TB, s resources.Store, typ, id string, at time.Time, content string, idx *resources.Index) *resources.Resource {
	t.Helper()
	res, err := s.Write(context.Background(), typ, id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		v := int64(1)
		if cur != nil {
			v = cur.VersionID + 1
		}
		return &resources.Resource{Type: typ, ID: id, VersionID: v, LastUpdated: at, Content: json.RawMessage(content)}, idx, nil
	})
	if err != nil {
		t.Fatalf("Write %s/%s: %v", typ, id, err)
	}
	return res
}

// del marks typ/id deleted at time at, as the Service does.
func del(t testing.TB, s Store, typ, id string, at time.Time) {
	t.Helper()
	_, err := s.Write(context.Background(), typ, id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		if cur == nil || cur.Deleted {
			return nil, nil, nil
		}
		return &resources.Resource{Type: typ, ID: id, VersionID: cur.VersionID + 1, LastUpdated: at, Deleted: true, Content: cur.Content}, &resources.Index{}, nil
	})
	if err != nil {
		t.Fatalf("delete %s/%s: %v", typ, id, err)
	}
}

// sameJSON compares documents by value: jsonb does not keep key order or spacing.
func sameJSON(t testing.TB, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("content %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("content = %s, want %s", got, want)
	}
}

func wantCode(t testing.TB, err error, code resources.Code) {
	t.Helper()
	if got := resources.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func testWriteReadVRead(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()

	_, err := s.Read(ctx, "Patient", "p1")
	wantCode(t, err, resources.CodeNotFound)

	// Nanoseconds and zones do not survive the database: Write returns what Read will.
	at := time.Date(2024, 1, 1, 1, 0, 0, 123456789, time.FixedZone("X", 3600))
	v1 := put(t, s, "Patient", "p1", at, `{"resourceType":"Patient","id":"p1","n":1}`, nil)
	if v1.VersionID != 1 {
		t.Fatalf("first version = %d", v1.VersionID)
	}
	if r, err := s.Read(ctx, "Patient", "p1"); err != nil || r.LastUpdated != v1.LastUpdated {
		t.Fatalf("Read gives LastUpdated %v, Write gave %v (%v)", r.LastUpdated, v1.LastUpdated, err)
	}
	put(t, s, "Patient", "p1", t0.Add(time.Second), `{"resourceType":"Patient","id":"p1","n":2}`, nil)

	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "Patient" || got.ID != "p1" || got.VersionID != 2 || !got.LastUpdated.Equal(t0.Add(time.Second)) || got.Deleted {
		t.Errorf("Read = %+v", got)
	}
	if got.LastUpdated.Location() != time.UTC {
		t.Errorf("LastUpdated in %v, want UTC", got.LastUpdated.Location())
	}
	sameJSON(t, got.Content, `{"resourceType":"Patient","id":"p1","n":2}`)

	old, err := s.VRead(ctx, "Patient", "p1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if old.VersionID != 1 || !old.LastUpdated.Equal(t0.Add(123456*time.Microsecond)) {
		t.Errorf("VRead 1 = %+v", old)
	}
	sameJSON(t, old.Content, `{"resourceType":"Patient","id":"p1","n":1}`)

	_, err = s.VRead(ctx, "Patient", "p1", 3)
	wantCode(t, err, resources.CodeNotFound)
	_, err = s.VRead(ctx, "Patient", "nobody", 1)
	wantCode(t, err, resources.CodeNotFound)
	// Types are separate name spaces.
	_, err = s.Read(ctx, "Observation", "p1")
	wantCode(t, err, resources.CodeNotFound)
}

func testDeleteThenRead(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	put(t, s, "Patient", "p1", t0, `{"id":"p1"}`, &resources.Index{Strings: []resources.StringEntry{{Param: "name", Value: "x", Exact: "x"}}})
	del(t, s, "Patient", "p1", t0.Add(time.Minute))

	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deleted || got.VersionID != 2 {
		t.Errorf("Read after delete = %+v", got)
	}
	sameJSON(t, got.Content, `{"id":"p1"}`)
	v2, err := s.VRead(ctx, "Patient", "p1", 2)
	if err != nil || !v2.Deleted {
		t.Errorf("VRead of the deletion = %+v, %v", v2, err)
	}
	if n := indexRows(t, s, "Patient", "p1"); n != 0 {
		t.Errorf("%d index rows left after delete", n)
	}

	// Deleting again is a no-op that returns the deletion.
	res, err := s.Write(ctx, "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		return nil, nil, nil
	})
	if err != nil || res == nil || !res.Deleted || res.VersionID != 2 {
		t.Errorf("no-op Write = %+v, %v", res, err)
	}
	// A deletion keeps no index rows, whatever the WriteFunc returned.
	put(t, s, "Patient", "p2", t0, `{"id":"p2"}`, nil)
	_, err = s.Write(ctx, "Patient", "p2", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "Patient", ID: "p2", VersionID: 2, LastUpdated: t0, Deleted: true, Content: cur.Content},
			&resources.Index{Tokens: []resources.TokenEntry{{Param: "gender", Code: "x"}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := indexRows(t, s, "Patient", "p2"); n != 0 {
		t.Errorf("%d index rows for a deletion", n)
	}
	// A no-op on a resource that never existed returns nil.
	res, err = s.Write(ctx, "Patient", "p9", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		return nil, nil, nil
	})
	if err != nil || res != nil {
		t.Errorf("no-op Write of a missing resource = %+v, %v", res, err)
	}
	if h := history(t, s, resources.HistoryQuery{Type: "Patient", ID: "p1", Count: 10}); h.Total != 2 {
		t.Errorf("history total = %d after a no-op, want 2", h.Total)
	}
}

// indexRows counts the index rows of typ/id over the five tables.
func indexRows(t testing.TB, s Store, typ, id string) int {
	t.Helper()
	var n int
	err := s.SQL().QueryRow(`SELECT
		(SELECT count(*) FROM search_string WHERE resource_type = $1 AND id = $2) +
		(SELECT count(*) FROM search_token WHERE resource_type = $1 AND id = $2) +
		(SELECT count(*) FROM search_date WHERE resource_type = $1 AND id = $2) +
		(SELECT count(*) FROM search_number WHERE resource_type = $1 AND id = $2) +
		(SELECT count(*) FROM search_reference WHERE resource_type = $1 AND id = $2)`, typ, id).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testWriteReplacesIndex(t *testing.T, be *Backend) {
	s := be.Open(t)
	full := &resources.Index{
		Strings:    []resources.StringEntry{{Param: "name", Value: "a", Exact: "A"}, {Param: "name", Value: "b", Exact: "B"}},
		Tokens:     []resources.TokenEntry{{Param: "gender", System: "s", Code: "female"}},
		Dates:      []resources.DateEntry{{Param: "birthdate", Low: t0, High: t0.AddDate(1, 0, 0)}},
		Numbers:    []resources.NumberEntry{{Param: "length", Value: 1.5, System: "u", Code: "m"}},
		References: []resources.ReferenceEntry{{Param: "gp", TargetType: "Practitioner", TargetID: "d1"}},
	}
	put(t, s, "Patient", "p1", t0, `{}`, full)
	if n := indexRows(t, s, "Patient", "p1"); n != 6 {
		t.Fatalf("%d index rows, want 6", n)
	}
	put(t, s, "Patient", "p1", t0, `{}`, &resources.Index{Tokens: []resources.TokenEntry{{Param: "gender", Code: "male"}}})
	if n := indexRows(t, s, "Patient", "p1"); n != 1 {
		t.Fatalf("%d index rows after the update, want 1", n)
	}
	put(t, s, "Patient", "p1", t0, `{}`, nil)
	if n := indexRows(t, s, "Patient", "p1"); n != 0 {
		t.Fatalf("%d index rows after a nil index, want 0", n)
	}
}

func testWriteErrorRollsBack(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	put(t, s, "Patient", "p1", t0, `{"v":1}`, &resources.Index{Strings: []resources.StringEntry{{Param: "name", Value: "a", Exact: "a"}}})

	t.Run("fn error is returned as is", func(t *testing.T) {
		sentinel := resources.Errorf(resources.CodePreconditionFailed, "stale")
		_, err := s.Write(ctx, "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return nil, nil, sentinel
		})
		if err != sentinel {
			t.Fatalf("Write error = %v, want the fn's error itself", err)
		}
		plain := errors.New("plain")
		_, err = s.Write(ctx, "Patient", "p2", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Patient", ID: "p2", VersionID: 1, LastUpdated: t0, Content: json.RawMessage(`{}`)}, nil, plain
		})
		if err != plain {
			t.Fatalf("Write error = %v, want the fn's error itself", err)
		}
	})
	t.Run("failing index insert", func(t *testing.T) {
		// The index insert fails after the resource and history rows were written in
		// the same transaction.
		be.RefuseIndexValue(t, s, "refused")
		_, err := s.Write(ctx, "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Patient", ID: "p1", VersionID: 2, LastUpdated: t0, Content: json.RawMessage(`{"v":2}`)},
				&resources.Index{Strings: []resources.StringEntry{{Param: "name", Value: "refused", Exact: "bad"}}}, nil
		})
		wantCode(t, err, resources.CodeInternal)
		_, err = s.Write(ctx, "Patient", "p3", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Patient", ID: "p3", VersionID: 1, LastUpdated: t0, Content: json.RawMessage(`{"v":1}`)},
				&resources.Index{Tokens: []resources.TokenEntry{{Param: "x", Code: "ok"}, {Param: "x", Code: "refused"}}}, nil
		})
		wantCode(t, err, resources.CodeInternal)
	})
	t.Run("mismatched resource", func(t *testing.T) {
		_, err := s.Write(ctx, "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Patient", ID: "other", VersionID: 2, LastUpdated: t0, Content: json.RawMessage(`{}`)}, nil, nil
		})
		wantCode(t, err, resources.CodeInternal)
	})

	// Nothing of the failed writes is visible.
	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil || got.VersionID != 1 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	sameJSON(t, got.Content, `{"v":1}`)
	for _, id := range []string{"p2", "p3"} {
		_, err = s.Read(ctx, "Patient", id)
		wantCode(t, err, resources.CodeNotFound)
		if n := indexRows(t, s, "Patient", id); n != 0 {
			t.Errorf("%s: %d index rows from a failed write", id, n)
		}
	}
	if h := history(t, s, resources.HistoryQuery{Type: "Patient", Count: 10}); h.Total != 1 {
		t.Errorf("history has %d versions, want 1", h.Total)
	}
	if n := indexRows(t, s, "Patient", "p1"); n != 1 {
		t.Errorf("%d index rows, want the original 1", n)
	}
}

func testWriteCanceled(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Write(ctx, "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		t.Error("fn called with a canceled context")
		return nil, nil, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write error = %v, want context.Canceled", err)
	}
	_, err = s.Read(ctx, "Patient", "p1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read error = %v, want context.Canceled", err)
	}
}

// Concurrent writes of one resource run one after the other: no increment is lost, the
// first-time create race included (every goroutine may find no row to lock).
func testConcurrentWrites(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	const n = 20
	for _, tc := range []struct {
		name string
		id   string
	}{{"existing", "counter"}, {"create race", "fresh"}} {
		t.Run(tc.name, func(t *testing.T) {
			start := 0
			if tc.name == "existing" {
				put(t, s, "Basic", tc.id, t0, `{"count":0}`, nil)
				start = 1
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					_, err := s.Write(ctx, "Basic", tc.id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
						var doc struct{ Count int }
						v := int64(1)
						if cur != nil {
							if err := json.Unmarshal(cur.Content, &doc); err != nil {
								return nil, nil, err
							}
							v = cur.VersionID + 1
						}
						doc.Count++
						// Widen the window between the locking read and the write.
						time.Sleep(time.Millisecond)
						return &resources.Resource{Type: "Basic", ID: tc.id, VersionID: v, LastUpdated: time.Now().UTC(),
								Content: json.RawMessage(fmt.Sprintf(`{"count":%d}`, doc.Count))},
							&resources.Index{Numbers: []resources.NumberEntry{{Param: "count", Value: float64(doc.Count)}}}, nil
					})
					if err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			got, err := s.Read(ctx, "Basic", tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if got.VersionID != int64(start+n) {
				t.Errorf("version = %d, want %d", got.VersionID, start+n)
			}
			sameJSON(t, got.Content, fmt.Sprintf(`{"count":%d}`, n))
			h := history(t, s, resources.HistoryQuery{Type: "Basic", ID: tc.id, Count: 100})
			if h.Total != start+n {
				t.Errorf("history has %d versions, want %d", h.Total, start+n)
			}
			// Every version holds the count of its own increment.
			for _, e := range h.Entries {
				var doc struct{ Count int }
				if err := json.Unmarshal(e.Content, &doc); err != nil {
					t.Fatal(err)
				}
				if int64(doc.Count) != e.VersionID-int64(start) {
					t.Errorf("version %d has count %d, want %d", e.VersionID, doc.Count, e.VersionID-int64(start))
				}
			}
			if rows := indexRows(t, s, "Basic", tc.id); rows != 1 {
				t.Errorf("%d index rows, want 1", rows)
			}
		})
	}
}

func history(t testing.TB, s Store, q resources.HistoryQuery) *resources.HistoryResult {
	t.Helper()
	h, err := s.History(context.Background(), q)
	if err != nil {
		t.Fatalf("History(%+v): %v", q, err)
	}
	return h
}

// versions lists entries as "id/version".
func versions(rs []*resources.Resource) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s/%d", r.ID, r.VersionID))
	}
	return strings.Join(parts, " ")
}

func testHistory(t *testing.T, be *Backend) {
	s := be.Open(t)
	// a: versions 1..3 at t0+0,2,4 min; b: 1..2 at t0+1,3 min, then deleted at +5.
	put(t, s, "Patient", "a", t0, `{"v":1}`, nil)
	put(t, s, "Patient", "b", t0.Add(1*time.Minute), `{"v":1}`, nil)
	put(t, s, "Patient", "a", t0.Add(2*time.Minute), `{"v":2}`, nil)
	put(t, s, "Patient", "b", t0.Add(3*time.Minute), `{"v":2}`, nil)
	put(t, s, "Patient", "a", t0.Add(4*time.Minute), `{"v":3}`, nil)
	del(t, s, "Patient", "b", t0.Add(5*time.Minute))
	put(t, s, "Observation", "a", t0.Add(6*time.Minute), `{}`, nil)
	// Two versions of different resources at one instant are ordered by version, then id.
	put(t, s, "Device", "y", t0, `{}`, nil)
	put(t, s, "Device", "x", t0, `{}`, nil)
	put(t, s, "Device", "x", t0, `{}`, nil)

	for _, tc := range []struct {
		name      string
		q         resources.HistoryQuery
		want      string
		wantTotal int
	}{
		{"resource", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 10}, "a/3 a/2 a/1", 3},
		{"resource page 1", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 2}, "a/3 a/2", 3},
		{"resource page 2", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 2, Offset: 2}, "a/1", 3},
		{"resource past the end", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 2, Offset: 4}, "", 3},
		{"count 0", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 0}, "", 3},
		{"with deletion", resources.HistoryQuery{Type: "Patient", ID: "b", Count: 10}, "b/3 b/2 b/1", 3},
		{"type", resources.HistoryQuery{Type: "Patient", Count: 10}, "b/3 a/3 b/2 a/2 b/1 a/1", 6},
		{"type paged", resources.HistoryQuery{Type: "Patient", Count: 4, Offset: 1}, "a/3 b/2 a/2 b/1", 6},
		{"since", resources.HistoryQuery{Type: "Patient", Count: 10, Since: t0.Add(3 * time.Minute)}, "b/3 a/3 b/2", 3},
		{"since resource", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 10, Since: t0.Add(2 * time.Minute)}, "a/3 a/2", 2},
		{"since future", resources.HistoryQuery{Type: "Patient", Count: 10, Since: t0.Add(time.Hour)}, "", 0},
		{"unknown", resources.HistoryQuery{Type: "Patient", ID: "zz", Count: 10}, "", 0},
		{"tie", resources.HistoryQuery{Type: "Device", Count: 10}, "x/2 x/1 y/1", 3},
		{"system", resources.HistoryQuery{Types: []string{"Observation", "Patient"}, Count: 10}, "a/1 b/3 a/3 b/2 a/2 b/1 a/1", 7},
		{"system since", resources.HistoryQuery{Types: []string{"Observation", "Patient"}, Count: 10, Since: t0.Add(4 * time.Minute)}, "a/1 b/3 a/3", 3},
		{"at instant", resources.HistoryQuery{Type: "Patient", Count: 10, AtLow: t0.Add(150 * time.Second), AtHigh: t0.Add(150*time.Second + time.Millisecond)}, "a/2 b/1", 2},
		{"at deletion", resources.HistoryQuery{Type: "Patient", Count: 10, AtLow: t0.Add(330 * time.Second), AtHigh: t0.Add(331 * time.Second)}, "b/3 a/3", 2},
		{"at a version's instant", resources.HistoryQuery{Type: "Patient", ID: "a", Count: 10, AtLow: t0.Add(2 * time.Minute), AtHigh: t0.Add(2*time.Minute + time.Millisecond)}, "a/2", 1},
		{"at period", resources.HistoryQuery{Type: "Patient", Count: 10, AtLow: t0.Add(time.Minute), AtHigh: t0.Add(3 * time.Minute)}, "a/2 b/1 a/1", 3},
		{"at before", resources.HistoryQuery{Type: "Patient", Count: 10, AtLow: t0.Add(-time.Hour), AtHigh: t0.Add(-time.Minute)}, "", 0},
		{"at and since", resources.HistoryQuery{Type: "Patient", Count: 10, Since: t0.Add(2 * time.Minute), AtLow: t0.Add(time.Minute), AtHigh: t0.Add(3 * time.Minute)}, "a/2", 1},
		{"cursor", resources.HistoryQuery{Type: "Patient", Count: 2, After: &resources.HistoryCursor{LastUpdated: t0.Add(4 * time.Minute), VersionID: 3, Type: "Patient", ID: "a"}}, "b/2 a/2", 6},
		{"cursor tie", resources.HistoryQuery{Type: "Device", Count: 10, After: &resources.HistoryCursor{LastUpdated: t0, VersionID: 2, Type: "Device", ID: "x"}}, "x/1 y/1", 3},
		{"cursor tie id", resources.HistoryQuery{Type: "Device", Count: 10, After: &resources.HistoryCursor{LastUpdated: t0, VersionID: 1, Type: "Device", ID: "x"}}, "y/1", 3},
		{"cursor last", resources.HistoryQuery{Type: "Device", Count: 10, After: &resources.HistoryCursor{LastUpdated: t0, VersionID: 1, Type: "Device", ID: "y"}}, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := history(t, s, tc.q)
			if got := versions(h.Entries); got != tc.want || h.Total != tc.wantTotal {
				t.Errorf("History = %q total %d, want %q total %d", got, h.Total, tc.want, tc.wantTotal)
			}
			for _, e := range h.Entries {
				if (e.Type != tc.q.Type && !slices.Contains(tc.q.Types, e.Type)) || e.LastUpdated.IsZero() || len(e.Content) == 0 {
					t.Errorf("entry %+v incomplete", e)
				}
				if e.Deleted != (e.ID == "b" && e.VersionID == 3) {
					t.Errorf("entry %s/%d Deleted = %v", e.ID, e.VersionID, e.Deleted)
				}
			}
		})
	}
}

func testPing(t *testing.T, be *Backend) {
	s := be.Open(t)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.SQL() == nil {
		t.Fatal("SQL is nil")
	}
	s.Close()
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}
