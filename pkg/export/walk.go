package export

import (
	"context"
	"net/url"
	"time"

	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/resources"
)

// Walker reads what a job exports. The server's reads as the job's caller, through
// the policies' confinement; the command line's reads everything.
type Walker interface {
	// Walk calls emit with the content of every resource of typ the job exports, in a
	// stable order (so that a job run again writes the same files). An error from emit
	// ends the walk and is returned.
	Walk(ctx context.Context, job *exportjob.Job, typ string, emit func(content []byte) error) error
}

// Params are the search parameters that select what a job exports of each type: the
// resources last updated at or after its _since (at, not only after: one written in
// the same millisecond as an earlier export's transactionTime is sent again rather
// than missed). Those updated after its transaction time are left out by the walk
// (WalkType's until), not by the search: a _lastUpdated bound on every page lets
// PostgreSQL, on statistics that a bulk load has made stale, read the whole type
// through the last_updated index and sort it for each page (170 ms a page at 16,000
// Observations, where the walk in id order takes a few).
func Params(job *exportjob.Job) url.Values {
	p := url.Values{}
	if !job.Since.IsZero() {
		p.Add("_lastUpdated", "ge"+resources.FormatInstant(job.Since))
	}
	return p
}

// WalkType calls emit with the content, as clients see it (resources.Service.Public),
// of every live resource of typ that params select and that was last updated at or
// before until (zero: whenever), in id order, reading pageSize at
// a time through svc.ExportPage: ctx is the caller's, and the search is confined as
// any of the caller's searches is.
func WalkType(ctx context.Context, svc *resources.Service, typ string, params url.Values, until time.Time, pageSize int, emit func([]byte) error) error {
	return WalkTypeResources(ctx, svc, typ, params, until, pageSize, func(_ *resources.Resource, content []byte) error { return emit(content) })
}

// WalkTypeResources is WalkType with the resource beside its content. The next page
// is read while the current one is emitted: the database and the writing overlap.
func WalkTypeResources(ctx context.Context, svc *resources.Service, typ string, params url.Values, until time.Time, pageSize int, emit func(*resources.Resource, []byte) error) error {
	return walkPages(ctx, svc, "", typ, params, until, pageSize, emit)
}

// WalkCompartments is WalkType over the resources of typ in some compartment of
// compType (svc.ExportCompartmentsPage): a patient-level export's walk, with compType
// "Patient".
func WalkCompartments(ctx context.Context, svc *resources.Service, compType, typ string, params url.Values, until time.Time, pageSize int, emit func([]byte) error) error {
	return walkPages(ctx, svc, compType, typ, params, until, pageSize, func(_ *resources.Resource, content []byte) error { return emit(content) })
}

// walkPages is the walk: the next page is read while the current one is emitted.
func walkPages(ctx context.Context, svc *resources.Service, compType, typ string, params url.Values, until time.Time, pageSize int, emit func(*resources.Resource, []byte) error) error {
	type result struct {
		page []*resources.Resource
		err  error
	}
	fetch := func(after string) <-chan result {
		ch := make(chan result, 1) // never blocks: an abandoned read ends on its own
		go func() {
			page, err := svc.ExportCompartmentsPage(ctx, compType, typ, params, after, pageSize)
			ch <- result{page, err}
		}()
		return ch
	}
	next := fetch("")
	for {
		r := <-next
		if r.err != nil {
			return r.err
		}
		full := len(r.page) >= pageSize
		if full {
			next = fetch(r.page[len(r.page)-1].ID)
		}
		for _, res := range r.page {
			if !until.IsZero() && res.LastUpdated.After(until) {
				continue
			}
			content, err := svc.Public(res, resources.View{})
			if err != nil {
				return err
			}
			if err := emit(res, content); err != nil {
				return err
			}
		}
		if !full {
			return nil
		}
	}
}
