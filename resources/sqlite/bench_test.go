package sqlite

import (
	"fmt"
	"testing"

	"github.com/fhirbox/fhirbox/resources/storetest"
)

// benchStore returns a store holding the patients of storetest.Fill.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s := newStore(b)
	storetest.Fill(b, s)
	return s
}

func BenchmarkRead(b *testing.B) { storetest.BenchmarkRead(b, benchStore(b)) }

func BenchmarkSearchString(b *testing.B) { storetest.BenchmarkSearchString(b, benchStore(b)) }

// BenchmarkWrite measures an update: the resource, history and index rows, and the
// commit's fsync.
func BenchmarkWrite(b *testing.B) { storetest.BenchmarkWrite(b, benchStore(b)) }

// BenchmarkSearchScale compares the searches of fhirbench on few and many patients.
func BenchmarkSearchScale(b *testing.B) {
	for _, n := range storetest.ScaleSizes() {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := newStore(b)
			storetest.FillScale(b, s, n)
			storetest.BenchmarkSearchScale(b, s, n)
		})
	}
}
