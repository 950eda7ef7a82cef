package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"slices"

	"github.com/fhirbox/fhirbox/resources"
)

// deferredKey carries a transaction's deferred creates.
type deferredKey struct{}

// deferred holds the creates under fresh ids (resources.WithFreshID) that a
// Transaction has made but not yet written. They are written together when the
// transaction next reads, searches or writes otherwise, when maxDeferred are waiting,
// and before it commits: a batch of fhirbox import is hundreds of creates, and
// written one by one their index rows landed at random places of a dozen indexes
// far larger than the page cache, a page read back and written again per row. Written
// together, each table's rows go in the order of its search index, so that rows
// which share a leaf page arrive one after the other, several hundred per statement.
type deferred struct{ creates []deferredCreate }

type deferredCreate struct {
	res *resources.Resource
	idx *resources.Index
}

// maxDeferred bounds the creates a transaction holds back (and so their memory).
const maxDeferred = 1000

// withDeferred returns ctx with room for deferred creates.
func withDeferred(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferredKey{}, &deferred{})
}

// deferredOf returns the deferred creates of ctx's transaction, nil outside one.
func deferredOf(ctx context.Context) *deferred {
	d, _ := ctx.Value(deferredKey{}).(*deferred)
	return d
}

// flush writes the deferred creates of ctx's transaction tx, if any.
func flush(ctx context.Context, tx *sql.Tx) error {
	d := deferredOf(ctx)
	if d == nil || len(d.creates) == 0 {
		return nil
	}
	creates := d.creates
	d.creates = nil
	var types []string
	byType := map[string][]deferredCreate{}
	for _, c := range creates {
		if byType[c.res.Type] == nil {
			types = append(types, c.res.Type)
		}
		byType[c.res.Type] = append(byType[c.res.Type], c)
	}
	for _, typ := range types {
		if err := writeCreates(ctx, tx, typ, byType[typ]); err != nil {
			return err
		}
	}
	return nil
}

// versionColumns are the columns of resource and resource_history after
// (resource_type, id).
var versionColumns = []string{"version_id", "last_updated", "deleted", "content"}

// writeCreates writes new resources of typ: their rows, history rows, full-text rows
// and index rows, each table's several resources to a statement.
func writeCreates(ctx context.Context, tx *sql.Tx, typ string, cs []deferredCreate) error {
	versions := make([][]any, len(cs))
	for i, c := range cs {
		versions[i] = []any{c.res.ID, c.res.VersionID, c.res.LastUpdated.UnixMicro(), c.res.Deleted, string(c.res.Content)}
	}
	for _, table := range []string{"resource", "resource_history"} {
		// Documents go as arguments of their own rather than escaped into JSON.
		if err := insertRows(ctx, tx, table, append([]string{"resource_type", "id"}, versionColumns...), []any{typ}, versions); err != nil {
			return err
		}
	}
	if err := insertTexts(ctx, tx, typ, cs); err != nil {
		return err
	}
	tables := make([][][]any, len(indexTables))
	for _, c := range cs {
		for i, rows := range indexRows(c.idx) {
			for _, r := range rows {
				tables[i] = append(tables[i], append([]any{c.res.ID}, r...))
			}
		}
	}
	for i, rows := range tables {
		key := indexTables[i].order
		slices.SortFunc(rows, func(a, b []any) int {
			for _, k := range key {
				if c := compareValues(a[k], b[k]); c != 0 {
					return c
				}
			}
			return 0
		})
		if err := insertBatchRows(ctx, tx, indexTables[i].name, indexTables[i].columns, typ, rows); err != nil {
			return err
		}
	}
	return nil
}

// insertTexts writes the full-text rows of cs (those with text). The writer is alone
// in its transaction, so the keys are numbered on from the largest.
func insertTexts(ctx context.Context, tx *sql.Tx, typ string, cs []deferredCreate) error {
	var keys, texts [][]any
	var next int64
	for _, c := range cs {
		t := c.idx.Text
		if t.Narrative == "" && t.Content == "" {
			continue
		}
		if keys == nil {
			if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(docid), 0) FROM search_text_key").Scan(&next); err != nil {
				return err
			}
		}
		next++
		keys = append(keys, []any{c.res.ID, next})
		texts = append(texts, []any{next, t.Narrative, t.Content})
	}
	if len(keys) == 0 {
		return nil
	}
	if err := insertBatchRows(ctx, tx, "search_text_key", []string{"docid"}, typ, keys); err != nil {
		return err
	}
	return insertRows(ctx, tx, "search_text", []string{"rowid", "narrative", "content"}, nil, texts)
}

// compareValues orders two values of one index column.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return cmp.Compare(x, y)
		}
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
	}
	return 0
}

// Read returns the current version of typ/id, deleted or not (sqlstore.Reads), the
// deferred creates of a transaction written first.
func (s *Store) Read(ctx context.Context, typ, id string) (*resources.Resource, error) {
	if err := s.flushed(ctx); err != nil {
		return nil, err
	}
	return s.Reads.Read(ctx, typ, id)
}

// VRead returns version versionID of typ/id, read as Read is.
func (s *Store) VRead(ctx context.Context, typ, id string, versionID int64) (*resources.Resource, error) {
	if err := s.flushed(ctx); err != nil {
		return nil, err
	}
	return s.Reads.VRead(ctx, typ, id, versionID)
}

// flushed writes the deferred creates of ctx's transaction, if it is in one.
func (s *Store) flushed(ctx context.Context) error {
	if tx := dialect.Tx(ctx); tx != nil {
		if err := flush(ctx, tx); err != nil {
			return dialect.WriteError(ctx, err)
		}
	}
	return nil
}
