package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// rewriter returns s as a resources.IndexRewriter, which every store must be.
func rewriter(t testing.TB, s Store) resources.IndexRewriter {
	t.Helper()
	rw, ok := s.(resources.IndexRewriter)
	if !ok {
		t.Fatalf("%T is no resources.IndexRewriter", s)
	}
	return rw
}

// valueIndex is the index the rewrite tests extract: param v holds the content's "v",
// param w its "w".
func valueIndex(r *resources.Resource) (*resources.Index, error) {
	var doc map[string]string
	if err := json.Unmarshal(r.Content, &doc); err != nil {
		return nil, err
	}
	idx := &resources.Index{}
	for _, p := range []string{"v", "w"} {
		if doc[p] != "" {
			idx.Strings = append(idx.Strings, resources.StringEntry{Param: p, Value: doc[p], Exact: doc[p]})
		}
	}
	return idx, nil
}

// stringRows lists the string index rows of typ/id as param=value, sorted.
func stringRows(t testing.TB, s Store, typ, id string) string {
	t.Helper()
	rows, err := s.SQL().Query(`SELECT param, value FROM search_string WHERE resource_type = $1 AND id = $2`, typ, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p, v string
		if err := rows.Scan(&p, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, p+"="+v)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func stale(v string) *resources.Index {
	return &resources.Index{Strings: []resources.StringEntry{{Param: "v", Value: v, Exact: v}, {Param: "w", Value: v, Exact: v}}}
}

// RewriteIndex walks the live resources of a type in id order, batch by batch, and
// replaces their index rows (or only those of the parameters named) without a new
// version; deleted resources and other types are left alone, as is a resource whose
// Extract returns nil; Since narrows the walk to recent resources.
func testRewriteIndex(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	rw := rewriter(t, s)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		put(t, s, "Patient", id, t0.Add(time.Duration(i)*time.Hour), `{"v":"new-`+id+`","w":"w-`+id+`"}`, stale("old"))
	}
	put(t, s, "Patient", "gone", t0, `{"v":"x"}`, stale("old"))
	del(t, s, "Patient", "gone", t0)
	put(t, s, "Observation", "o", t0, `{"v":"x"}`, stale("old"))
	if n, err := rw.CountLive(ctx, "Patient", time.Time{}); err != nil || n != 5 {
		t.Fatalf("CountLive = %d, %v; want 5", n, err)
	}
	if n, err := rw.CountLive(ctx, "Patient", t0.Add(3*time.Hour)); err != nil || n != 2 {
		t.Fatalf("CountLive since = %d, %v; want 2", n, err)
	}
	var seen []string
	b := resources.RewriteBatch{Type: "Patient", Limit: 2, Params: []string{"v"}, Extract: func(r *resources.Resource) (*resources.Index, error) {
		seen = append(seen, r.ID)
		if r.ID == "c" {
			return nil, nil
		}
		idx, err := valueIndex(r)
		if idx != nil {
			idx.Strings = idx.Strings[:1] // v's only, as RewriteBatch.Params asks
		}
		return idx, err
	}}
	var lasts []string
	for {
		last, n, err := rw.RewriteIndex(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		lasts = append(lasts, last)
		if n < b.Limit {
			break
		}
		b.After = last
	}
	if got := strings.Join(seen, ","); got != "a,b,c,d,e" {
		t.Errorf("resources read: %s", got)
	}
	if got := strings.Join(lasts, ","); got != "b,d,e" {
		t.Errorf("last ids of the batches: %s", got)
	}
	for id, want := range map[string]string{"a": "v=new-a w=old", "c": "v=old w=old", "e": "v=new-e w=old"} {
		if got := stringRows(t, s, "Patient", id); got != want {
			t.Errorf("Patient/%s rows: %s, want %s", id, got, want)
		}
	}
	if got := stringRows(t, s, "Observation", "o"); got != "v=old w=old" {
		t.Errorf("another type's rows: %s", got)
	}
	if r, _ := s.Read(ctx, "Patient", "a"); r.VersionID != 1 {
		t.Errorf("a rewrite made version %d", r.VersionID)
	}

	// Every row, of the recent resources only.
	b = resources.RewriteBatch{Type: "Patient", Limit: 10, Since: t0.Add(3 * time.Hour), Extract: valueIndex}
	if _, n, err := rw.RewriteIndex(ctx, b); err != nil || n != 2 {
		t.Fatalf("since: %d, %v; want 2", n, err)
	}
	if got := stringRows(t, s, "Patient", "d"); got != "v=new-d w=w-d" {
		t.Errorf("Patient/d: %s", got)
	}
	if got := stringRows(t, s, "Patient", "a"); got != "v=new-a w=old" {
		t.Errorf("Patient/a, not recent: %s", got)
	}
}

// A write of a resource that a rewrite batch holds is neither lost nor has its index
// replaced by the rewrite's, made from the older content: the store makes the write
// wait for the batch, whose Extract is held here while the write is sent.
func testRewriteIndexConcurrentWrite(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	rw := rewriter(t, s)
	put(t, s, "Patient", "a", t0, `{"v":"before"}`, stale("before"))
	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b := resources.RewriteBatch{Type: "Patient", Limit: 10, Extract: func(r *resources.Resource) (*resources.Index, error) {
		once.Do(func() {
			close(inside)
			<-release
		})
		return valueIndex(r)
	}}
	errc := make(chan error, 1)
	go func() {
		_, _, err := rw.RewriteIndex(ctx, b)
		errc <- err
	}()
	<-inside
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		put(t, s, "Patient", "a", t0.Add(time.Hour), `{"v":"after"}`, &resources.Index{Strings: []resources.StringEntry{{Param: "v", Value: "after", Exact: "after"}}})
	}()
	select {
	case <-wrote:
		// A store may let the write through first only if the batch then reads it.
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	<-wrote
	if got := stringRows(t, s, "Patient", "a"); got != "v=after" {
		t.Errorf("index after a write during the rewrite: %q, want v=after", got)
	}
	if r, _ := s.Read(ctx, "Patient", "a"); r.VersionID != 2 {
		t.Errorf("version %d, want 2", r.VersionID)
	}
}
