package postgres

import (
	"context"

	"github.com/fhirbox/fhirbox/resources"
)

// Include returns the live resources that q's links lead to (see
// sqlstore.Dialect.Include), planned for its values as searches are.
func (s *Store) Include(ctx context.Context, q resources.IncludeQuery) ([]*resources.Resource, error) {
	return dialect.Include(ctx, planned{s.sql}, q)
}
