package resources

import (
	"math"
	"strings"
)

// Range values of quantity parameters (conformance F20). R4 lets a quantity parameter
// select a Range (Condition.onset.as(Range), useContext.value as Range) and compares a
// search value with a range as it compares a date with a period (search.html, Quantity
// and Prefixes): eq when the range of the search value (its implicit precision: 5 is
// [4.5, 5.5)) contains the stored range, gt when the stored range reaches above the
// value, sa when it starts above it, ap when the two overlap, and so on.
//
// A Range is indexed as two rows of search_number that share a negative group number
// (Index Group; composites number their elements from 1, plain values have 0): its low
// bound under the parameter's own name, its high bound under RangeHighParam. A missing
// bound is unbounded, stored as ∓math.MaxFloat64, which every search value lies
// within. Both rows carry the unit (system and code) of the bound that has one. Only the
// parameters whose expression names Range (SearchParam.ranged) index Ranges, and only
// their searches look for range rows, so that the quantity searches of every other
// parameter (Observation's value-quantity) keep their one-row plans.

// RangeHighParam is the name under which the high bounds of a ranged quantity
// parameter's Range values are indexed.
func RangeHighParam(param string) string { return param + "#high" }

// Ranged reports whether p is a quantity parameter that indexes and searches Range
// values: a search on it must also compare the stored ranges.
func (p *SearchParam) Ranged() bool { return p.ranged }

// selectsRanges reports whether a parameter of type t with expression selects Range
// values, as far as fhirbox tells: a quantity parameter whose expression names Range
// (every one of R4's 31 that selects Ranges does, with "as Range" or ".as(Range)").
func selectsRanges(t ParamType, expression string) bool {
	return t == TypeQuantity && strings.Contains(expression, "Range")
}

// addRange indexes the Range r of the ranged quantity parameter p; a Range with no
// bound that holds a number indexes nothing, as an empty Quantity does.
func (x *extractor) addRange(p *SearchParam, r map[string]any) {
	low, lowOK := r["low"].(map[string]any)
	high, highOK := r["high"].(map[string]any)
	lo, hi := -math.MaxFloat64, math.MaxFloat64
	var system, code string
	bounded := false
	if lowOK {
		if f, ok := x.numberOf(low["value"]); ok {
			lo, bounded = f, true
			system, code = quantityUnit(low)
		}
	}
	if highOK {
		if f, ok := x.numberOf(high["value"]); ok {
			hi, bounded = f, true
			if system == "" && code == "" {
				system, code = quantityUnit(high)
			}
		}
	}
	if !bounded {
		return
	}
	x.ranges++
	g := -x.ranges
	x.number(NumberEntry{Param: p.Name, Value: lo, System: system, Code: code, Group: g})
	x.number(NumberEntry{Param: RangeHighParam(p.Name), Value: hi, System: system, Code: code, Group: g})
}
