package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// The stored result sets of stable paging (see sqlstore/resultset.go): read on the read
// pool under the statement timeout, written on a connection of their own (openSets).

var _ resources.ResultSets = (*Store)(nil)

// SearchIDs returns the ids of the first limit matches of q.
func (s *Store) SearchIDs(ctx context.Context, q *resources.Query, limit int) (ids []string, err error) {
	err = s.reading(ctx, func(ctx context.Context, c sqlstore.Querier) (err error) {
		ids, err = dialect.SearchIDs(ctx, c, q, limit)
		return err
	})
	return ids, err
}

// ReadLive returns the live current versions of those of ids that exist.
func (s *Store) ReadLive(ctx context.Context, typ string, ids []string) (out []*resources.Resource, err error) {
	err = s.reading(ctx, func(ctx context.Context, c sqlstore.Querier) (err error) {
		out, err = dialect.ReadLive(ctx, c, typ, ids)
		return err
	})
	return out, err
}

// SaveResultSet stores rs.
func (s *Store) SaveResultSet(ctx context.Context, rs *resources.ResultSet) error {
	return dialect.SaveResultSet(ctx, s.sets, rs)
}

// LoadResultSet returns the set called key with its ids at positions [from, to).
func (s *Store) LoadResultSet(ctx context.Context, key string, from, to int) (rs *resources.ResultSet, err error) {
	err = s.reading(ctx, func(ctx context.Context, c sqlstore.Querier) (err error) {
		rs, err = dialect.LoadResultSet(ctx, c, key, from, to)
		return err
	})
	return rs, err
}

// PurgeResultSets removes the sets that expired before before.
func (s *Store) PurgeResultSets(ctx context.Context, before time.Time) (int, error) {
	return dialect.PurgeResultSets(ctx, s.sets, before)
}

// openSets opens the connection that writes result sets. A set needs no durability (one
// lost makes its client repeat the search), so it commits with synchronous(NORMAL): the
// commit appends to the WAL without waiting for the disk, which the resource writes'
// synchronous(FULL) commits would make every first page of a paged search do (under
// load an fsync took tens of milliseconds). In WAL mode NORMAL never corrupts the file; the
// next FULL commit syncs the frames before its own. It checkpoints as the resource writer
// does (without, a server that only searches grew the log by every set it stored, and
// reads slowed with it), and it writes in turn with the writer under the busy timeout:
// _txlock=immediate takes the write lock as a transaction begins.
func openSets(ctx context.Context, abs string) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsn(abs, "_pragma=synchronous(NORMAL)", "_pragma=wal_autocheckpoint(4000)", "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: cannot open %s: %s", abs, oneLine(err))
	}
	return db, nil
}
