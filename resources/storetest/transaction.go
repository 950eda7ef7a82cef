package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

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
