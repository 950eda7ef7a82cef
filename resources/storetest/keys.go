package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
)

func testSigningKeysEmpty(t *testing.T, be *Backend) {
	s := be.Open(t)
	keys, err := s.SigningKeys(context.Background())
	if err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys on a new database = %v, %v; want none", keys, err)
	}
}

func testAddSigningKeyIfNone(t *testing.T, be *Backend) {
	ctx := context.Background()
	s := be.Open(t)
	first := signingkey.Key{KID: "kid-1", PrivatePEM: []byte("pem-1"), Created: t0}
	keys, err := s.AddSigningKeyIfNone(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != "kid-1" || string(keys[0].PrivatePEM) != "pem-1" || !keys[0].Created.Equal(t0) {
		t.Fatalf("after the first add: %+v", keys)
	}
	// A key exists: the second is not stored, and the first comes back.
	keys, err = s.AddSigningKeyIfNone(ctx, signingkey.Key{KID: "kid-2", PrivatePEM: []byte("pem-2")})
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
	if _, err := s.AddSigningKeyIfNone(ctx, signingkey.Key{KID: "", PrivatePEM: []byte("x")}); err == nil {
		t.Error("a key without kid was accepted")
	}
}

// Created zero means the time of the insert.
func testAddSigningKeyIfNoneClock(t *testing.T, be *Backend) {
	s := be.Open(t)
	before := time.Now().Add(-time.Minute)
	keys, err := s.AddSigningKeyIfNone(context.Background(), signingkey.Key{KID: "k", PrivatePEM: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Created.Before(before) || keys[0].Created.Location() != time.UTC {
		t.Fatalf("keys = %+v", keys)
	}
}

// Oldest first, whatever the insertion order (rotation adds keys directly).
func testSigningKeysOrder(t *testing.T, be *Backend) {
	ctx := context.Background()
	s := be.Open(t)
	for i, d := range []time.Duration{2 * time.Hour, 0, time.Hour} {
		if _, err := s.SQL().ExecContext(ctx, `INSERT INTO signing_key (kid, private_pem, created_at) VALUES ($1, 'p', $2)`,
			fmt.Sprintf("k%d", i), be.Time(t0.Add(d))); err != nil {
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

// Concurrent first starts of one store end up with one key, and every caller is told
// which.
func testAddSigningKeyIfNoneConcurrent(t *testing.T, be *Backend) {
	ctx := context.Background()
	s := be.Open(t)
	const n = 8
	results := make([][]signingkey.Key, n)
	errs := make([]error, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Go(func() {
			start.Wait()
			results[i], errs[i] = s.AddSigningKeyIfNone(ctx, signingkey.Key{KID: fmt.Sprintf("kid-%d", i), PrivatePEM: []byte("pem")})
		})
	}
	start.Done()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if len(results[i]) != 1 || results[i][0].KID != results[0][0].KID {
			t.Fatalf("caller %d got %+v, caller 0 %+v", i, results[i], results[0])
		}
	}
}

// ReplaceSigningKeyPEM changes a key's private key only where it is still the one the
// caller read (instances encrypting the same key at once: one wins).
func testReplaceSigningKeyPEM(t *testing.T, be *Backend) {
	ctx := context.Background()
	s := be.Open(t)
	if _, err := s.AddSigningKeyIfNone(ctx, signingkey.Key{KID: "k", PrivatePEM: []byte("plain"), Created: t0}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kid, old, new string
		want          bool
		stored        string
	}{
		{"k", "other", "sealed-1", false, "plain"},
		{"nope", "plain", "sealed-1", false, "plain"},
		{"k", "plain", "sealed-1", true, "sealed-1"},
		{"k", "plain", "sealed-2", false, "sealed-1"}, // the loser of a race
	} {
		ok, err := s.ReplaceSigningKeyPEM(ctx, tc.kid, []byte(tc.old), []byte(tc.new))
		if err != nil || ok != tc.want {
			t.Errorf("Replace(%s, %s, %s) = %v, %v; want %v", tc.kid, tc.old, tc.new, ok, err, tc.want)
		}
		keys, err := s.SigningKeys(ctx)
		if err != nil || len(keys) != 1 || string(keys[0].PrivatePEM) != tc.stored || !keys[0].Created.Equal(t0) {
			t.Fatalf("after Replace(%s, %s, %s): %+v, %v; want %s", tc.kid, tc.old, tc.new, keys, err, tc.stored)
		}
	}
	if _, err := s.ReplaceSigningKeyPEM(ctx, "k", []byte("sealed-1"), nil); err == nil {
		t.Error("an empty private key was accepted")
	}
}
