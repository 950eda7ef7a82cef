package resources

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Lenient and strict handling of the parameters a search cannot apply (FHIR R4
// search.html, "Handling Errors"; conformance F13).
//
// What is ignored in lenient mode: a parameter the type does not have (`colour`,
// `_foo`), and one FHIR defines that fhirbox does not serve (`_filter`, `_query`). Such a parameter only ever narrows a search, so leaving it out widens the
// answer, and the Bundle says so in an OperationOutcome entry. What is refused in both
// modes: a malformed value, and a modifier the parameter does not support. R4 says
// servers SHALL reject a search with an unsupported modifier (search.html, "Modifiers"),
// and rightly: ignoring `:not` or `:missing` would turn the search into its opposite
// or into another one, a wrong answer no warning makes right.

// unsupportedControls are parameters FHIR R4 defines for every type that this parser
// does not apply: they are reported as not supported rather than as unknown.
var unsupportedControls = []string{
	"_contained", "_containedType", "_filter", "_graph", "_offset", "_query",
}

// ignore records that the parameter name (as given, modifier included) is not applied.
func (p *searchParser) ignore(name string) {
	if slices.ContainsFunc(p.q.Ignored, func(ig Ignored) bool { return ig.Param == name }) {
		return
	}
	base, _, _ := strings.Cut(name, ":")
	reason := fmt.Sprintf("unknown search parameter %q for %s", name, p.td.Name)
	switch {
	case slices.Contains(unsupportedControls, base):
		reason = fmt.Sprintf("search parameter %q is not supported by this server", name)
	case base == "_since" || base == "_at":
		// R4 defines them for the history interaction only (conformance H3).
		reason = fmt.Sprintf("%q is a parameter of the history interaction, not of searches: _lastUpdated=ge… finds what changed since an instant", name)
	}
	p.q.Ignored = append(p.q.Ignored, Ignored{Param: name, Reason: reason})
}

// strictError is the error of a strict search that has parameters it would ignore: one
// CodeInvalid error naming every one of them.
func (p *searchParser) strictError() error {
	if !p.opts.Strict || len(p.q.Ignored) == 0 {
		return nil
	}
	return strictIgnored(p.q.Ignored, "search")
}

// strictIgnored is the CodeInvalid error of a strict interaction (a search, a history)
// that has parameters a lenient one would ignore, naming every one of them.
func strictIgnored(ignored []Ignored, interaction string) error {
	reasons := make([]string, len(ignored))
	for i, ig := range ignored {
		reasons[i] = ig.Reason
	}
	return invalid(ignored[0].Param, "%s (the %s's handling is strict; with Prefer: handling=lenient they would be ignored)", strings.Join(reasons, "; "), interaction)
}

// PageSetParam names the stored result set a page request reads (see resultset.go).
const PageSetParam = "_pageset"

// pagingParams are the parameters that say which page of a search is asked for, as
// opposed to which search: the links set them per page.
var pagingParams = []string{"_page", PageSetParam}

// originalParams returns params without the paging parameters.
func originalParams(params url.Values) url.Values {
	out := make(url.Values, len(params))
	for k, vs := range params {
		if !slices.Contains(pagingParams, k) {
			out[k] = vs
		}
	}
	return out
}

// parsePageSet reads a _pageset key: what NewResultSetKey makes, and nothing longer.
func parsePageSet(raw string) (string, error) {
	if len(raw) > 64 || strings.Trim(raw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return "", invalid(PageSetParam, "%s: %q is not a result set key: follow the Bundle's links as given", PageSetParam, raw)
	}
	return raw, nil
}
