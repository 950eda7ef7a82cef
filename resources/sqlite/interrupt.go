package sqlite

import (
	"context"
	"reflect"
	"sync"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// reading runs fn on a read connection, under the statement timeout, and interrupts
// the statement it runs when ctx ends: the caller went away, or the timeout passed.
//
// The driver interrupts a statement only while it prepares it; a search does its work
// when its first row is stepped, later, so a search whose client had gone would run to
// its end. reading calls sqlite3_interrupt itself for as long as fn runs.
//
// Inside a Transaction fn runs on the transaction instead, which alone sees its writes.
func (s *Store) reading(ctx context.Context, fn func(context.Context, sqlstore.Querier) error) error {
	if tx := dialect.Tx(ctx); tx != nil {
		if err := flush(ctx, tx); err != nil {
			return dialect.WriteError(ctx, err)
		}
		return fn(ctx, tx)
	}
	ctx, cancel := sqlstore.Bounded(ctx, s.timeout)
	defer cancel()
	conn, err := s.read.Conn(ctx)
	if err != nil {
		return translate(ctx, err)
	}
	defer conn.Close()
	var interrupt func()
	_ = conn.Raw(func(dc any) error {
		interrupt = interrupter(dc)
		return nil
	})
	var mu sync.Mutex
	running := true
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		// After fn has returned, the connection may be another request's.
		if running && interrupt != nil {
			interrupt()
		}
	})
	err = fn(ctx, conn)
	mu.Lock()
	running = false
	mu.Unlock()
	stop()
	if err != nil && ctx.Err() != nil {
		// Interrupted: the timeout's error, or the caller's cancellation.
		return translate(ctx, err)
	}
	return err
}

// interrupter returns a function that interrupts the statement running on the driver
// connection dc (a connection of github.com/glebarez/go-sqlite), or nil when dc is not
// one whose handle can be found. The driver keeps the handle in an unexported field;
// TestReadingInterruptsARunawayStatement fails if an upgrade of the driver moves it.
// sqlite3_interrupt may be called from any goroutine; an interrupt that arrives when
// no statement runs is cleared when the next one starts.
func interrupter(dc any) func() {
	v := reflect.ValueOf(dc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("db")
	if !f.IsValid() || f.Kind() != reflect.Uintptr || f.Uint() == 0 {
		return nil
	}
	db := uintptr(f.Uint())
	return func() {
		tls := libc.NewTLS()
		defer tls.Close()
		sqlite3.Xsqlite3_interrupt(tls, db)
	}
}
