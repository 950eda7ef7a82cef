package server

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// The history interaction at its three levels (FHIR R4 http.html#history):
// conformance F8, H1, H2, H4. GET [base]/{Type}/{id}/_history, [base]/{Type}/_history and
// [base]/_history. The parameters are read by resources.ParseHistory.

func (s *Server) handleHistory(c echo.Context) error {
	return s.history(c, c.Param("id"))
}

func (s *Server) handleTypeHistory(c echo.Context) error {
	return s.history(c, "")
}

func (s *Server) history(c echo.Context, id string) error {
	f, params, err := s.queryRequest(c)
	if err != nil {
		return err
	}
	res, q, err := s.svc.History(c.Request().Context(), c.Param("type"), id, params, s.strictHandling(c.Request()))
	if err != nil {
		return err
	}
	return s.answerHistory(c, f, q, res, params)
}

// handleSystemHistory answers GET [base]/_history: the versions of every type served at
// the base (conformance H1). The authorize middleware has let the request itself
// through; each type is then decided as if its type-level history
// (GET [base]/{Type}/_history?…) had been sent, as a system-level search decides its
// types (allowedTypes), and the versions of the types no policy allows are left out.
// When none is allowed the answer is what the type-level history would get.
func (s *Server) handleSystemHistory(c echo.Context) error {
	f, params, err := s.queryRequest(c)
	if err != nil {
		return err
	}
	// R4 gives the history no _type: every type served at the base.
	types, err := s.svc.SystemTypes(nil, isFHIRBase(c))
	if err != nil {
		return err
	}
	allowed := s.allowedTypes(c, types, params, "/_history", "/_history")
	if len(allowed) == 0 {
		return noTypeAllowed(c, "read the history of", types)
	}
	res, q, err := s.svc.SystemHistory(c.Request().Context(), allowed, params, s.strictHandling(c.Request()))
	if err != nil {
		return err
	}
	return s.answerHistory(c, f, q, res, params)
}

// answerHistory writes the history Bundle, with a Warning header (299, RFC 9111 §5.5's
// persistent warning) for each parameter a lenient history ignored: a history Bundle
// has no place for an OperationOutcome entry (R4 bdl-2 keeps entry.search to searchsets),
// and its self link, which leaves them out, says what was applied.
func (s *Server) answerHistory(c echo.Context, f outFormat, q resources.HistoryQuery, res *resources.HistoryResult, params url.Values) error {
	for _, ig := range q.Ignored {
		c.Response().Header().Add("Warning", "299 fhirbox "+strconv.QuoteToASCII(ig.Reason+": ignored, the history ran without it"))
	}
	b, err := s.historyBundle(c, q, res, params)
	if err != nil {
		return err
	}
	return s.writeValue(c, http.StatusOK, f, b)
}

// historyBundle builds a history Bundle (conformance F8): newest first, deletions as entries
// with request.method DELETE and no resource; secret and hidden fields left out as on a
// read (Service.Public). params are the history's parameters (a Bundle entry's own).
func (s *Server) historyBundle(c echo.Context, q resources.HistoryQuery, res *resources.HistoryResult, params url.Values) (*fhir.Bundle, error) {
	base := s.base(c)
	total := res.Total
	b := &fhir.Bundle{
		ResourceType: "Bundle",
		Type:         "history",
		Total:        &total,
		Meta:         &fhir.Meta{LastUpdated: resources.FormatInstant(time.Now())},
	}
	for _, r := range res.Entries {
		e := fhir.BundleEntry{FullURL: base + "/" + r.Type + "/" + r.ID}
		resp := &fhir.EntryResponse{Etag: resources.ETag(r.VersionID), LastModified: resources.FormatInstant(r.LastUpdated)}
		switch {
		case r.Deleted:
			e.Request = &fhir.EntryRequest{Method: http.MethodDelete, URL: r.Type + "/" + r.ID}
			resp.Status = "204 No Content"
		case r.VersionID == 1:
			e.Request = &fhir.EntryRequest{Method: http.MethodPost, URL: r.Type}
			resp.Status = "201 Created"
		default:
			e.Request = &fhir.EntryRequest{Method: http.MethodPut, URL: r.Type + "/" + r.ID}
			resp.Status = "200 OK"
		}
		if !r.Deleted {
			body, err := s.svc.Public(r, resources.View{})
			if err != nil {
				return nil, err
			}
			e.Resource = body
		}
		e.Response = resp
		b.Entry = append(b.Entry, e)
	}
	u := base
	if q.Type != "" {
		u += "/" + q.Type
	}
	if q.ID != "" {
		u += "/" + q.ID
	}
	b.Link = historyLinks(u+"/_history", params.Get("_page") != "", q, res)
	return b, nil
}

// historyLinks are a history page's links. Its next link carries the cursor of the page's
// last version, so that versions written meanwhile (which come first, newest first)
// neither repeat nor push entries from one page to the next; a cursor page has no
// previous link (a client keeps the pages it has read). A page asked for by _page keeps
// the offset links it always had.
func historyLinks(historyURL string, byPage bool, q resources.HistoryQuery, res *resources.HistoryResult) []fhir.Link {
	if byPage && q.After == nil {
		return pageLinks(historyURL, q.Used, q.Count, q.Offset, len(res.Entries), res.Total)
	}
	link := func(cursor string) string {
		v := make(url.Values, len(q.Used)+1)
		for k, vs := range q.Used {
			v[k] = vs
		}
		if cursor != "" {
			v.Set(resources.HistoryCursorParam, cursor)
		}
		if len(v) == 0 {
			return historyURL
		}
		return historyURL + "?" + v.Encode()
	}
	self := ""
	if q.After != nil {
		self = q.After.String()
	}
	links := []fhir.Link{{Relation: "self", URL: link(self)}}
	if q.Count <= 0 {
		return links
	}
	links = append(links, fhir.Link{Relation: "first", URL: link("")})
	if res.More && len(res.Entries) > 0 {
		links = append(links, fhir.Link{Relation: "next", URL: link(resources.CursorOf(res.Entries[len(res.Entries)-1]).String())})
	}
	return links
}
