package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// The stored result sets of stable paging (see sqlstore/resultset.go): read on the read
// pool under the statement timeout, written on the write connection, in turn with the
// resource writes.

var _ resources.ResultSets = (*Store)(nil)

// SearchIDs returns the ids of the first limit matches of q.
func (s *Store) SearchIDs(ctx context.Context, q *resources.Query, limit int) (ids []string, err error) {
	err = s.reading(ctx, func(ctx context.Context, c *sql.Conn) (err error) {
		ids, err = dialect.SearchIDs(ctx, c, q, limit)
		return err
	})
	return ids, err
}

// ReadLive returns the live current versions of those of ids that exist.
func (s *Store) ReadLive(ctx context.Context, typ string, ids []string) (out []*resources.Resource, err error) {
	err = s.reading(ctx, func(ctx context.Context, c *sql.Conn) (err error) {
		out, err = dialect.ReadLive(ctx, c, typ, ids)
		return err
	})
	return out, err
}

// SaveResultSet stores rs.
func (s *Store) SaveResultSet(ctx context.Context, rs *resources.ResultSet) error {
	return dialect.SaveResultSet(ctx, s.write, rs)
}

// LoadResultSet returns the set called key with its ids at positions [from, to).
func (s *Store) LoadResultSet(ctx context.Context, key string, from, to int) (rs *resources.ResultSet, err error) {
	err = s.reading(ctx, func(ctx context.Context, c *sql.Conn) (err error) {
		rs, err = dialect.LoadResultSet(ctx, c, key, from, to)
		return err
	})
	return rs, err
}

// PurgeResultSets removes the sets that expired before before.
func (s *Store) PurgeResultSets(ctx context.Context, before time.Time) (int, error) {
	return dialect.PurgeResultSets(ctx, s.write, before)
}
