package postgres

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// insertManySQL inserts any number of new resources, with their history rows and index
// rows, in one statement. Every row comes in column arrays zipped by unnest, and each
// index row names its resource, so that the SQL text is the same for one resource or
// fifty. The documents are parsed as JSONB once, in v, for both tables.
const insertManySQL = `WITH v AS MATERIALIZED (
  SELECT t, i, n, l, d, c::jsonb AS c
  FROM unnest($1::text[], $2::text[], $3::int8[], $4::timestamptz[], $5::bool[], $6::text[]) AS u(t, i, n, l, d, c)),
h AS (INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, content)
  SELECT * FROM v),
s AS (INSERT INTO search_string (resource_type, id, param, value, exact, grp)
  SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int4[])),
t AS (INSERT INTO search_token (resource_type, id, param, system, code, grp)
  SELECT * FROM unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::int4[])),
d AS (INSERT INTO search_date (resource_type, id, param, low, high, grp)
  SELECT * FROM unnest($19::text[], $20::text[], $21::text[], $22::timestamptz[], $23::timestamptz[], $24::int4[])),
n AS (INSERT INTO search_number (resource_type, id, param, value, system, code, grp)
  SELECT * FROM unnest($25::text[], $26::text[], $27::text[], $28::float8[], $29::text[], $30::text[], $31::int4[])),
r AS (INSERT INTO search_reference (resource_type, id, param, target_type, target_id, grp)
  SELECT * FROM unnest($32::text[], $33::text[], $34::text[], $35::text[], $36::text[], $37::int4[])),
x AS (INSERT INTO search_text (resource_type, id, narrative, content)
  SELECT u.t, u.i, ` + textVectors + ` FROM unnest($38::text[], $39::text[], $40::text[], $41::text[]) u(t, i, n, c))
INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
SELECT * FROM v`

// Batching settings. One statement at a time: what arrives while it runs is the next
// batch, whose size grows with the load. On two cores, client-credentials tokens at 16
// connections came to 3,086–3,241/s with one inserter (7.4 resources a statement),
// 2,308–2,943 with two, 2,057–2,604 with three, 1,616 with eight (BENCHMARKS.md).
const (
	maxBatch     = 64
	batchTimeout = 30 * time.Second
)

// errBatchFailed tells the writers of a failed batch of several to insert alone: the
// statement failed as a whole, and only one of them may be the cause.
var errBatchFailed = errors.New("postgres: batched insert failed")

// insert is one resource waiting for an inserter.
type insert struct {
	res  *resources.Resource
	idx  *resources.Index
	done chan error
}

// inserter inserts the new resources that concurrent requests create under fresh ids
// (see Store.write) several to a statement. Token issuance creates a Session per token,
// and a statement of six inserts costs PostgreSQL far more to start and commit than its
// rows cost to write: one statement for the rows that arrive together pays that once.
// A request that arrives alone is inserted at once.
type inserter struct {
	db    *sql.DB
	queue chan *insert // unbuffered: a handed-over insert is always taken up
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	// What the inserter has done: statements, resources, and batches that failed.
	statements, inserted, failed atomic.Int64
}

func newInserter(db *sql.DB) *inserter {
	b := &inserter{db: db, queue: make(chan *insert), stop: make(chan struct{})}
	b.wg.Add(1)
	go b.run()
	return b
}

// Insert inserts res with its index rows, alone or in a batch with others.
func (b *inserter) Insert(ctx context.Context, res *resources.Resource, idx *resources.Index) error {
	in := &insert{res: res, idx: idx, done: make(chan error, 1)}
	select {
	case b.queue <- in:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return sql.ErrConnDone
	}
	// Once handed over the insert is part of a statement that others share; it runs to
	// its end (bounded by batchTimeout) whatever becomes of this request.
	if err := <-in.done; !errors.Is(err, errBatchFailed) {
		return err
	}
	_, err := b.db.ExecContext(ctx, insertManySQL, insertArgs([]*insert{in})...)
	return err
}

// run takes an insert, and with it every other one waiting to be handed over (up to
// maxBatch), until Close.
func (b *inserter) run() {
	defer b.wg.Done()
	var batch []*insert
	for {
		var ok bool
		if batch, ok = sqlstore.NextBatch(b.queue, b.stop, maxBatch, batch); !ok {
			return
		}
		b.exec(batch)
	}
}

func (b *inserter) exec(batch []*insert) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	_, err := b.db.ExecContext(ctx, insertManySQL, insertArgs(batch)...)
	cancel()
	b.statements.Add(1)
	if err != nil && len(batch) > 1 {
		b.failed.Add(1)
		err = errBatchFailed
	} else if err == nil {
		b.inserted.Add(int64(len(batch)))
	}
	for _, in := range batch {
		in.done <- err
	}
}

// Close stops the inserter once its statement is done.
func (b *inserter) Close() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}

// insertArgs lays out the arguments of insertManySQL for batch.
func insertArgs(batch []*insert) []any {
	n := len(batch)
	types, ids, versions := make([]string, n), make([]string, n), make([]int64, n)
	updated, deleted, contents := make([]time.Time, n), make([]bool, n), make([]string, n)
	var a indexArrays
	for i, in := range batch {
		r := in.res
		types[i], ids[i], versions[i] = r.Type, r.ID, r.VersionID
		updated[i], deleted[i], contents[i] = r.LastUpdated, r.Deleted, string(r.Content)
		a.add(r.Type, r.ID, in.idx)
	}
	return []any{
		types, ids, versions, updated, deleted, contents,
		a.sType, a.sID, a.sParam, a.sValue, a.sExact, a.sGroup,
		a.tType, a.tID, a.tParam, a.tSystem, a.tCode, a.tGroup,
		a.dType, a.dID, a.dParam, a.dLow, a.dHigh, a.dGroup,
		a.nType, a.nID, a.nParam, a.nValue, a.nSystem, a.nCode, a.nGroup,
		a.rType, a.rID, a.rParam, a.rTargetType, a.rTargetID, a.rGroup,
		a.xType, a.xID, a.xNarrative, a.xContent,
	}
}

// indexArrays holds the index rows of several resources, a slice per column.
type indexArrays struct {
	sType, sID, sParam, sValue, sExact         []string
	tType, tID, tParam, tSystem, tCode         []string
	dType, dID, dParam                         []string
	dLow, dHigh                                []time.Time
	nType, nID, nParam, nSystem, nCode         []string
	nValue                                     []float64
	rType, rID, rParam, rTargetType, rTargetID []string
	// The group numbers of each table's rows (see resources.ComponentParam).
	sGroup, tGroup, dGroup, nGroup, rGroup []int32
	xType, xID, xNarrative, xContent       []string
}

func (a *indexArrays) add(typ, id string, idx *resources.Index) {
	for _, e := range idx.Strings {
		a.sType, a.sID = append(a.sType, typ), append(a.sID, id)
		a.sParam, a.sValue, a.sExact = append(a.sParam, e.Param), append(a.sValue, e.Value), append(a.sExact, e.Exact)
		a.sGroup = append(a.sGroup, int32(e.Group))
	}
	for _, e := range idx.Tokens {
		a.tType, a.tID = append(a.tType, typ), append(a.tID, id)
		a.tParam, a.tSystem, a.tCode = append(a.tParam, e.Param), append(a.tSystem, e.System), append(a.tCode, e.Code)
		a.tGroup = append(a.tGroup, int32(e.Group))
	}
	for _, e := range idx.Dates {
		a.dType, a.dID = append(a.dType, typ), append(a.dID, id)
		a.dParam, a.dLow, a.dHigh = append(a.dParam, e.Param), append(a.dLow, e.Low), append(a.dHigh, e.High)
		a.dGroup = append(a.dGroup, int32(e.Group))
	}
	for _, e := range idx.Numbers {
		a.nType, a.nID = append(a.nType, typ), append(a.nID, id)
		a.nParam, a.nValue = append(a.nParam, e.Param), append(a.nValue, e.Value)
		a.nSystem, a.nCode = append(a.nSystem, e.System), append(a.nCode, e.Code)
		a.nGroup = append(a.nGroup, int32(e.Group))
	}
	for _, e := range idx.References {
		a.rType, a.rID = append(a.rType, typ), append(a.rID, id)
		a.rParam, a.rTargetType, a.rTargetID = append(a.rParam, e.Param), append(a.rTargetType, e.TargetType), append(a.rTargetID, e.TargetID)
		a.rGroup = append(a.rGroup, int32(e.Group))
	}
	if t := idx.Text; t.Narrative != "" || t.Content != "" {
		a.xType, a.xID = append(a.xType, typ), append(a.xID, id)
		a.xNarrative, a.xContent = append(a.xNarrative, t.Narrative), append(a.xContent, t.Content)
	}
}
