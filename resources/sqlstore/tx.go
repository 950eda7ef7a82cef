package sqlstore

import (
	"context"
	"database/sql"
)

// txKey carries the transaction of a store's Transaction in a context (see
// resources.Store.Transaction). It is keyed by the dialect, so that a transaction of one
// kind of store is never taken up by the other.
type txKey struct{ d *Dialect }

// WithTx returns ctx carrying tx: the store's reads, searches and writes made with it run
// in tx, so that they see its writes and commit or roll back with it.
func (d *Dialect) WithTx(ctx context.Context, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, txKey{d}, tx)
}

// Tx returns the transaction ctx carries (WithTx), nil when there is none.
func (d *Dialect) Tx(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{d}).(*sql.Tx)
	return tx
}

// on is the transaction of ctx when there is one, else pool.
func (r Reads) on(ctx context.Context) Querier {
	if tx := r.d.Tx(ctx); tx != nil {
		return tx
	}
	return r.pool
}
