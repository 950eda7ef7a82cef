package resources

import "context"

// pendingKey carries the writes of a Service.Transaction whose commit hooks and
// OnWrite callbacks wait for its commit.
type pendingKey struct{}

// pending is what a transaction has written so far, and the context it began with.
type pending struct {
	ctx    context.Context
	writes [][2]*Resource // prev, next
}

// Transaction runs fn in one database transaction (conformance F41, see
// Store.Transaction): the creates, updates, deletes, reads and searches made with the
// context fn receives commit together or not at all. The commit hooks and OnWrite
// callbacks of its writes run after the commit, in the order of the writes, and not at
// all when it rolls back: the caches of Clients, Users, Sessions and policies must never
// forget, or learn, what was not committed. Called inside a transaction, fn joins it.
func (s *Service) Transaction(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(pendingKey{}).(*pending); ok {
		return fn(ctx)
	}
	p := &pending{ctx: ctx}
	if err := s.store.Transaction(context.WithValue(ctx, pendingKey{}, p), fn); err != nil {
		return err
	}
	for _, w := range p.writes {
		s.written(p.ctx, w[0], w[1])
	}
	return nil
}

// afterWrite tells the commit hooks and the caches about a write: at once, or at the
// commit of the transaction it was made in.
func (s *Service) afterWrite(ctx context.Context, prev, next *Resource) {
	if p, ok := ctx.Value(pendingKey{}).(*pending); ok {
		p.writes = append(p.writes, [2]*Resource{prev, next})
		return
	}
	s.written(ctx, prev, next)
}

// ConditionalMatch returns the one live resource of typ that the search query matches
// (conformance F6, F43): nil when none does, a CodePreconditionFailed error when several
// do. Conditional creates and a transaction's conditional references resolve this way.
func (s *Service) ConditionalMatch(ctx context.Context, typ, query string) (*Resource, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, err
	}
	return s.conditionalMatch(ctx, typ, query)
}
