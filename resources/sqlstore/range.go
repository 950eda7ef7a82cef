package sqlstore

import (
	"math"

	"github.com/fhirbox/fhirbox/resources"
)

// rangedNumber writes the condition of one quantity value v on a row "s" of a ranged
// parameter (resources/range.go): a plain value (group 0) compared as number compares
// it, or the low bound of a Range (a negative group) whose high bound, the row of
// RangeHighParam in the same group, makes with it a range compared as rangeNumber does.
func (b *builder) rangedNumber(v *resources.Value, param string) {
	b.WriteString("(s.grp = 0 AND ")
	b.number(v)
	b.w(") OR (s.grp < 0 AND EXISTS (SELECT 1 FROM search_number rh WHERE rh.resource_type = s.resource_type AND rh.id = s.id AND rh.param = ",
		b.arg(resources.RangeHighParam(param)), " AND rh.grp = s.grp AND ")
	b.rangeNumber(v, "s.value", "rh.value")
	b.WriteString("))")
}

// rangeNumber writes the comparison of the search value v with the stored range
// [low, high] (conformance F20), as R4 compares a value with a range: eq when the range
// of v's precision ([NumLow, NumHigh): 5 is [4.5, 5.5)) contains the stored range, ne
// when it does not; gt, ge, lt and le when the stored range reaches above (below) the
// value; sa and eb when it lies wholly above (below) it; ap when it overlaps the
// range of ap. The exact value bounds gt…eb (gt100 is "greater than exactly 100"). A
// plain number is the range [value, value] (see number).
func (b *builder) rangeNumber(v *resources.Value, low, high string) {
	eq := func() {
		if v.NumHigh > v.NumLow {
			b.w(low, " >= ", b.arg(v.NumLow), " AND ", high, " < ", b.arg(v.NumHigh))
			return
		}
		b.w(low, " >= ", b.arg(v.Number), " AND ", high, " <= ", b.arg(v.Number))
	}
	switch v.Prefix {
	case "", resources.PrefixEq:
		eq()
	case resources.PrefixNe:
		b.WriteString("NOT (")
		eq()
		b.WriteString(")")
	case resources.PrefixGt:
		b.w(high, " > ", b.arg(v.Number))
	case resources.PrefixGe:
		b.w(high, " >= ", b.arg(v.Number))
	case resources.PrefixLt:
		b.w(low, " < ", b.arg(v.Number))
	case resources.PrefixLe:
		b.w(low, " <= ", b.arg(v.Number))
	case resources.PrefixSa:
		b.w(low, " > ", b.arg(v.Number))
	case resources.PrefixEb:
		b.w(high, " < ", b.arg(v.Number))
	case resources.PrefixAp:
		// Within 10% of the value, and never narrower than eq.
		d := math.Abs(v.Number) / 10
		lo, hi := v.Number-d, v.Number+d
		if v.NumHigh > v.NumLow {
			lo, hi = min(lo, v.NumLow), max(hi, v.NumHigh)
		}
		b.w(low, " <= ", b.arg(hi), " AND ", high, " >= ", b.arg(lo))
	default:
		b.WriteString("1 = 0")
	}
	if v.MatchSystem {
		b.w(" AND s.system = ", b.arg(v.System))
	}
	if v.MatchCode {
		b.w(" AND s.code = ", b.arg(v.Code))
	}
}
