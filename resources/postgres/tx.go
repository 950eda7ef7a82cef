package postgres

import (
	"context"
	"database/sql"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Transaction runs fn in one PostgreSQL transaction on a connection of the pool (see
// resources.Store.Transaction). Inside it every read, search and write of the store runs
// on that transaction: a read on another connection of the pool would neither see the
// transaction's writes nor be sure to get a connection, since each transaction under
// way already holds one. Creates under fresh ids bypass the batching inserter, whose
// statements are transactions of their own. Notifications of the change feed
// (pg_notify) are delivered by PostgreSQL at the commit, and not at all on a rollback.
func (s *Store) Transaction(ctx context.Context, fn func(ctx context.Context) error) error {
	if dialect.Tx(ctx) != nil {
		return fn(ctx)
	}
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return translate(ctx, err)
	}
	defer tx.Rollback()
	ctx = context.WithValue(dialect.WithTx(ctx, tx), deferredKey{}, &deferred{})
	if err := fn(ctx); err != nil {
		return err
	}
	if err := s.flush(ctx); err != nil {
		return dialect.WriteError(ctx, err)
	}
	if err := tx.Commit(); err != nil {
		return translate(ctx, err)
	}
	return nil
}

// deferredKey carries a transaction's deferred creates.
type deferredKey struct{}

// deferred holds the creates under fresh ids that a transaction has made but not yet
// sent: they go to the database several hundred to a statement (insertManySQL, as the
// inserter sends them) when the transaction next reads, searches or writes otherwise,
// and at its commit. A transaction of a Synthea patient is hundreds of creates, and one
// statement each cost it most of its time in round trips.
type deferred struct{ creates []*insert }

// deferredChunk bounds the creates of one statement.
const deferredChunk = 256

// flush sends the deferred creates of ctx's transaction, if any.
func (s *Store) flush(ctx context.Context) error {
	d, _ := ctx.Value(deferredKey{}).(*deferred)
	tx := dialect.Tx(ctx)
	if d == nil || tx == nil {
		return nil
	}
	for len(d.creates) > 0 {
		n := min(len(d.creates), deferredChunk)
		if _, err := tx.ExecContext(ctx, insertManySQL, insertArgs(d.creates[:n])...); err != nil {
			d.creates = nil
			return err
		}
		d.creates = d.creates[n:]
	}
	return nil
}

// flushed is flush with its error translated, for the reads of a transaction.
func (s *Store) flushed(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return dialect.WriteError(ctx, err)
	}
	return nil
}

// querier is what a statement of ctx runs on: its transaction (its deferred creates
// sent first, so that the statement sees them), or the pool.
func (s *Store) querier(ctx context.Context) (sqlstore.Querier, error) {
	if tx := dialect.Tx(ctx); tx != nil {
		return tx, s.flushed(ctx)
	}
	return s.sql, nil
}

// writeIn runs one write inside the transaction tx of a Transaction: the ordinary locked
// write, without a retry (a unique violation aborts a PostgreSQL transaction; it can
// only come from a concurrent create of the same id, and fails the transaction with a
// conflict). A fresh id has no row to lock: its version is deferred (see deferred).
func (s *Store) writeIn(ctx context.Context, tx *sql.Tx, typ, id string, fn resources.WriteFunc) (*resources.Resource, error) {
	if d, ok := ctx.Value(deferredKey{}).(*deferred); ok && resources.FreshID(ctx) && !notifyCreates[typ] {
		next, idx, err := s.prepare(typ, id, nil, fn)
		if err != nil || next == nil {
			return next, err
		}
		d.creates = append(d.creates, &insert{res: next, idx: idx})
		return next, nil
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	return s.locked(ctx, tx, typ, id, fn)
}
