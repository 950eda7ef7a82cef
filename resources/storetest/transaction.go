package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// create is the WriteFunc of a first version of typ/id.
func create(typ, id string) resources.WriteFunc {
	return func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		v := int64(1)
		if cur != nil {
			v = cur.VersionID + 1
		}
		return &resources.Resource{Type: typ, ID: id, VersionID: v, LastUpdated: t0,
			Content: json.RawMessage(`{"resourceType":"` + typ + `","id":"` + id + `"}`)}, nil, nil
	}
}

// A Transaction's reads and searches see its writes (fresh creates included), others
// do not until it commits, and an error rolls every write back; a Transaction inside
// one joins it (conformance F41).
func testTransaction(t *testing.T, be *Backend) {
	s := be.Open(t)
	bg := context.Background()
	live := func(ctx context.Context) int {
		t.Helper()
		r, err := s.Search(ctx, &resources.Query{Type: "Patient", Count: 50, Total: resources.TotalNone})
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Entries)
	}
	put(t, s, "Patient", "old", t0, `{"resourceType":"Patient","id":"old"}`, nil)

	err := s.Transaction(bg, func(ctx context.Context) error {
		if _, err := s.Write(resources.WithFreshID(ctx), "Patient", "fresh", create("Patient", "fresh")); err != nil {
			return err
		}
		if _, err := s.Write(ctx, "Patient", "old", create("Patient", "old")); err != nil {
			return err
		}
		if n := live(ctx); n != 2 {
			t.Errorf("inside: %d live Patients, want 2", n)
		}
		if r, err := s.Read(ctx, "Patient", "fresh"); err != nil || r.VersionID != 1 {
			t.Errorf("inside: read of the fresh create: %v %v", r, err)
		}
		if r, err := s.Read(ctx, "Patient", "old"); err != nil || r.VersionID != 2 {
			t.Errorf("inside: read of the update: %v %v", r, err)
		}
		if h, err := s.History(ctx, resources.HistoryQuery{Type: "Patient", ID: "old", Count: 10}); err != nil || h.Total != 2 {
			t.Errorf("inside: history %v %v", h, err)
		}
		// Outside the transaction nothing of it shows yet.
		if _, err := s.Read(bg, "Patient", "fresh"); resources.ErrorCode(err) != resources.CodeNotFound {
			t.Errorf("outside, before the commit: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Read(bg, "Patient", "fresh"); err != nil || r.VersionID != 1 {
		t.Errorf("after the commit: %v %v", r, err)
	}

	boom := errors.New("boom")
	err = s.Transaction(bg, func(ctx context.Context) error {
		if _, err := s.Write(resources.WithFreshID(ctx), "Patient", "rolled", create("Patient", "rolled")); err != nil {
			return err
		}
		if _, err := s.Write(ctx, "Patient", "old", create("Patient", "old")); err != nil {
			return err
		}
		// A nested transaction joins: its writes go with the outer one.
		return s.Transaction(ctx, func(ctx context.Context) error {
			if _, err := s.Write(ctx, "Patient", "inner", create("Patient", "inner")); err != nil {
				return err
			}
			if n := live(ctx); n != 4 {
				t.Errorf("inside the nested one: %d live Patients, want 4", n)
			}
			return boom
		})
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the function's", err)
	}
	for _, id := range []string{"rolled", "inner"} {
		if _, err := s.Read(bg, "Patient", id); resources.ErrorCode(err) != resources.CodeNotFound {
			t.Errorf("%s after the rollback: %v", id, err)
		}
	}
	if r, _ := s.Read(bg, "Patient", "old"); r == nil || r.VersionID != 2 {
		t.Errorf("the rolled-back update stayed: %v", r)
	}
	if n := live(bg); n != 2 {
		t.Errorf("after the rollback: %d live Patients, want 2", n)
	}
}

// A Transaction of many creates under fresh ids (more than a store holds back at once)
// stores each with its rows of every kind and its text, as single writes do: found by
// searches inside the transaction and after it, an update of another resource between
// them included. A fresh create whose id is taken after all fails the whole
// transaction with a conflict, and nothing of it is stored.
func testTransactionManyCreates(t *testing.T, be *Backend) {
	s := be.Open(t)
	bg := context.Background()
	put(t, s, "Patient", "old", t0, `{"resourceType":"Patient","id":"old"}`, nil)
	const n = 1100
	at := func(i int) time.Time { return day(1950, 1, 1).AddDate(0, 0, i) }
	idx := func(i int) *resources.Index {
		return &resources.Index{
			Strings:    []resources.StringEntry{{Param: "name", Value: fmt.Sprintf("n%d", i%7), Exact: fmt.Sprintf("N%d", i%7)}},
			Tokens:     []resources.TokenEntry{{Param: "gender", System: genderSys, Code: fmt.Sprintf("c%d", i%5)}},
			Dates:      []resources.DateEntry{{Param: "birthdate", Low: at(i), High: at(i + 1)}},
			Numbers:    []resources.NumberEntry{{Param: "length", Value: float64(i) + 0.5}},
			References: []resources.ReferenceEntry{{Param: "general-practitioner", TargetType: "Practitioner", TargetID: fmt.Sprintf("d%d", i%3)}},
			Text:       resources.FullText{Content: fmt.Sprintf("word%d common", i%11)},
		}
	}
	typeOf := func(i int) string { return []string{"Patient", "Basic"}[i%2] }
	write := func(ctx context.Context, i int) error {
		typ, id := typeOf(i), fmt.Sprintf("m%04d", i)
		_, err := s.Write(resources.WithFreshID(ctx), typ, id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: typ, ID: id, VersionID: 1, LastUpdated: t0,
				Content: json.RawMessage(fmt.Sprintf(`{"resourceType":%q,"id":%q,"n":%d}`, typ, id, i))}, idx(i), nil
		})
		return err
	}
	count := func(ctx context.Context, q *resources.Query) int {
		t.Helper()
		q.Count, q.Total = 0, resources.TotalAccurate
		r, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return r.Total
	}
	// Expected matches among the Patients (even i) of each clause.
	want := func(pred func(i int) bool) int {
		c := 0
		for i := 0; i < n; i += 2 {
			if pred(i) {
				c++
			}
		}
		return c
	}
	checks := []struct {
		name   string
		clause resources.Clause
		want   int
	}{
		{"string", cl(pName, "", str("n3")), want(func(i int) bool { return i%7 == 3 })},
		{"string exact", cl(pName, "exact", str("N3")), want(func(i int) bool { return i%7 == 3 })},
		{"token", cl(pGender, "", sysCode(genderSys, "c4")), want(func(i int) bool { return i%5 == 4 })},
		{"date", cl(pBirthdate, "", year(resources.PrefixEq, 1951)), want(func(i int) bool { return at(i).Year() == 1951 })},
		{"number", cl(pLength, "", num(resources.PrefixGe, 1000, 0.05)), want(func(i int) bool { return float64(i)+0.5 >= 1000 })},
		{"reference", cl(pGP, "", ref("Practitioner", "d1")), want(func(i int) bool { return i%3 == 1 })},
		{"full text", fullText("Patient", resources.ContentParam, "word4").Clauses[0], want(func(i int) bool { return i%11 == 4 })},
	}
	verify := func(ctx context.Context, when string) {
		t.Helper()
		if got := count(ctx, &resources.Query{Type: "Patient"}); got != n/2+1 {
			t.Errorf("%s: %d Patients, want %d", when, got, n/2+1)
		}
		for _, c := range checks {
			if got := count(ctx, &resources.Query{Type: "Patient", Clauses: []resources.Clause{c.clause}}); got != c.want {
				t.Errorf("%s: %s: %d Patients, want %d", when, c.name, got, c.want)
			}
		}
	}
	err := s.Transaction(bg, func(ctx context.Context) error {
		for i := range n {
			if err := write(ctx, i); err != nil {
				return err
			}
			if i == n/2 {
				if _, err := s.Write(ctx, "Patient", "old", create("Patient", "old")); err != nil {
					return err
				}
			}
		}
		verify(ctx, "inside")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	verify(bg, "after the commit")
	if r, err := s.Read(bg, "Basic", "m0001"); err != nil || r.VersionID != 1 || !strings.Contains(string(r.Content), `"n": 1`) && !strings.Contains(string(r.Content), `"n":1`) {
		t.Errorf("read back: %v %v", r, err)
	}
	if h, err := s.History(bg, resources.HistoryQuery{Type: "Basic", ID: "m0001", Count: 10}); err != nil || h.Total != 1 {
		t.Errorf("history: %+v %v", h, err)
	}

	err = s.Transaction(bg, func(ctx context.Context) error {
		for _, i := range []int{n, n + 1, 4} { // m0004 is taken
			if err := write(ctx, i); err != nil {
				return err
			}
		}
		return nil
	})
	if resources.ErrorCode(err) != resources.CodeConflict {
		t.Fatalf("a taken id among fresh creates: %v, want a conflict", err)
	}
	if _, err := s.Read(bg, "Patient", fmt.Sprintf("m%04d", n)); resources.ErrorCode(err) != resources.CodeNotFound {
		t.Errorf("a create of the failed transaction was kept: %v", err)
	}
	verify(bg, "after the failed transaction")
}
