package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// strictHandling reports whether a search is strict (conformance F13): as its Prefer
// header asks (handling=strict or handling=lenient), else as the server is configured
// (FHIRBOX_SEARCH_HANDLING; lenient unless set to strict).
func (s *Server) strictHandling(r *http.Request) bool {
	for _, h := range r.Header.Values("Prefer") {
		// Preferences are separated by commas, a preference's parameters by semicolons
		// (RFC 7240 §2); handling has none, so either separates it from the others.
		for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == ',' || r == ';' }) {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if !strings.EqualFold(k, "handling") {
				continue
			}
			switch v = strings.Trim(v, `"`); {
			case strings.EqualFold(v, "strict"):
				return true
			case strings.EqualFold(v, "lenient"):
				return false
			}
		}
	}
	return s.cfg.StrictHandling
}

// ParseHandling reads FHIRBOX_SEARCH_HANDLING: "lenient" (or empty) or "strict".
func ParseHandling(v string) (strict bool, err error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "lenient":
		return false, nil
	case "strict":
		return true, nil
	}
	return false, fmt.Errorf("FHIRBOX_SEARCH_HANDLING %q must be lenient or strict", v)
}

// resultSetCaller names the caller of a request for the result sets it may page through:
// client and user, so that a key seen by one caller serves nobody else.
func resultSetCaller(ctx context.Context) string {
	id := auth.FromContext(ctx)
	if id.Anonymous() {
		return ""
	}
	return "client " + strconv.Quote(id.ClientID) + " user " + strconv.Quote(id.UserID)
}

// searchOutcome is the OperationOutcome entry (search.mode outcome) of a searchset: a
// warning for every parameter a lenient search ignored, for every parameter still being
// indexed, when the includes stopped at their limit, and on the last page a stored
// result set holds, that the matches beyond it cannot be paged through. Nil when there is
// nothing to say.
func searchOutcome(q *resources.Query, res *resources.SearchResult) (*fhir.BundleEntry, error) {
	var issues []fhir.Issue
	for _, ig := range q.Ignored {
		issues = append(issues, fhir.Issue{Severity: "warning", Code: "not-supported",
			Diagnostics: ig.Reason + ": ignored, the search ran without it", Expression: []string{ig.Param}})
	}
	for _, w := range q.Warnings {
		issues = append(issues, fhir.Issue{Severity: "warning", Code: "incomplete", Diagnostics: w})
	}
	if res.IncludesIncomplete != "" {
		issues = append(issues, fhir.Issue{Severity: "warning", Code: "too-costly", Diagnostics: res.IncludesIncomplete, Expression: []string{"_include"}})
	}
	if set := res.Set; set != nil && set.Truncated() && q.Count > 0 && q.Offset+q.Count >= set.Size {
		issues = append(issues, fhir.Issue{Severity: "warning", Code: "too-costly", Diagnostics: fmt.Sprintf(
			"only the first %d of the %d matches can be paged through: narrow the search (by _lastUpdated or another parameter) to see the others",
			set.Size, set.Total)})
	}
	if len(issues) == 0 {
		return nil, nil
	}
	body, err := json.Marshal(&fhir.OperationOutcome{ResourceType: "OperationOutcome", Issue: issues})
	if err != nil {
		return nil, resources.Internal(err)
	}
	return &fhir.BundleEntry{Resource: body, Search: &fhir.EntrySearch{Mode: "outcome"}}, nil
}

// setLinks are the links of a page of a stored result set (resources/resultset.go).
// self holds the parameters applied (and, past the first page, the set and the page);
// first, previous and next repeat the search's own parameters, as given, with the set's
// key and the page, so that the access policies decide them as they decided the search.
func setLinks(typeURL string, q *resources.Query, set *resources.ResultSet) []fhir.Link {
	link := func(params url.Values, page int) string {
		v := make(url.Values, len(params)+2)
		for k, vs := range params {
			v[k] = vs
		}
		v.Set(resources.PageSetParam, set.Key)
		if page > 1 {
			v.Set("_page", strconv.Itoa(page))
		}
		return typeURL + "?" + v.Encode()
	}
	if q.Count <= 0 {
		return []fhir.Link{{Relation: "self", URL: link(q.Used, 1)}}
	}
	page := q.Offset/q.Count + 1
	self := link(q.Used, page)
	if q.PageSet == "" {
		// The first page of a new search: self is the search itself.
		self = typeURL
		if len(q.Used) > 0 {
			self += "?" + q.Used.Encode()
		}
	}
	links := []fhir.Link{{Relation: "self", URL: self}, {Relation: "first", URL: link(q.Original, 1)}}
	if page > 1 {
		links = append(links, fhir.Link{Relation: "previous", URL: link(q.Original, page-1)})
	}
	if q.Offset+q.Count < set.Size {
		links = append(links, fhir.Link{Relation: "next", URL: link(q.Original, page+1)})
	}
	return links
}
