package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

const benchRows = 5000

var benchNames = []string{"smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez"}

// benchStore returns a store holding benchRows patients, each with a name, a gender and
// a birth date, and its URL.
func benchStore(b *testing.B) (*Store, string) {
	b.Helper()
	url := testdb.URL(b)
	s, err := Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	content := []byte(`{"resourceType":"Patient","id":"%s","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00.000Z"},` +
		`"name":[{"family":"%s","given":["Alex"]}],"gender":"female","birthDate":"1980-01-01",` +
		`"address":[{"line":["1 Main Street"],"city":"Springfield","postalCode":"12345"}]}`)
	for i := range benchRows {
		id := fmt.Sprintf("p%05d", i)
		name := fmt.Sprintf("%s%d", benchNames[i%len(benchNames)], i/len(benchNames))
		born := day(1950+i%50, time.Month(1+i%12), 1+i%28)
		put(b, s, "Patient", id, t0.Add(time.Duration(i)*time.Second), fmt.Sprintf(string(content), id, name), &resources.Index{
			Strings: []resources.StringEntry{{Param: "name", Value: name, Exact: name}},
			Tokens:  []resources.TokenEntry{{Param: "gender", System: genderSys, Code: []string{"female", "male"}[i%2]}},
			Dates:   []resources.DateEntry{{Param: "birthdate", Low: born, High: born.AddDate(0, 0, 1)}},
		})
	}
	// As autovacuum would have: the visibility map lets counts use index-only scans.
	if _, err := s.SQL().Exec("VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return s, url
}

func BenchmarkRead(b *testing.B) {
	s, url := benchStore(b)
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Read(ctx, "Patient", fmt.Sprintf("p%05d", rand.IntN(benchRows))); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The floor: one pgx connection, the same statement, no pool and no database/sql.
	b.Run("bare pgx", func(b *testing.B) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		b.ReportAllocs()
		for b.Loop() {
			r := resources.Resource{Type: "Patient", ID: fmt.Sprintf("p%05d", rand.IntN(benchRows))}
			var content []byte
			if err := conn.QueryRow(ctx, readSQL, r.Type, r.ID).Scan(&r.VersionID, &r.LastUpdated, &r.Deleted, &content); err != nil {
				b.Fatal(err)
			}
			r.Content = content
		}
	})
	b.Run("store parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Read(ctx, "Patient", fmt.Sprintf("p%05d", rand.IntN(benchRows))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkSearchString(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		q    resources.Query
	}{
		// About 110 matches of 5000: a page of 20 and the count.
		{"prefix", resources.Query{Clauses: []resources.Clause{cl(pName, "", str("smith"))}}},
		{"prefix sorted", resources.Query{Clauses: []resources.Clause{cl(pName, "", str("smith"))}, Sort: []resources.SortKey{{Param: pName}}}},
		{"exact", resources.Query{Clauses: []resources.Clause{cl(pName, "exact", str("brown42"))}}},
		{"contains", resources.Query{Clauses: []resources.Clause{cl(pName, "contains", str("ith1"))}}},
		{"prefix and token", resources.Query{Clauses: []resources.Clause{cl(pName, "", str("jo")), cl(pGender, "", code("male"))}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				q := bc.q
				q.Type, q.Count = "Patient", 20
				if _, err := s.Search(ctx, &q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrite measures an update: the lock, the resource, history and index rows.
func BenchmarkWrite(b *testing.B) {
	s, _ := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		id := fmt.Sprintf("p%05d", rand.IntN(benchRows))
		put(b, s, "Patient", id, time.Now().UTC(), `{"resourceType":"Patient"}`, &resources.Index{
			Strings: []resources.StringEntry{{Param: "name", Value: "x", Exact: "X"}, {Param: "given", Value: "y", Exact: "Y"}},
			Tokens:  []resources.TokenEntry{{Param: "gender", System: genderSys, Code: "male"}},
			Dates:   []resources.DateEntry{{Param: "birthdate", Low: t0, High: t0.AddDate(0, 0, 1)}},
		})
	}
}
