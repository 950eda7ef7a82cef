package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/storetest"
)

// newStore opens a store on a fresh database. A small pool keeps many parallel tests
// within the server's connection limit.
func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithMaxConns(4)}, opts...)
	s, err := Open(context.Background(), testdb.URL(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backend runs the store suite on PostgreSQL.
var backend = storetest.Backend{
	Open: func(t testing.TB) storetest.Store { return newStore(t) },
	Time: func(t time.Time) any { return t },
	RefuseIndexValue: func(t testing.TB, s storetest.Store, v string) {
		t.Helper()
		lit := "'" + strings.ReplaceAll(v, "'", "''") + "'"
		for _, q := range []string{
			`ALTER TABLE search_string ADD CONSTRAINT refused CHECK (value <> ` + lit + `)`,
			`ALTER TABLE search_token ADD CONSTRAINT refused CHECK (code <> ` + lit + `)`,
		} {
			if _, err := s.SQL().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	},
}

func TestStore(t *testing.T) { storetest.Run(t, backend) }

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://postgres:secret@127.0.0.1:1/nothing?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\t") || strings.Contains(msg, "secret") || !strings.Contains(msg, "cannot connect") {
		t.Errorf("error is not one clear line without the password: %q", msg)
	}
}

func TestOpenInvalidURL(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), "postgres://postgres@127.0.0.1:notaport/x")
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open with a bad URL: %v", err)
	}
}

// Several servers may start at once on one database: the migrations must not race.
func TestOpenConcurrentMigrations(t *testing.T) {
	t.Parallel()
	url := testdb.URL(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(context.Background(), url, WithMaxConns(2))
			if err == nil {
				err = s.Ping(context.Background())
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// PostgreSQL refuses NUL in text: such a write fails as a whole, with an internal error
// (the engine's validation is what should keep NUL out).
func TestWriteWithNULFails(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.Write(context.Background(), "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "Patient", ID: "p1", VersionID: 1, LastUpdated: time.Now(), Content: []byte(`{}`)},
			&resources.Index{Strings: []resources.StringEntry{{Param: "name", Value: "bad\x00", Exact: "bad"}}}, nil
	})
	if code := resources.ErrorCode(err); code != resources.CodeInternal {
		t.Fatalf("error %v (code %q), want an internal error", err, code)
	}
	if _, err := s.Read(context.Background(), "Patient", "p1"); resources.ErrorCode(err) != resources.CodeNotFound {
		t.Fatalf("Read after the failed write: %v", err)
	}
}

// TestReadAfterBackendKilled: reads go to pgx past database/sql (read.go) and are
// retried once when their connection broke: a read right after the backend of the
// only pooled connection was terminated succeeds on a new one.
func TestReadAfterBackendKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, WithMaxConns(1))
	_, err := s.Write(ctx, "Patient", "p1", func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "Patient", ID: "p1", VersionID: 1, LastUpdated: time.Now(),
			Content: []byte(`{"resourceType":"Patient","id":"p1"}`)}, &resources.Index{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := s.SQL().QueryRow(`SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, testdb.URL(t), WithMaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.SQL().Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func() (*resources.Resource, error){
		func() (*resources.Resource, error) { return s.Read(ctx, "Patient", "p1") },
		func() (*resources.Resource, error) { return s.VRead(ctx, "Patient", "p1", 1) },
	} {
		res, err := read()
		if err != nil {
			t.Fatalf("read after the backend was terminated: %v", err)
		}
		if !strings.Contains(string(res.Content), `"p1"`) {
			t.Errorf("content %s", res.Content)
		}
	}
	var newPID int
	if err := s.SQL().QueryRow(`SELECT pg_backend_pid()`).Scan(&newPID); err != nil {
		t.Fatal(err)
	}
	if newPID == pid {
		t.Errorf("the pool still uses the terminated backend %d", pid)
	}
}

// TestReadCancelled: a read whose context ends reports the context's error, not an
// internal one, and leaves the pool usable.
func TestReadCancelled(t *testing.T) {
	t.Parallel()
	s := newStore(t, WithMaxConns(1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.Read(context.Background(), "Patient", "p1"); resources.ErrorCode(err) != resources.CodeNotFound {
		t.Fatalf("Read after a cancelled one: %v, want not found", err)
	}
}
