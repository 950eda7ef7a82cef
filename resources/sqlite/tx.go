package sqlite

import (
	"context"
	"database/sql"
	"errors"
)

// Transaction runs fn in one transaction of the write connection (see
// resources.Store.Transaction). SQLite has one writer: the transaction takes the writer's
// turn, alone (never in a group commit with other requests' writes, whose failure would
// run fn again), and every other write waits for it to end. fn runs on the writer's
// goroutine; the store's writes made with its context run on the transaction directly
// instead of queueing behind it, and its reads run on the transaction too, so that they
// see its writes (the read pool would not until the commit).
func (s *Store) Transaction(ctx context.Context, fn func(ctx context.Context) error) error {
	if dialect.Tx(ctx) != nil {
		return fn(ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, solo: true, done: make(chan struct{}),
		run: func(ctx context.Context, tx *sql.Tx) (err error) {
			// fn runs on the writer's goroutine, which a panic must not end.
			defer func() {
				if v := recover(); v != nil {
					err = fnPanic{v}
				}
			}()
			ctx = withDeferred(dialect.WithTx(ctx, tx))
			if err := fn(ctx); err != nil {
				return err
			}
			return flush(ctx, tx)
		}}
	select {
	case s.writes <- r:
	case <-s.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-r.done
	var p fnPanic
	if errors.As(r.err, &p) {
		panic(p.v)
	}
	return dialect.WriteError(ctx, r.err)
}
