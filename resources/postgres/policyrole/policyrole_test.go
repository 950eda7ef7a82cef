package policyrole

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestName(t *testing.T) {
	if got := Name("fhirbox"); got != "fhirbox_policy" {
		t.Errorf("Name(fhirbox) = %q", got)
	}
	long := strings.Repeat("d", 60)
	a, b := Name(long), Name(long+"x")
	if len(a) > 63 || len(b) > 63 || a == b || !strings.HasSuffix(a, "_policy") {
		t.Errorf("long names %q, %q", a, b)
	}
	if Name(long) != a {
		t.Error("Name is not stable")
	}
	// A multi-byte character at the cut is kept whole or left out.
	u := Name(strings.Repeat("é", 40))
	if !utf8.ValidString(u) || len(u) > 63 {
		t.Errorf("Name of a UTF-8 name = %q (%d bytes)", u, len(u))
	}
}
