package bulkimport

import (
	"context"

	"github.com/fhirbox/fhirbox/pkg/format"
	"github.com/fhirbox/fhirbox/resources"
)

// Lookup returns the current versions (deleted or not) of those of ids of typ that
// have a row: one statement for a batch's ids, where a read each would cost a round
// trip each.
type Lookup func(ctx context.Context, typ string, ids []string) (map[string]*resources.Resource, error)

// Store writes batches into the database through the resource engine: each resource
// is validated, versioned and indexed as a PUT of it would be, and the change feed
// tells running servers of what their caches hold.
type Store struct {
	Service *resources.Service
	Lookup  Lookup
}

// WriteBatch stores items in one transaction (see Sink). Each is an update of its id:
// a create when the id has no live resource, nothing at all when the stored resource
// is the same but for its meta.versionId and meta.lastUpdated (a re-run of an import
// writes no new versions). A resource the engine refuses (invalid, an unknown type)
// is failed and the others stay in the transaction: those refusals come before any
// statement. Any other error rolls the transaction back, and the batch is written
// again in halves, down to the one resource that fails; an error that says the
// database cannot be reached stops the import.
func (s *Store) WriteBatch(ctx context.Context, items []*Item) ([]Result, error) {
	res := make([]Result, len(items))
	err := s.write(ctx, items, res, false)
	return res, err
}

// write stores items, its results in res; retry says the items were in a batch rolled
// back, whose writes changed their documents.
func (s *Store) write(ctx context.Context, items []*Item, res []Result, retry bool) error {
	for i, it := range items {
		res[i] = Result{}
		switch {
		case it.Err != nil:
			res[i] = Result{Err: it.Err}
		case retry:
			if err := it.decode(); err != nil {
				res[i] = Result{Err: err}
			}
		}
	}
	cur, err := s.current(ctx, items)
	if err != nil {
		// Reads of a batch fail when the database does: nothing more can be stored.
		for i := range res {
			res[i] = Result{Err: err}
		}
		return err
	}
	// A resource whose id had no row a moment ago is checked and built before the
	// transaction (staged), so that the next batch is built while the store writes this
	// one: on SQLite a transaction's work all runs on the one writer.
	// first[i] says that item i is the first of its id in the batch (a later one is an
	// update of it).
	staged := make([]*resources.Staged, len(items))
	first := make([]bool, len(items))
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if res[i].Err != nil {
			continue
		}
		key := it.Type + "/" + it.ID
		first[i], seen[key] = !seen[key], true
		if _, ok := cur[key]; ok || !first[i] {
			continue
		}
		if staged[i], err = s.Service.StageCreate(ctx, it.Type, it.ID, it.Doc); err != nil {
			res[i] = Result{Err: err}
		}
	}
	err = s.Service.Transaction(ctx, func(tx context.Context) error {
		for i, it := range items {
			if res[i].Err != nil {
				continue
			}
			c, ok := cur[it.Type+"/"+it.ID]
			if ok && first[i] && unchanged(c, it.Doc) {
				res[i] = Result{Outcome: Unchanged}
				continue
			}
			wctx := tx
			if !ok && first[i] {
				// No row for the id a moment ago: the store may insert without looking
				// for one (several to a statement). Were one created meanwhile, the
				// insert fails and the batch is retried.
				wctx = resources.WithFreshID(tx)
			}
			if staged[i] != nil {
				if _, err := s.Service.WriteStaged(wctx, staged[i]); err != nil {
					return err
				}
				res[i] = Result{Outcome: Created}
				continue
			}
			_, created, err := s.Service.Update(wctx, it.Type, it.ID, it.Doc, "")
			switch {
			case err == nil && created:
				res[i] = Result{Outcome: Created}
			case err == nil:
				res[i] = Result{Outcome: Updated}
			case refused(err):
				res[i] = Result{Err: err}
			default:
				return err
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if fatal(ctx, err) {
		for i := range res {
			res[i] = Result{Err: err}
		}
		return err
	}
	if len(items) == 1 {
		res[0] = Result{Err: err}
		return nil
	}
	h := len(items) / 2
	if err := s.write(ctx, items[:h], res[:h], true); err != nil {
		for i := h; i < len(items); i++ {
			res[i] = Result{Err: err}
		}
		return err
	}
	return s.write(ctx, items[h:], res[h:], true)
}

// current returns the stored versions of items' ids, keyed Type/id.
func (s *Store) current(ctx context.Context, items []*Item) (map[string]*resources.Resource, error) {
	byType := map[string][]string{}
	for _, it := range items {
		if it.Err == nil && it.Doc != nil {
			byType[it.Type] = append(byType[it.Type], it.ID)
		}
	}
	out := make(map[string]*resources.Resource, len(items))
	for typ, ids := range byType {
		m, err := s.Lookup(ctx, typ, ids)
		if err != nil {
			return nil, err
		}
		for id, r := range m {
			out[typ+"/"+id] = r
		}
	}
	return out, nil
}

// refused reports whether err is the engine refusing a resource before writing it: the
// transaction goes on without it.
func refused(err error) bool {
	switch resources.ErrorCode(err) {
	case resources.CodeInvalid, resources.CodeUnprocessable, resources.CodeNotFound:
		return true
	}
	return false
}

// fatal reports whether err stops the import: the database cannot be reached, or the
// import was stopped.
func fatal(ctx context.Context, err error) bool {
	switch resources.ErrorCode(err) {
	case resources.CodeUnavailable, resources.CodeTimeout:
		return true
	}
	return ctx.Err() != nil
}

// unchanged reports whether the stored version cur holds doc already: the same
// document but for meta.versionId and meta.lastUpdated, which every write sets, numbers
// compared by value (PostgreSQL's jsonb keeps 1e2 as 100).
func unchanged(cur *resources.Resource, doc map[string]any) bool {
	if cur.Deleted {
		return false
	}
	stored, err := format.DecodeJSON(cur.Content)
	if err != nil {
		return false
	}
	return sameDoc(stored, doc)
}

// sameDoc compares two documents as unchanged does.
func sameDoc(stored, doc map[string]any) bool {
	for k := range doc {
		if _, ok := stored[k]; !ok && k != "meta" {
			return false
		}
	}
	for k, v := range stored {
		w, ok := doc[k]
		if k == "meta" {
			if !sameMeta(v, w) {
				return false
			}
			continue
		}
		if !ok || !resources.JSONEqual(v, w) {
			return false
		}
	}
	return true
}

// sameMeta compares two meta elements without their versionId and lastUpdated.
func sameMeta(a, b any) bool {
	strip := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, x := range m {
			if k != "versionId" && k != "lastUpdated" {
				out[k] = x
			}
		}
		return out
	}
	return resources.JSONEqual(strip(a), strip(b))
}
