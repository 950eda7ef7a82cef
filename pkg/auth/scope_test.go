package auth

import (
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // joined by "|"; "!" for invalid_scope
	}{
		{"", ""},
		{"   ", ""},
		{"openid", "openid"},
		{"a b  c a", "a|b|c"},
		{"patient/*.read launch/patient", "patient/*.read|launch/patient"},
		{"!#[]~", "!#[]~"},
		{`a"b`, "!"},
		{`a\b`, "!"},
		{"a\tb", "!"},
		{"a\nb", "!"},
		{"é", "!"},
		{"a\x7f", "!"},
	} {
		got, oe := parseScope(tt.in)
		if oe != nil {
			if tt.want != "!" || oe.Code != ErrCodeInvalidScope {
				t.Errorf("parseScope(%q): %v", tt.in, oe)
			}
			continue
		}
		if j := strings.Join(got, "|"); j != tt.want {
			t.Errorf("parseScope(%q) = %q, want %q", tt.in, j, tt.want)
		}
	}
}

// conformance T10: a refresh narrows or keeps the grant's scope, never widens it.
func TestNarrowScope(t *testing.T) {
	for _, tt := range []struct {
		granted, requested, want string // want "!" for invalid_scope
	}{
		{"a b c", "", "a b c"},
		{"a b c", "b", "b"},
		{"a b c", "c a", "c a"},
		{"a b c", "a d", "!"},
		{"", "", ""},
		{"", "a", "!"},
	} {
		req, _ := parseScope(tt.requested)
		got, oe := narrowScope(tt.granted, req)
		if oe != nil {
			if tt.want != "!" || oe.Code != ErrCodeInvalidScope {
				t.Errorf("narrowScope(%q, %q): %v", tt.granted, tt.requested, oe)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("narrowScope(%q, %q) = %q, want %q", tt.granted, tt.requested, got, tt.want)
		}
	}
}

// FuzzParseScope: whatever a client sends, parseScope either refuses it or returns
// distinct tokens of the allowed characters that say the same scope again.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "a b", "patient/*.read  a", `a"b`, "a\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks, oe := parseScope(s)
		if oe != nil {
			return
		}
		seen := map[string]bool{}
		for _, tok := range toks {
			if tok == "" || seen[tok] || strings.ContainsAny(tok, " \"\\") {
				t.Fatalf("parseScope(%q) gave %q", s, toks)
			}
			for i := 0; i < len(tok); i++ {
				if tok[i] < 0x21 || tok[i] > 0x7e {
					t.Fatalf("parseScope(%q) gave a token with byte %#x", s, tok[i])
				}
			}
			seen[tok] = true
		}
		again, oe := parseScope(strings.Join(toks, " "))
		if oe != nil || strings.Join(again, " ") != strings.Join(toks, " ") {
			t.Fatalf("parseScope(%q) = %q does not parse back the same", s, toks)
		}
	})
}
