package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// A search confined to a compartment finds exactly the compartment's resources of its
// type, counted and listed, a compartment of over a thousand of them as one of three; a
// compartment holding none of the type finds nothing; on the compartment's own type
// (which stores read as a list of ids first) the Patient and the one that links to it.
func testSearchConfined(t *testing.T, be *Backend) {
	s := be.Open(t)
	bg := context.Background()
	obs := func(id, patient string) resources.WriteFunc {
		return func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Observation", ID: id, VersionID: 1, LastUpdated: t0, Content: []byte(`{"resourceType":"Observation","id":"` + id + `"}`)},
				&resources.Index{References: []resources.ReferenceEntry{{Param: "subject", TargetType: "Patient", TargetID: patient}}}, nil
		}
	}
	err := s.Transaction(bg, func(ctx context.Context) error {
		for i := range 1005 {
			if _, err := s.Write(resources.WithFreshID(ctx), "Observation", fmt.Sprintf("big%04d", i), obs(fmt.Sprintf("big%04d", i), "big")); err != nil {
				return err
			}
		}
		for i := range 3 {
			if _, err := s.Write(resources.WithFreshID(ctx), "Observation", fmt.Sprintf("small%d", i), obs(fmt.Sprintf("small%d", i), "small")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "Patient", "big", t0, `{}`, nil)
	put(t, s, "Patient", "small", t0, `{}`, nil)
	put(t, s, "Patient", "twin", t0, `{}`, &resources.Index{References: []resources.ReferenceEntry{{Param: "link", TargetType: "Patient", TargetID: "big"}}})

	confined := func(typ, patient string, params ...string) *resources.Query {
		return &resources.Query{Type: typ, Count: 5, Total: resources.TotalAccurate, Confine: [][]resources.ConfineGroup{{{
			Types: []string{typ}, Compartment: &resources.Compartment{Type: "Patient", ID: patient}, Params: params,
		}}}}
	}
	for _, tc := range []struct {
		name  string
		q     *resources.Query
		total int
	}{
		{"over a thousand members", confined("Observation", "big", "subject", "performer"), 1005},
		{"a few members", confined("Observation", "small", "subject", "performer"), 3},
		{"none of the type", confined("Observation", "nobody", "subject", "performer"), 0},
		{"the compartment's own type", confined("Patient", "big", "link"), 2},
	} {
		r := search(t, s, tc.q)
		if r.Total != tc.total || len(r.Entries) != min(tc.total, 5) {
			t.Errorf("%s: total %d, %d entries; want %d", tc.name, r.Total, len(r.Entries), tc.total)
		}
		ids, err := s.SearchIDs(bg, tc.q, 2000)
		if err != nil || len(ids) != tc.total {
			t.Errorf("%s: SearchIDs: %d ids (%v), want %d", tc.name, len(ids), err, tc.total)
		}
	}
}
