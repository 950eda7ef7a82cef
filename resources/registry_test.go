package resources

import (
	"testing"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// TestRegistryHoldsEveryR4Parameter checks that every search parameter R4 defines for
// a type is a parameter of that type in the default registry, with R4's type and
// targets, and that none is left uncompiled; only the three R4 leaves to the server
// (_text, _content and _query) are handled by name instead.
func TestRegistryHoldsEveryR4Parameter(t *testing.T) {
	reg := DefaultRegistry()
	byName := map[string]bool{"_text": true, "_content": true, "_query": true}
	total, typeSpecific := 0, 0
	for typ, defs := range r4.ForTypes() {
		td, ok := reg.Type(typ)
		if !ok || td.Own {
			t.Errorf("R4 type %s: missing or marked own", typ)
			continue
		}
		for _, d := range defs {
			if byName[d.Code] {
				continue
			}
			p := td.Param(d.Code)
			if p == nil {
				t.Errorf("%s: parameter %s missing", typ, d.Code)
				continue
			}
			total++
			if d.Code[0] != '_' {
				typeSpecific++
			}
			if string(p.Type) != d.Type || len(p.Targets) != len(d.Target) {
				t.Errorf("%s.%s: type %s targets %v, R4 says %s %v", typ, d.Code, p.Type, p.Targets, d.Type, d.Target)
			}
			if p.Column == "" && p.expr == nil {
				t.Errorf("%s.%s: expression %q not compiled", typ, d.Code, p.Expression)
			}
		}
	}
	// 146 types × 6 Resource parameters, and every type-specific definition of R4.
	t.Logf("%d parameters, %d of them type-specific", total, typeSpecific)
	if total < 2500 || typeSpecific < 1600 {
		t.Errorf("only %d parameters (%d type-specific)", total, typeSpecific)
	}
	for _, own := range []string{"Client", "User", "Session", "AccessPolicy", "AuthorizationCode"} {
		if td, ok := reg.Type(own); !ok || !td.Own || td.Param("_id") == nil {
			t.Errorf("own type %s: %+v", own, td)
		}
	}
}
