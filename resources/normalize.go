package resources

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NormalizeString returns s in the form string parameters are indexed and searched in:
// lower case, accents removed, surrounding white space trimmed and inner runs of white
// space collapsed to one space. Indexing and query parsing both call it, so string search
// is case- and accent-insensitive ("Véliz" is found by "veli"). Invalid UTF-8 is kept as
// the replacement character rather than rejected, because it is only ever compared.
func NormalizeString(s string) string {
	if n, ok := normalizeASCII(s); ok {
		return n
	}
	return normalizeUnicode(s)
}

// normalizeUnicode is NormalizeString for any text.
func normalizeUnicode(s string) string {
	// Decomposing splits "é" into "e" and a combining accent (a nonspacing mark, category
	// Mn), which is dropped; recomposing what is left gives one canonical form for the
	// scripts whose letters combine without accents (Hangul jamo, for instance).
	// Invalid bytes are replaced first: norm leaves a letter after them undecomposed, which
	// would make the result depend on whether the input was already normalised.
	d := norm.NFD.String(strings.ToValidUTF8(s, "\uFFFD"))
	var b strings.Builder
	b.Grow(len(d))
	space := false
	for _, r := range d {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return norm.NFC.String(b.String())
}

// normalizeASCII is NormalizeString for ASCII text, which is most of what is indexed:
// NFD and NFC leave it as it is and none of it is a nonspacing mark, so only case and
// white space change, and text already in normal form is returned without a copy. ok is
// false when s is not ASCII.
func normalizeASCII(s string) (n string, ok bool) {
	normal, space := true, true // space: the previous byte was white space, or none was read
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return "", false
		case asciiSpace(c):
			normal = normal && c == ' ' && !space
			space = true
			continue
		case 'A' <= c && c <= 'Z':
			normal = false
		}
		space = false
	}
	if normal && (!space || s == "") {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	space = false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if asciiSpace(c) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// asciiSpace reports the ASCII characters unicode.IsSpace accepts.
func asciiSpace(c byte) bool {
	return c == ' ' || '\t' <= c && c <= '\r'
}
