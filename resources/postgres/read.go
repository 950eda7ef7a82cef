package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Read returns the current version of typ/id, deleted or not. Reads by id are the
// API's commonest request, so they go to pgx directly on a connection of the pool:
// through database/sql every document was copied twice (once into a driver value,
// once more into the destination) and a read paid for its generic row machinery, about
// half of the bytes a read allocated (see BENCHMARKS.md).
func (s *Store) Read(ctx context.Context, typ, id string) (*resources.Resource, error) {
	if dialect.Tx(ctx) != nil {
		if err := s.flushed(ctx); err != nil {
			return nil, err
		}
		return s.Reads.Read(ctx, typ, id)
	}
	var res *resources.Resource
	err := s.native(ctx, func(c *pgx.Conn) (err error) {
		res, err = dialect.ScanRead(ctx, c.QueryRow(ctx, sqlstore.ReadSQL, typ, id), typ, id)
		return err
	})
	return res, err
}

// VRead returns version versionID of typ/id, read as Read is.
func (s *Store) VRead(ctx context.Context, typ, id string, versionID int64) (*resources.Resource, error) {
	if dialect.Tx(ctx) != nil {
		if err := s.flushed(ctx); err != nil {
			return nil, err
		}
		return s.Reads.VRead(ctx, typ, id, versionID)
	}
	var res *resources.Resource
	err := s.native(ctx, func(c *pgx.Conn) (err error) {
		res, err = dialect.ScanVRead(ctx, c.QueryRow(ctx, sqlstore.VReadSQL, typ, id, versionID), typ, id, versionID)
		return err
	})
	return res, err
}

// native runs fn on the pgx connection under one of the pool's connections; fn's
// errors must already be the engine's (translated). Reads have no side effects, so a
// read that failed because its connection broke (the server restarted, or terminated
// the backend) is run once more on another connection.
func (s *Store) native(ctx context.Context, fn func(*pgx.Conn) error) error {
	broken, err := s.nativeOnce(ctx, fn)
	if err != nil && broken && ctx.Err() == nil {
		_, err = s.nativeOnce(ctx, fn)
	}
	return err
}

// nativeOnce runs fn once and reports whether its connection was closed by then.
func (s *Store) nativeOnce(ctx context.Context, fn func(*pgx.Conn) error) (broken bool, err error) {
	conn, err := s.sql.Conn(ctx)
	if err != nil {
		return false, translate(ctx, err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		err := fn(c)
		broken = err != nil && c.IsClosed()
		return err
	})
	return broken, err
}

// History lists versions as sqlstore.Reads does, the deferred creates of a transaction
// sent first.
func (s *Store) History(ctx context.Context, q resources.HistoryQuery) (*resources.HistoryResult, error) {
	if err := s.flushed(ctx); err != nil {
		return nil, err
	}
	return s.Reads.History(ctx, q)
}
