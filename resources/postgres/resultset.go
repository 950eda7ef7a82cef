package postgres

import (
	"context"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// The stored result sets of stable paging (see sqlstore/resultset.go).

var _ resources.ResultSets = (*Store)(nil)

// SearchIDs returns the ids of the first limit matches of q, planned for its values
// like every search.
func (s *Store) SearchIDs(ctx context.Context, q *resources.Query, limit int) ([]string, error) {
	db, err := s.querier(ctx)
	if err != nil {
		return nil, err
	}
	return dialect.SearchIDs(ctx, planned{db}, q, limit)
}

// ReadLive returns the live current versions of those of ids that exist. The
// statement's text varies with the number of ids, so it is not prepared either.
func (s *Store) ReadLive(ctx context.Context, typ string, ids []string) ([]*resources.Resource, error) {
	db, err := s.querier(ctx)
	if err != nil {
		return nil, err
	}
	return dialect.ReadLive(ctx, planned{db}, typ, ids)
}

// SaveResultSet stores rs.
func (s *Store) SaveResultSet(ctx context.Context, rs *resources.ResultSet) error {
	return dialect.SaveResultSet(ctx, s.sql, rs)
}

// LoadResultSet returns the set called key with its ids at positions [from, to).
func (s *Store) LoadResultSet(ctx context.Context, key string, from, to int) (*resources.ResultSet, error) {
	return dialect.LoadResultSet(ctx, s.sql, key, from, to)
}

// PurgeResultSets removes the sets that expired before before.
func (s *Store) PurgeResultSets(ctx context.Context, before time.Time) (int, error) {
	return dialect.PurgeResultSets(ctx, s.sql, before)
}
