package auth

import "testing"

// References on Users and LaunchContexts are read in each of the forms they may be
// written in, and nothing else passes for one (conformance L2, L5).
func TestRefOf(t *testing.T) {
	cases := []struct {
		in        any
		typ, id   string
		wantValid bool
	}{
		{map[string]any{"reference": "Patient/p1"}, "Patient", "p1", true},
		{map[string]any{"resourceType": "Patient", "id": "p1"}, "Patient", "p1", true},
		{"Patient/p1", "Patient", "p1", true},
		{map[string]any{"reference": "Patient/p1/_history/2"}, "", "", false},
		{map[string]any{"reference": "http://other.example/fhir/Patient/p1"}, "", "", false},
		{map[string]any{"reference": "Patient/"}, "", "", false},
		{map[string]any{"reference": "/p1"}, "", "", false},
		{map[string]any{"resourceType": "Patient", "id": "../x"}, "", "", false},
		{"p1", "", "", false},
		{42, "", "", false},
		{nil, "", "", false},
	}
	for _, tc := range cases {
		typ, id, ok := RefOf(tc.in)
		if ok != tc.wantValid || (ok && (typ != tc.typ || id != tc.id)) {
			t.Errorf("RefOf(%v) = %q %q %v, want %q %q %v", tc.in, typ, id, ok, tc.typ, tc.id, tc.wantValid)
		}
	}
}
