package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// textRows counts the full-text rows of typ/id, and every full-text row of the store
// (on SQLite the FTS5 rows, which only their keys tie to a resource, so that one left
// behind by a write or a purge shows).
func textRows(t testing.TB, s Store, typ, id string) (mine, all int) {
	t.Helper()
	db := s.SQL()
	keys := "search_text_key" // SQLite: the FTS5 table has no resource columns
	if err := db.QueryRow("SELECT count(*) FROM " + keys).Scan(&all); err != nil {
		keys = "search_text"
	}
	if err := db.QueryRow("SELECT count(*) FROM "+keys+" WHERE resource_type = $1 AND id = $2", typ, id).Scan(&mine); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT count(*) FROM search_text").Scan(&all); err != nil {
		t.Fatal(err)
	}
	if keys == "search_text_key" {
		var k int
		if err := db.QueryRow("SELECT count(*) FROM search_text_key").Scan(&k); err != nil || k != all {
			t.Errorf("%d FTS5 rows for %d keys (%v)", all, k, err)
		}
	}
	return mine, all
}

// fullText is a Query of one full-text clause.
func fullText(typ string, p *resources.SearchParam, values ...string) *resources.Query {
	c := resources.Clause{Param: p}
	for _, v := range values {
		c.Values = append(c.Values, resources.Value{Raw: v, Str: v})
	}
	return &resources.Query{Type: typ, Count: 10, Total: resources.TotalAccurate, Clauses: []resources.Clause{c}}
}

// A write's full text is searchable by _text (narrative) and _content, replaced by the
// next version's, dropped by a version without text, a deletion and a purge; a create
// under a fresh id (batched on PostgreSQL) indexes it too.
func testFullText(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	text := func(narrative, content string) *resources.Index {
		return &resources.Index{Text: resources.FullText{Narrative: narrative, Content: content}}
	}
	found := func(q *resources.Query) string { t.Helper(); return ids(search(t, s, q).Entries) }

	put(t, s, "Patient", "p1", t0, `{}`, text("chronic hepatitis", "chronic hepatitis zebrowski ann"))
	put(t, s, "Patient", "p2", t0, `{}`, text("", "okafor ann"))
	put(t, s, "Basic", "p1", t0, `{}`, text("hepatitis", "hepatitis"))
	for _, tt := range []struct {
		q    *resources.Query
		want string
	}{
		{fullText("Patient", resources.TextParam, "hepatitis"), "p1"},
		{fullText("Patient", resources.TextParam, "zebrowski"), ""},
		{fullText("Patient", resources.ContentParam, "zebrowski"), "p1"},
		{fullText("Patient", resources.ContentParam, "ann"), "p1 p2"},
		{fullText("Patient", resources.ContentParam, "ann okafor"), "p2"},
		{fullText("Patient", resources.ContentParam, "okafor chronic"), ""},
		{fullText("Patient", resources.ContentParam, "okafor", "chronic"), "p1 p2"},
	} {
		if got := found(tt.q); !sameSet(got, tt.want) {
			t.Errorf("%s=%v: %q, want %q", tt.q.Clauses[0].Param.Name, tt.q.Clauses[0].Values, got, tt.want)
		}
	}
	put(t, s, "Patient", "p1", t0.Add(time.Second), `{}`, text("recovered", "recovered"))
	if got := found(fullText("Patient", resources.TextParam, "hepatitis")); got != "" {
		t.Errorf("after the update: %q", got)
	}
	if got := found(fullText("Patient", resources.TextParam, "recovered")); got != "p1" {
		t.Errorf("the update's words: %q", got)
	}
	put(t, s, "Patient", "p1", t0.Add(2*time.Second), `{}`, &resources.Index{})
	if mine, _ := textRows(t, s, "Patient", "p1"); mine != 0 {
		t.Errorf("%d text rows after a version without text", mine)
	}
	del(t, s, "Patient", "p2", t0.Add(time.Second))
	if mine, _ := textRows(t, s, "Patient", "p2"); mine != 0 {
		t.Errorf("%d text rows after the deletion", mine)
	}
	if got := found(fullText("Patient", resources.ContentParam, "ann")); got != "" {
		t.Errorf("after the deletion: %q", got)
	}
	if mine, all := textRows(t, s, "Basic", "p1"); mine != 1 || all != 1 {
		t.Errorf("text rows: Basic/p1 %d, all %d; want 1, 1", mine, all)
	}

	// A fresh id (PostgreSQL's batched inserts) and a purge.
	fresh := resources.NewID()
	_, err := s.Write(resources.WithFreshID(ctx), "Session", fresh, func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
		idx := text("", "quokka")
		idx.Numbers = []resources.NumberEntry{{Param: "ends", Value: float64(t0.Unix())}}
		return &resources.Resource{Type: "Session", ID: fresh, VersionID: 1, LastUpdated: t0, Content: []byte(`{}`)}, idx, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := found(fullText("Session", resources.ContentParam, "quokka")); got != fresh {
		t.Errorf("fresh create: %q", got)
	}
	if n, err := s.Purge(ctx, "Session", "ends", t0.Add(time.Hour), t0, 10); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if mine, all := textRows(t, s, "Session", fresh); mine != 0 || all != 1 {
		t.Errorf("after the purge: Session %d text rows, all %d; want 0, 1", mine, all)
	}
}

// sameSet compares space-separated lists as sets.
func sameSet(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
