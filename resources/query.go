package resources

import (
	"net/url"
	"time"
)

// Query is a parsed search: the clauses are AND-ed, each clause's values OR-ed.
type Query struct {
	Type    string
	Clauses []Clause
	// Sort keys in priority order; empty means newest first (last updated, then id).
	Sort []SortKey
	// Count is the page size (the engine applies its default and maximum); 0 with
	// SummaryCount asks for the total only.
	Count  int
	Offset int
	Total  TotalMode
	// Elements lists the top-level elements asked for with _elements (empty: all).
	Elements []string
	// Summary is the _summary value ("" when absent). "count" returns only the total.
	Summary string
	// Used holds the parameters that were understood, canonicalised, in order, for the
	// Bundle's self and paging links (conformance F9, F13: unknown parameters are left out).
	Used url.Values
	// Warnings say why the answer may be incomplete (a parameter still being indexed):
	// the Bundle carries them as an OperationOutcome entry.
	Warnings []string
}

// TotalMode is the _total parameter.
type TotalMode string

// Values of _total. The default is TotalAccurate (conformance F9: total counts every match).
const (
	TotalAccurate TotalMode = "accurate"
	TotalEstimate TotalMode = "estimate"
	TotalNone     TotalMode = "none"
)

// Clause is one search parameter occurrence: name[:modifier]=v1,v2,…
type Clause struct {
	Param *SearchParam
	// Modifier is "", or one of "exact", "contains", "not", "missing", "text", "below",
	// "above" and a resource type for references; only the ones valid for the parameter
	// type reach a Query.
	Modifier string
	// Missing is set when Modifier is "missing": true selects resources without a value.
	Missing bool
	Values  []Value
}

// Prefix is a comparison prefix of date, number and quantity values.
type Prefix string

// Comparison prefixes (FHIR search §3.1.1.4).
const (
	PrefixEq Prefix = "eq"
	PrefixNe Prefix = "ne"
	PrefixLt Prefix = "lt"
	PrefixLe Prefix = "le"
	PrefixGt Prefix = "gt"
	PrefixGe Prefix = "ge"
	PrefixSa Prefix = "sa"
	PrefixEb Prefix = "eb"
	PrefixAp Prefix = "ap"
)

// Value is one parsed search value. Which fields are set depends on the parameter type.
type Value struct {
	// Raw is the value as given, for links and messages.
	Raw    string
	Prefix Prefix

	// Str is the string value: normalised (NormalizeString) for plain and :contains
	// searches, as written for :exact. Also the code of uri parameters.
	Str string

	// Token: "code" matches any system; "|code" matches no system; "system|code";
	// "system|" matches any code of the system.
	System      string
	MatchSystem bool
	Code        string
	MatchCode   bool

	// Date: the range the value covers at its precision, [Low, High) in UTC.
	Low, High time.Time

	// Number and quantity: the value and the range [NumLow, NumHigh) its precision implies.
	Number          float64
	NumLow, NumHigh float64
	// Quantity unit (System may be empty; Code is the unit code), reusing the token fields
	// above when MatchCode is true.

	// Reference: the target type (empty when the value was a bare id) and id.
	RefType string
	RefID   string
}

// SortKey is one _sort key.
type SortKey struct {
	Param *SearchParam
	Desc  bool
}
