package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

func TestSigningKeysEmpty(t *testing.T) {
	s := newStore(t)
	keys, err := s.SigningKeys(context.Background())
	if err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys on a new database = %v, %v; want none", keys, err)
	}
}

func TestAddSigningKeyIfNone(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	first := SigningKey{KID: "kid-1", PrivatePEM: []byte("pem-1"), Created: t0}
	keys, err := s.AddSigningKeyIfNone(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != "kid-1" || string(keys[0].PrivatePEM) != "pem-1" || !keys[0].Created.Equal(t0) {
		t.Fatalf("after the first add: %+v", keys)
	}
	// A key exists: the second is not stored, and the first comes back.
	keys, err = s.AddSigningKeyIfNone(ctx, SigningKey{KID: "kid-2", PrivatePEM: []byte("pem-2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != "kid-1" {
		t.Fatalf("after the second add: %+v", keys)
	}
	listed, err := s.SigningKeys(ctx)
	if err != nil || len(listed) != 1 || listed[0].KID != "kid-1" {
		t.Fatalf("SigningKeys = %+v, %v", listed, err)
	}
	if _, err := s.AddSigningKeyIfNone(ctx, SigningKey{KID: "", PrivatePEM: []byte("x")}); err == nil {
		t.Error("a key without kid was accepted")
	}
}

// Created zero means the database's clock.
func TestAddSigningKeyIfNoneDatabaseClock(t *testing.T) {
	s := newStore(t)
	before := time.Now().Add(-time.Minute)
	keys, err := s.AddSigningKeyIfNone(context.Background(), SigningKey{KID: "k", PrivatePEM: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Created.Before(before) || keys[0].Created.Location() != time.UTC {
		t.Fatalf("keys = %+v", keys)
	}
}

// Oldest first, whatever the insertion order (rotation adds keys directly).
func TestSigningKeysOrder(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i, d := range []time.Duration{2 * time.Hour, 0, time.Hour} {
		if _, err := s.SQL().ExecContext(ctx, `INSERT INTO signing_key (kid, private_pem, created_at) VALUES ($1, 'p', $2)`,
			fmt.Sprintf("k%d", i), t0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.KID)
	}
	if fmt.Sprint(got) != "[k1 k2 k0]" {
		t.Fatalf("order %v, want [k1 k2 k0]", got)
	}
}

// Two processes starting at once on an empty database end up with one key, and both
// are told which.
func TestAddSigningKeyIfNoneConcurrent(t *testing.T) {
	ctx := context.Background()
	url := testdb.URL(t)
	const n = 8
	stores := make([]*Store, n)
	for i := range stores {
		s, err := Open(ctx, url, WithMaxConns(2))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	for round := range 5 {
		if _, err := stores[0].SQL().ExecContext(ctx, `DELETE FROM signing_key`); err != nil {
			t.Fatal(err)
		}
		results := make([][]SigningKey, n)
		errs := make([]error, n)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range n {
			wg.Go(func() {
				start.Wait()
				results[i], errs[i] = stores[i].AddSigningKeyIfNone(ctx, SigningKey{KID: fmt.Sprintf("kid-%d", i), PrivatePEM: []byte("pem")})
			})
		}
		start.Done()
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d, process %d: %v", round, i, errs[i])
			}
			if len(results[i]) != 1 || results[i][0].KID != results[0][0].KID {
				t.Fatalf("round %d, process %d got %+v, process 0 %+v", round, i, results[i], results[0])
			}
		}
		keys, err := stores[0].SigningKeys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("round %d: stored %+v, %v; want exactly one key", round, keys, err)
		}
	}
}
