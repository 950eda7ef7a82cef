package resources

import (
	"net/url"
	"time"
)

// Query is a parsed search: the clauses are AND-ed, each clause's values OR-ed.
type Query struct {
	// Type is the searched type; empty for a system-level search, which searches Types.
	// When OtherTypes is set, Types are every type of the registry but OtherTypes, which
	// a store may test for instead (a search at the base covers some 150 types).
	Type       string
	Types      []string
	OtherTypes *[]string
	Clauses    []Clause
	// List, when set by _list, keeps only the resources a List refers to (see ListFilter).
	List *ListFilter
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
	// Includes lists the _include and _revinclude parameters, in the order given; they
	// are run on the page of matches (Service.Include).
	Includes []Include
	// Used holds the parameters that were understood, canonicalised, in order, for the
	// Bundle's self and paging links (conformance F9, F13: unknown parameters are left out).
	Used url.Values
	// Ignored lists the parameters that were not applied and why, once per name, in
	// order (lenient handling, conformance F13); strict handling refuses them instead.
	Ignored []Ignored
	// PageSet is the key of the stored result set a page request names (_pageset),
	// empty for a new search; Offset is then a position in that set (resultset.go).
	PageSet string
	// Original holds the parameters as given but for _page and _pageset: what the
	// paging links repeat, so that a page request carries what the first one did.
	Original url.Values
	// After, when set, keeps the resources whose id sorts after it: the keyset by which
	// an export walks a type in id order (Service.ExportPage), at the same cost for the
	// last page as for the first. Only the server sets it.
	After string
	// Confine holds the confinements of access control (Service.confine, from the
	// request's context): a match satisfies, for each, at least one of its groups. They
	// are no parameters: never shown in links, never reported as ignored.
	Confine [][]ConfineGroup
	// ChainConfine holds, per type that a chain or _has leads to, the confinements of
	// that type: a linked resource counts only when the caller reaches it, so that a
	// chain cannot tell what a resource beyond the caller's reach holds.
	ChainConfine map[string][][]ConfineGroup
	// chainConf is what the ChainCheck confined the linked types to (checkChains).
	chainConf Confinement
	// confineKey identifies the confinements, for the fingerprint of a result set.
	confineKey string
	// callerSets counts the first sets of Confine, those of the request's context
	// (Service.confine); those after them are the server's own (an export's InAny).
	callerSets int
	// Operation, when set, is the path below the base of the operation whose answer the
	// search is ("Patient/p1/$everything"): its links repeat it, not the searched type.
	Operation string
	// Warnings say why the answer may be incomplete (a parameter still being indexed):
	// the Bundle carries them in its OperationOutcome entry.
	Warnings []string
}

// Ignored is a parameter that a lenient search did not apply.
type Ignored struct {
	// Param is the parameter's name as given, modifier included.
	Param string
	// Reason says why, for the Bundle's OperationOutcome and the strict error.
	Reason string
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
	// Components names, for a composite parameter, the index rows each component is
	// searched in, and Ungrouped is set when they need not share a group (see
	// resources/derived.go); empty, ComponentParam's names in groups.
	Components []string
	Ungrouped  bool
	// Chain, when not empty, makes the clause a chained one (subject:Patient.name=x) or a
	// reverse chain (_has:Observation:subject:code=x): a resource matches when the
	// resources its links lead to match the rest of the clause, whose Param, Modifier and
	// Values apply to the types of the last link.
	Chain []ChainLink
}

// ChainLink is one step of a chained clause, from the resources of the step before (the
// searched type at first) to other resources.
type ChainLink struct {
	// Param is the reference parameter followed: forward, a parameter of the type the
	// step starts from; reverse, a parameter of Types[0], which refers to that type.
	Param *SearchParam
	// Types are the types the step leads to: forward, the targets of Param that have the
	// next link's parameter (one when the request names it, subject:Patient.name);
	// reverse, the one type of _has.
	Types []string
	// Reverse is set for _has: the step leads to the resources of Types[0] whose Param
	// refers to the resource, instead of those the resource refers to.
	Reverse bool
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

	// Composite: the value of each component, in the parameter's order (modifiers.go).
	Components []Value
	// Near: the position and distance of a Location near search (near.go).
	Near *Near
}

// SortKey is one _sort key.
type SortKey struct {
	Param *SearchParam
	Desc  bool
}
