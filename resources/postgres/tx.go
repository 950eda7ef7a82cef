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
	if err := fn(dialect.WithTx(ctx, tx)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return translate(ctx, err)
	}
	return nil
}

// querier is what a statement of ctx runs on: its transaction, or the pool.
func (s *Store) querier(ctx context.Context) sqlstore.Querier {
	if tx := dialect.Tx(ctx); tx != nil {
		return tx
	}
	return s.sql
}

// writeIn runs one write inside the transaction tx of a Transaction: the ordinary locked
// write, without a retry (a unique violation aborts a PostgreSQL transaction; it can
// only come from a concurrent create of the same id, and fails the transaction with a
// conflict). A fresh id has no row to lock, so its version is inserted at once.
func (s *Store) writeIn(ctx context.Context, tx *sql.Tx, typ, id string, fn resources.WriteFunc) (*resources.Resource, error) {
	if resources.FreshID(ctx) && !notifyCreates[typ] {
		next, idx, err := s.prepare(typ, id, nil, fn)
		if err != nil || next == nil {
			return next, err
		}
		if _, err := tx.ExecContext(ctx, createSQL, saveArgs(next, idx)...); err != nil {
			return nil, err
		}
		return next, nil
	}
	return s.locked(ctx, tx, typ, id, fn)
}
