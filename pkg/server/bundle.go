package server

import (
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// searchBundle builds a searchset Bundle (conformance F9–F13): absolute fullUrl, search.mode
// match, then the resources _include and _revinclude added (search.mode include, and an
// outcome entry when they stopped at their limit), an outcome entry naming what was
// ignored, a self link with only the parameters used, and next/previous links into the
// stored result set (or by _page without one).
func (s *Server) searchBundle(c echo.Context, q *resources.Query, res *resources.SearchResult) (*fhir.Bundle, error) {
	base := s.base(c)
	b := &fhir.Bundle{
		ResourceType: "Bundle",
		Type:         "searchset",
		Meta:         &fhir.Meta{LastUpdated: resources.FormatInstant(time.Now())},
	}
	if res.Total >= 0 {
		total := res.Total
		b.Total = &total
	}
	view := resources.View{Elements: q.Elements, Summary: q.Summary}
	outcome, err := searchOutcome(q, res)
	if err != nil {
		return nil, err
	}
	if outcome != nil {
		b.Entry = append(b.Entry, *outcome)
	}
	for _, part := range []struct {
		mode string
		rs   []*resources.Resource
	}{{"match", res.Entries}, {"include", res.Included}} {
		for _, r := range part.rs {
			body, err := s.svc.Public(r, view)
			if err != nil {
				return nil, err
			}
			b.Entry = append(b.Entry, fhir.BundleEntry{
				FullURL:  base + "/" + r.Type + "/" + r.ID,
				Resource: body,
				Search:   &fhir.EntrySearch{Mode: part.mode},
			})
		}
	}
	searched := base + "/" + q.Type
	switch {
	case q.Operation != "":
		searched = base + "/" + q.Operation
	case q.Type == "" && isFHIRBase(c):
		searched = base // a system-level search at /fhir; at / it is base + "/"
	}
	if res.Set != nil {
		b.Link = setLinks(searched, q, res.Set)
	} else {
		b.Link = pageLinks(searched, q.Used, q.Count, q.Offset, len(res.Entries), res.Total)
	}
	return b, nil
}

// pageLinks returns self, first, previous and next links for offset paging by _page.
// total < 0 means unknown: a full page then implies there may be a next one.
func pageLinks(typeURL string, used url.Values, count, offset, got, total int) []fhir.Link {
	link := func(page int) string {
		v := url.Values{}
		for k, vs := range used {
			v[k] = vs
		}
		if page > 1 {
			v.Set("_page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return typeURL
		}
		return typeURL + "?" + v.Encode()
	}
	page := 1
	if count > 0 {
		page = offset/count + 1
	}
	links := []fhir.Link{{Relation: "self", URL: link(page)}}
	if count <= 0 {
		return links
	}
	links = append(links, fhir.Link{Relation: "first", URL: link(1)})
	if offset > 0 {
		links = append(links, fhir.Link{Relation: "previous", URL: link(page - 1)})
	}
	if (total >= 0 && offset+count < total) || (total < 0 && got == count) {
		links = append(links, fhir.Link{Relation: "next", URL: link(page + 1)})
	}
	return links
}

// capabilities describes what the server supports, generated from the registry
// (conformance F16). The FHIR base's statement leaves out fhirbox's own types, which it does
// not serve. It is built once per base (capabilityJSON), not per request.
func (s *Server) capabilities(base string, fhirBase bool) *fhir.CapabilityStatement {
	reg := s.svc.Registry()
	cs := &fhir.CapabilityStatement{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         resources.FormatInstant(time.Now()),
		Kind:         "instance",
		Software:     fhir.Software{Name: "fhirbox", Version: s.cfg.Version},
		Implementation: fhir.Implementation{
			Description: "fhirbox FHIR server", URL: base,
		},
		FHIRVersion: "4.0.1",
		Format:      []string{mimeFHIRJSON, mimeJSON, mimeYAML},
	}
	rest := fhir.CapabilityRest{Mode: "server", Documentation: searchDocumentation,
		Interaction: s.systemInteractions(), SearchParam: commonParams(reg, fhirBase),
		Security: s.smartSecurity()}
	refs := newRefIndex(reg, fhirBase)
	interactions := []fhir.Interaction{{Code: "read"}, {Code: "vread"}, {Code: "update"},
		{Code: "delete"}, {Code: "history-instance"}, {Code: "history-type"},
		{Code: "create"}, {Code: "search-type"}}
	// PATCH and the conditional writes (patch.go, conditional.go; conformance F30, F31).
	interactions = append(interactions, fhir.Interaction{Code: "patch"})
	condDelete := "single"
	if s.svc.ConditionalDeleteMode().Multiple {
		condDelete = "multiple"
	}
	for _, name := range reg.Types() {
		td, _ := reg.Type(name)
		if fhirBase && td.Own {
			continue
		}
		r := fhir.CapabilityResource{
			Type: name, Interaction: interactions, Versioning: "versioned",
			ReadHistory: true, UpdateCreate: true, ConditionalCreate: true,
			ConditionalUpdate: true, ConditionalDelete: condDelete,
		}
		for _, pn := range td.ParamNames() {
			p := td.Params[pn]
			pt := string(p.Type)
			r.SearchParam = append(r.SearchParam, fhir.SearchParam{Name: pn, Type: pt, Documentation: paramDoc(p)})
		}
		r.SearchInclude, r.SearchRevInclude = refs.include[name], refs.revInclude(name)
		r.Operation = append(r.Operation, validateOperation) // validate.go
		if op, ok := exportOperations[name]; ok && fhirBase && s.exports != nil {
			r.Operation = append(r.Operation, op) // export.go
		}
		if name == "Patient" {
			r.Operation = append(r.Operation, everythingOperation) // everything.go
		}
		for _, p := range []*resources.SearchParam{resources.TextParam, resources.ContentParam} {
			r.SearchParam = append(r.SearchParam, fhir.SearchParam{Name: p.Name, Type: string(p.Type), Documentation: paramDoc(p)})
		}
		rest.Resource = append(rest.Resource, r)
	}
	if fhirBase && s.exports != nil {
		rest.Operation = append(rest.Operation, exportOperations[""])
	}
	cs.Rest = []fhir.CapabilityRest{rest}
	return cs
}
