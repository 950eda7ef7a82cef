package sqlite

import (
	"context"
	"github.com/fhirbox/fhirbox/resources/sqlstore"

	"github.com/fhirbox/fhirbox/resources"
)

// Include returns the live resources that q's links lead to (see
// sqlstore.Dialect.Include), on a connection of the read pool under the statement timeout.
func (s *Store) Include(ctx context.Context, q resources.IncludeQuery) (out []*resources.Resource, err error) {
	err = s.reading(ctx, func(ctx context.Context, c sqlstore.Querier) (err error) {
		out, err = dialect.Include(ctx, c, q)
		return err
	})
	return out, err
}
