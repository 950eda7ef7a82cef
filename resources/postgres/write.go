package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

const lockSQL = `SELECT version_id, last_updated, deleted, content FROM resource
WHERE resource_type = $1 AND id = $2 FOR UPDATE`

// saveTail is the part of the write statement shared by creates and updates. One
// statement appends the history row and replaces the index rows: its sub-statements share
// one snapshot, so the DELETEs remove only the old index rows, never the ones the
// INSERTs add. Index rows arrive as arrays zipped by unnest, which keeps the SQL text the
// same whatever their number (pgx prepares it once per connection) and the whole write
// at four round trips: BEGIN, the locking SELECT, this statement and COMMIT.
const saveTail = `h AS (
  INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, content)
  VALUES ($1, $2, $3, $4, $5, $6)),
s AS (INSERT INTO search_string (resource_type, id, param, value, exact, grp)
  SELECT $1, $2, u.* FROM unnest($7::text[], $8::text[], $9::text[], $10::int4[]) u),
t AS (INSERT INTO search_token (resource_type, id, param, system, code, grp)
  SELECT $1, $2, u.* FROM unnest($11::text[], $12::text[], $13::text[], $14::int4[]) u),
d AS (INSERT INTO search_date (resource_type, id, param, low, high, grp)
  SELECT $1, $2, u.* FROM unnest($15::text[], $16::timestamptz[], $17::timestamptz[], $18::int4[]) u),
n AS (INSERT INTO search_number (resource_type, id, param, value, system, code, grp)
  SELECT $1, $2, u.* FROM unnest($19::text[], $20::float8[], $21::text[], $22::text[], $23::int4[]) u),
r AS (INSERT INTO search_reference (resource_type, id, param, target_type, target_id, grp)
  SELECT $1, $2, u.* FROM unnest($24::text[], $25::text[], $26::text[], $27::int4[]) u),
x AS (INSERT INTO search_text (resource_type, id, narrative, content)
  SELECT $1, $2, ` + textVectors + ` FROM unnest($28::text[], $29::text[]) u(n, c))
`

// textVectors makes the tsvectors of search_text from u.n and u.c, the words of a
// resources.FullText, stored as they are (see migrations/postgres/00005).
const textVectors = `array_to_tsvector(string_to_array(u.n, ' ')), array_to_tsvector(string_to_array(u.c, ' '))`

// dropIndexRows removes the index rows of the version being replaced. A resource with
// no row yet has none (index rows live and die with live versions), so creates skip it.
const dropIndexRows = `ds AS (DELETE FROM search_string WHERE resource_type = $1 AND id = $2),
dt AS (DELETE FROM search_token WHERE resource_type = $1 AND id = $2),
dd AS (DELETE FROM search_date WHERE resource_type = $1 AND id = $2),
dn AS (DELETE FROM search_number WHERE resource_type = $1 AND id = $2),
dr AS (DELETE FROM search_reference WHERE resource_type = $1 AND id = $2),
dx AS (DELETE FROM search_text WHERE resource_type = $1 AND id = $2),
`

// createSQL inserts the resource row: when two transactions create one id at once, the
// second fails with a unique violation instead of overwriting the first (Write retries).
const createSQL = `WITH ` + saveTail + `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
VALUES ($1, $2, $3, $4, $5, $6)`

// updateSQL updates the row that the transaction holds locked.
const updateSQL = `WITH ` + dropIndexRows + saveTail + `UPDATE resource SET version_id = $3, last_updated = $4, deleted = $5, content = $6
WHERE resource_type = $1 AND id = $2`

// Write runs fn on the locked current version of typ/id and stores the version it
// returns, with its history row and index rows, in one transaction.
func (s *Store) Write(ctx context.Context, typ, id string, fn resources.WriteFunc) (*resources.Resource, error) {
	if tx := dialect.Tx(ctx); tx != nil {
		res, err := s.writeIn(ctx, tx, typ, id, fn)
		if err != nil {
			return nil, dialect.WriteError(ctx, err)
		}
		return res, nil
	}
	res, err := s.write(ctx, typ, id, fn, false)
	if isUniqueViolation(err) {
		// A concurrent transaction created typ/id after our SELECT … FOR UPDATE found
		// nothing to lock. It has committed by now, so a second attempt locks its row
		// and fn sees the version it wrote.
		res, err = s.write(ctx, typ, id, fn, true)
	}
	if err != nil {
		return nil, dialect.WriteError(ctx, err)
	}
	return res, nil
}

func (s *Store) write(ctx context.Context, typ, id string, fn resources.WriteFunc, retry bool) (*resources.Resource, error) {
	// A fresh id (a UUID the server just made, see resources.NewID) has no row to lock and no old
	// index rows: the version is inserted by one statement, which is a transaction of
	// its own, shared with the other fresh creates that arrive meanwhile (see inserter).
	// Were the id taken after all, the INSERT fails with a unique violation and Write
	// retries the ordinary way.
	if resources.FreshID(ctx) && !retry && !notifyCreates[typ] {
		next, idx, err := s.prepare(typ, id, nil, fn)
		if err != nil || next == nil {
			return next, err
		}
		if err := s.ins.Insert(ctx, next, idx); err != nil {
			return nil, err
		}
		return next, nil
	}

	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	// Every path but a successful Commit ends here, a no-op write included.
	defer tx.Rollback()
	next, err := s.locked(ctx, tx, typ, id, fn)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return next, nil
}

// locked locks typ/id in tx, runs fn on its current version and writes what fn returns
// (a no-op write returns the current version), with the change feed's notification
// when the write is news to a cache.
func (s *Store) locked(ctx context.Context, tx *sql.Tx, typ, id string, fn resources.WriteFunc) (*resources.Resource, error) {
	var cur *resources.Resource
	c := &resources.Resource{Type: typ, ID: id}
	var content []byte
	switch err := tx.QueryRowContext(ctx, lockSQL, typ, id).Scan(&c.VersionID, &c.LastUpdated, &c.Deleted, &content); {
	case err == nil:
		c.LastUpdated = c.LastUpdated.UTC()
		c.Content = content
		cur = c
	case !errors.Is(err, sql.ErrNoRows):
		return nil, err
	}
	next, idx, err := s.prepare(typ, id, cur, fn)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return cur, nil
	}
	q := updateSQL
	if cur == nil {
		q = createSQL
	}
	if _, err := tx.ExecContext(ctx, q, saveArgs(next, idx)...); err != nil {
		return nil, err
	}
	// Nothing can have cached what did not exist, so only a new AccessPolicy or
	// SearchParameter is news when it is created; every token issued creates a
	// Session, and announcing those would cost each of them a notification for nothing.
	if notifyTypes[typ] && (cur != nil || notifyCreates[typ]) {
		// Delivered by PostgreSQL at commit, and only then, to every listening process.
		if _, err := tx.ExecContext(ctx, notifySQL, feedChannel, encodeEvent(next)); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// prepare runs fn on cur and checks what it returns; (nil, nil, nil) is a no-op write.
func (s *Store) prepare(typ, id string, cur *resources.Resource, fn resources.WriteFunc) (*resources.Resource, *resources.Index, error) {
	next, idx, err := fn(cur)
	if err != nil {
		return nil, nil, sqlstore.FnError{Err: err}
	}
	if next == nil {
		return nil, nil, nil
	}
	if next.Type != typ || next.ID != id {
		return nil, nil, fmt.Errorf("postgres: write of %s/%s returned %s/%s", typ, id, next.Type, next.ID)
	}
	if idx == nil || next.Deleted {
		// A deleted resource is never found by a search: it keeps no index rows.
		idx = &resources.Index{}
	}
	// The database keeps microseconds: the version returned is the one Read will return.
	next.LastUpdated = next.LastUpdated.UTC().Truncate(time.Microsecond)
	return next, idx, nil
}

// saveArgs lays out the arguments of createSQL and updateSQL: the version, then one
// array per index column.
func saveArgs(r *resources.Resource, idx *resources.Index) []any {
	ss := idx.Strings
	sp, sv, se, sg := make([]string, len(ss)), make([]string, len(ss)), make([]string, len(ss)), make([]int32, len(ss))
	for i, e := range ss {
		sp[i], sv[i], se[i], sg[i] = e.Param, e.Value, e.Exact, int32(e.Group)
	}
	ts := idx.Tokens
	tp, tsys, tc, tg := make([]string, len(ts)), make([]string, len(ts)), make([]string, len(ts)), make([]int32, len(ts))
	for i, e := range ts {
		tp[i], tsys[i], tc[i], tg[i] = e.Param, e.System, e.Code, int32(e.Group)
	}
	ds := idx.Dates
	dp, dl, dh, dg := make([]string, len(ds)), make([]time.Time, len(ds)), make([]time.Time, len(ds)), make([]int32, len(ds))
	for i, e := range ds {
		dp[i], dl[i], dh[i], dg[i] = e.Param, e.Low, e.High, int32(e.Group)
	}
	ns := idx.Numbers
	np, nv, nsys, nc, ng := make([]string, len(ns)), make([]float64, len(ns)), make([]string, len(ns)), make([]string, len(ns)), make([]int32, len(ns))
	for i, e := range ns {
		np[i], nv[i], nsys[i], nc[i], ng[i] = e.Param, e.Value, e.System, e.Code, int32(e.Group)
	}
	rs := idx.References
	rp, rt, ri, rg := make([]string, len(rs)), make([]string, len(rs)), make([]string, len(rs)), make([]int32, len(rs))
	for i, e := range rs {
		rp[i], rt[i], ri[i], rg[i] = e.Param, e.TargetType, e.TargetID, int32(e.Group)
	}
	xn, xc := []string{}, []string{}
	if t := idx.Text; t.Narrative != "" || t.Content != "" {
		xn, xc = append(xn, t.Narrative), append(xc, t.Content)
	}
	return []any{
		r.Type, r.ID, r.VersionID, r.LastUpdated, r.Deleted, []byte(r.Content),
		sp, sv, se, sg,
		tp, tsys, tc, tg,
		dp, dl, dh, dg,
		np, nv, nsys, nc, ng,
		rp, rt, ri, rg,
		xn, xc,
	}
}
