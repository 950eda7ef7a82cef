package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// testInclude checks Store.Include: forward links (with and without a target type),
// reverse links, each resource once, deleted resources left out, the limit, and ids
// too many for one statement.
func testInclude(t *testing.T, be *Backend) {
	s := be.Open(t)
	ctx := context.Background()
	ref := func(param, typ, id string) resources.ReferenceEntry {
		return resources.ReferenceEntry{Param: param, TargetType: typ, TargetID: id}
	}
	put(t, s, "Organization", "org1", t0, `{"id":"org1"}`, nil)
	put(t, s, "Practitioner", "d1", t0, `{"id":"d1"}`, nil)
	put(t, s, "Practitioner", "gone", t0, `{"id":"gone"}`, nil)
	del(t, s, "Practitioner", "gone", t0.Add(1))
	put(t, s, "Patient", "p1", t0, `{"id":"p1"}`, &resources.Index{References: []resources.ReferenceEntry{
		ref("organization", "Organization", "org1"), ref("general-practitioner", "Practitioner", "d1"),
		ref("general-practitioner", "Practitioner", "gone"), ref("general-practitioner", "Practitioner", "missing")}})
	put(t, s, "Patient", "p2", t0, `{"id":"p2"}`, &resources.Index{References: []resources.ReferenceEntry{
		ref("organization", "Organization", "org1"), ref("general-practitioner", "Organization", "org1")}})
	for i, subject := range []string{"p1", "p1", "p2"} {
		put(t, s, "Observation", fmt.Sprintf("o%d", i+1), t0, `{}`, &resources.Index{References: []resources.ReferenceEntry{
			ref("subject", "Patient", subject), ref("performer", "Practitioner", "d1")}})
	}
	put(t, s, "Observation", "o9", t0, `{}`, &resources.Index{References: []resources.ReferenceEntry{ref("subject", "Patient", "p1")}})
	del(t, s, "Observation", "o9", t0.Add(1))

	keys := func(rs []*resources.Resource) string {
		var out []string
		for _, r := range rs {
			if r.Deleted || r.VersionID < 1 || r.LastUpdated.IsZero() || len(r.Content) == 0 {
				t.Errorf("%s/%s read incompletely: %+v", r.Type, r.ID, r)
			}
			out = append(out, r.Type+"/"+r.ID)
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	pats := map[string][]string{"Patient": {"p1", "p2"}}
	fwd := func(target string, params ...string) resources.IncludeLink {
		return resources.IncludeLink{Source: "Patient", Params: params, Target: target}
	}
	for _, tt := range []struct {
		name string
		q    resources.IncludeQuery
		want string
	}{
		{"forward, each once", resources.IncludeQuery{From: pats, Links: []resources.IncludeLink{fwd("", "organization", "general-practitioner")}, Limit: 10},
			"Organization/org1,Practitioner/d1"},
		{"forward to one type", resources.IncludeQuery{From: pats, Links: []resources.IncludeLink{fwd("Organization", "general-practitioner")}, Limit: 10},
			"Organization/org1"},
		{"two links", resources.IncludeQuery{From: pats, Links: []resources.IncludeLink{fwd("Practitioner", "general-practitioner"), fwd("", "organization")}, Limit: 10},
			"Organization/org1,Practitioner/d1"},
		{"reverse", resources.IncludeQuery{From: map[string][]string{"Patient": {"p1"}},
			Links: []resources.IncludeLink{{Reverse: true, Source: "Observation", Params: []string{"subject"}, Target: "Patient"}}, Limit: 10},
			"Observation/o1,Observation/o2"},
		{"reverse and forward", resources.IncludeQuery{From: map[string][]string{"Patient": {"p2"}, "Practitioner": {"d1"}},
			Links: []resources.IncludeLink{{Reverse: true, Source: "Observation", Params: []string{"subject", "performer"}, Target: "Practitioner"}, fwd("", "organization")}, Limit: 10},
			"Observation/o1,Observation/o2,Observation/o3,Organization/org1"},
		{"links from no resource of From", resources.IncludeQuery{From: map[string][]string{"Observation": {"o1"}}, Links: []resources.IncludeLink{fwd("", "organization")}, Limit: 10}, ""},
		{"limit", resources.IncludeQuery{From: map[string][]string{"Patient": {"p1", "p2"}},
			Links: []resources.IncludeLink{{Reverse: true, Source: "Observation", Params: []string{"subject"}, Target: "Patient"}}, Limit: 2}, "2"},
	} {
		got, err := s.Include(ctx, tt.q)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.name == "limit" {
			if len(got) != 2 {
				t.Errorf("%s: %d resources, want 2", tt.name, len(got))
			}
			continue
		}
		if k := keys(got); k != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, k, tt.want)
		}
	}

	// More ids than one statement binds, one value each: 2,000 patients (p1 last) and 20
	// reverse links take about 42,000 values, split over two statements (SQLite binds
	// each set of ids as one value).
	many := make([]string, 0, 2000)
	for i := range 1999 {
		many = append(many, fmt.Sprintf("x%04d", i))
	}
	many = append(many, "p1")
	var links []resources.IncludeLink
	for range 20 {
		links = append(links, resources.IncludeLink{Reverse: true, Source: "Observation", Params: []string{"subject"}, Target: "Patient"})
	}
	got, err := s.Include(ctx, resources.IncludeQuery{From: map[string][]string{"Patient": many}, Links: links, Limit: 10})
	if err != nil {
		t.Fatalf("many ids: %v", err)
	}
	if k := keys(got); k != "Observation/o1,Observation/o2" {
		t.Errorf("many ids: %s", k)
	}
}
