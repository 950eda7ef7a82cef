package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// BenchRows is the number of patients Fill writes.
const BenchRows = 5000

var benchNames = []string{"smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez", "martinez"}

// BenchID is the id of the ith patient Fill writes.
func BenchID(i int) string { return fmt.Sprintf("p%05d", i) }

// Fill writes BenchRows patients to s, each with a name, a gender and a birth date.
func Fill(b testing.TB, s resources.Store) {
	b.Helper()
	content := []byte(`{"resourceType":"Patient","id":"%s","meta":{"versionId":"1","lastUpdated":"2024-01-01T00:00:00.000Z"},` +
		`"name":[{"family":"%s","given":["Alex"]}],"gender":"female","birthDate":"1980-01-01",` +
		`"address":[{"line":["1 Main Street"],"city":"Springfield","postalCode":"12345"}]}`)
	for i := range BenchRows {
		id := BenchID(i)
		name := fmt.Sprintf("%s%d", benchNames[i%len(benchNames)], i/len(benchNames))
		born := day(1950+i%50, time.Month(1+i%12), 1+i%28)
		put(b, s, "Patient", id, t0.Add(time.Duration(i)*time.Second), fmt.Sprintf(string(content), id, name), &resources.Index{
			Strings: []resources.StringEntry{{Param: "name", Value: name, Exact: name}},
			Tokens:  []resources.TokenEntry{{Param: "gender", System: genderSys, Code: []string{"female", "male"}[i%2]}},
			Dates:   []resources.DateEntry{{Param: "birthdate", Low: born, High: born.AddDate(0, 0, 1)}},
		})
	}
}

// BenchmarkRead measures reads by id of the patients of Fill, one at a time and in
// parallel.
func BenchmarkRead(b *testing.B, s resources.Store) {
	ctx := context.Background()
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Read(ctx, "Patient", BenchID(rand.IntN(BenchRows))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Read(ctx, "Patient", BenchID(rand.IntN(BenchRows))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkSearchString measures string searches over the patients of Fill.
func BenchmarkSearchString(b *testing.B, s resources.Store) {
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

// BenchmarkWrite measures an update of a patient of Fill: the resource, its history
// row and its index rows.
func BenchmarkWrite(b *testing.B, s resources.Store) {
	b.ReportAllocs()
	for b.Loop() {
		put(b, s, "Patient", BenchID(rand.IntN(BenchRows)), time.Now().UTC(), `{"resourceType":"Patient"}`, &resources.Index{
			Strings: []resources.StringEntry{{Param: "name", Value: "x", Exact: "X"}, {Param: "given", Value: "y", Exact: "Y"}},
			Tokens:  []resources.TokenEntry{{Param: "gender", System: genderSys, Code: "male"}},
			Dates:   []resources.DateEntry{{Param: "birthdate", Low: t0, High: t0.AddDate(0, 0, 1)}},
		})
	}
}

// ScaleSizes are the numbers of patients BenchmarkSearchScale compares: 1,000 and
// 100,000 (only 10,000 instead unless FHIRBOX_BENCH_LARGE is set, since writing 100,000
// patients one transaction at a time takes minutes).
func ScaleSizes() []int {
	if os.Getenv("FHIRBOX_BENCH_LARGE") != "" {
		return []int{1000, 100000}
	}
	return []int{1000, 10000}
}

// scalePatient is the index of patient i of FillScale: a family name of its own (a
// common name and a copy number, as fhirbench derives them), a gender, a birth date
// among 100 years of days, and an identifier.
func scalePatient(i int) (family string, idx *resources.Index) {
	family = fmt.Sprintf("%s%06d", benchNames[i%len(benchNames)], i)
	born := day(1920, 1, 1).AddDate(0, 0, (i*7919)%36500)
	return family, &resources.Index{
		Strings: []resources.StringEntry{{Param: "family", Value: family, Exact: family}, {Param: "given", Value: "alex", Exact: "Alex"}},
		Tokens: []resources.TokenEntry{
			{Param: "gender", System: genderSys, Code: []string{"female", "male"}[i%2]},
			{Param: "identifier", System: "urn:scale", Code: fmt.Sprintf("id-%d", i)},
		},
		Dates: []resources.DateEntry{{Param: "birthdate", Low: born, High: born.AddDate(0, 0, 1)}},
	}
}

// FillScale writes n patients for BenchmarkSearchScale.
func FillScale(b testing.TB, s resources.Store, n int) {
	b.Helper()
	for i := range n {
		family, idx := scalePatient(i)
		put(b, s, "Patient", fmt.Sprintf("s%06d", i), t0.Add(time.Duration(i)*time.Second),
			fmt.Sprintf(`{"resourceType":"Patient","id":"s%06d","name":[{"family":%q,"given":["Alex"]}]}`, i, family), idx)
	}
}

// BenchmarkSearchScale measures the searches of fhirbench on the n patients of
// FillScale: each matches a few patients whatever n is, so its time should not grow
// with n.
func BenchmarkSearchScale(b *testing.B, s resources.Store, n int) {
	ctx := context.Background()
	pFamily := &resources.SearchParam{Name: "family", Type: resources.TypeString}
	pIdent := &resources.SearchParam{Name: "identifier", Type: resources.TypeToken}
	for _, bc := range []struct {
		name  string
		query func(i int) resources.Query
	}{
		{"family", func(i int) resources.Query {
			family, _ := scalePatient(i)
			return resources.Query{Clauses: []resources.Clause{cl(pFamily, "", str(family))}}
		}},
		{"identifier", func(i int) resources.Query {
			return resources.Query{Clauses: []resources.Clause{cl(pIdent, "", sysCode("urn:scale", fmt.Sprintf("id-%d", i)))}}
		}},
		{"birthdate", func(i int) resources.Query {
			_, idx := scalePatient(i)
			born := idx.Dates[0].Low
			return resources.Query{Clauses: []resources.Clause{cl(pBirthdate, "", date("", born, born.AddDate(0, 0, 1)))}}
		}},
		{"family and gender", func(i int) resources.Query {
			family, idx := scalePatient(i)
			return resources.Query{Clauses: []resources.Clause{cl(pFamily, "", str(family)), cl(pGender, "", code(idx.Tokens[0].Code))}}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				q := bc.query(rand.IntN(n))
				q.Type, q.Count = "Patient", 10
				res, err := s.Search(ctx, &q)
				if err != nil {
					b.Fatal(err)
				}
				if res.Total < 1 {
					b.Fatalf("%s: no match", bc.name)
				}
			}
		})
	}
}
