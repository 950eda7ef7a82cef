package main

import (
	"slices"
	"testing"
)

// TestHasCodes: search-has draws the codes that between hasFewest and hasMost patients
// have, and the codes nearest to that band when none is in it.
func TestHasCodes(t *testing.T) {
	code := func(s string) Ident { return Ident{"http://loinc.org", s} }
	pop := func(counts map[string]int) []PatientInfo {
		var out []PatientInfo
		for c, n := range counts {
			for range n {
				out = append(out, PatientInfo{Codes: []Ident{code(c)}})
			}
		}
		return out
	}
	for _, tc := range []struct {
		counts map[string]int
		want   []Ident
	}{
		{map[string]int{"rare": 1, "in": hasFewest, "in2": hasMost, "common": hasMost + 1}, []Ident{code("in"), code("in2")}},
		// None in the band: the nearest, from below or above.
		{map[string]int{"a": 1, "b": hasFewest - 2, "c": hasFewest - 2}, []Ident{code("b"), code("c")}},
		{map[string]int{"a": hasMost + 5, "b": hasMost + 1}, []Ident{code("b")}},
		{nil, nil},
	} {
		if got := hasCodes(pop(tc.counts)); !slices.Equal(got, tc.want) {
			t.Errorf("hasCodes(%v) = %v, want %v", tc.counts, got, tc.want)
		}
	}
}
