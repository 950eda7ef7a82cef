package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
	"github.com/fhirbox/fhirbox/resources/storetest"
)

// benchStore returns a store holding the patients of storetest.Fill, and its URL.
func benchStore(b *testing.B) (*Store, string) {
	b.Helper()
	url := testdb.URL(b)
	s, err := Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storetest.Fill(b, s)
	// As autovacuum would have: the visibility map lets counts use index-only scans.
	if _, err := s.SQL().Exec("VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return s, url
}

func BenchmarkRead(b *testing.B) {
	s, url := benchStore(b)
	storetest.BenchmarkRead(b, s)
	// The floor: one pgx connection, the same statement, no pool and no database/sql.
	b.Run("bare pgx", func(b *testing.B) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		b.ReportAllocs()
		for b.Loop() {
			r := resources.Resource{Type: "Patient", ID: storetest.BenchID(rand.IntN(storetest.BenchRows))}
			var content []byte
			if err := conn.QueryRow(ctx, sqlstore.ReadSQL, r.Type, r.ID).Scan(&r.VersionID, &r.LastUpdated, &r.Deleted, &content); err != nil {
				b.Fatal(err)
			}
			r.Content = content
		}
	})
}

func BenchmarkSearchString(b *testing.B) {
	s, _ := benchStore(b)
	storetest.BenchmarkSearchString(b, s)
}

// BenchmarkWrite measures an update: the lock, the resource, history and index rows.
func BenchmarkWrite(b *testing.B) {
	s, _ := benchStore(b)
	storetest.BenchmarkWrite(b, s)
}

// BenchmarkSearchScale compares the searches of fhirbench on few and many patients.
func BenchmarkSearchScale(b *testing.B) {
	for _, n := range storetest.ScaleSizes() {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, err := Open(context.Background(), testdb.URL(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			storetest.FillScale(b, s, n)
			if _, err := s.SQL().Exec("VACUUM ANALYZE"); err != nil {
				b.Fatal(err)
			}
			storetest.BenchmarkSearchScale(b, s, n)
		})
	}
}
