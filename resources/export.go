package resources

import (
	"context"
	"net/url"
)

// ExportPage returns up to limit live resources of typ that match params, in id order,
// after the id after ("" : from the first): the walk of a bulk data export, one page
// at a time. It is a search like any other (parsed strictly, prepared by the same
// step as the API's searches, so that what confines a caller's searches confines it
// too) whose pages are cut by id rather than by offset: the last page of a type costs
// what the first does. Nothing is counted and nothing stored.
func (s *Service) ExportPage(ctx context.Context, typ string, params url.Values, after string, limit int) ([]*Resource, error) {
	return s.ExportCompartmentsPage(ctx, "", typ, params, after, limit)
}

// ExportCompartmentsPage is ExportPage narrowed, in the same statement, to the
// resources of typ in some compartment of compType ("Patient"): those one of whose
// compartment parameters for compType refers to a resource of compType — the resources
// of compType itself are all kept, and a type without such parameters has none. A
// patient-level export reads with it: the Bulk Data IG's Patient compartment of all
// patients (conformance E10). compType "" is ExportPage.
func (s *Service) ExportCompartmentsPage(ctx context.Context, compType, typ string, params url.Values, after string, limit int) ([]*Resource, error) {
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("_sort", "_id")
	p.Set("_total", "none")
	q, err := ParseSearch(s.reg, typ, p, s.parseOptions(true))
	if err != nil {
		return nil, err
	}
	if err := s.prepare(ctx, q); err != nil {
		return nil, err
	}
	if compType != "" && typ != compType {
		// A condition of the query, like a confinement: never a parameter of links.
		q.Confine = append(q.Confine, []ConfineGroup{{Types: []string{typ}, InAny: compType, Params: CompartmentParams(compType, typ), After: after}})
	}
	// Past the API's _count maximum: the page is the server's, not a client's.
	q.Count, q.After = max(limit, 1), after
	res, err := s.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}
