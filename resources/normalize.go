package resources

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// NormalizeString returns s in the form string parameters are indexed and searched in:
// lower case, accents removed, surrounding white space trimmed and inner runs of white
// space collapsed to one space. Indexing and query parsing both call it, so string search
// is case- and accent-insensitive ("Véliz" is found by "veli"). Invalid UTF-8 is kept as
// the replacement character rather than rejected, because it is only ever compared.
func NormalizeString(s string) string {
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
