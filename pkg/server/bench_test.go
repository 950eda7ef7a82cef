package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkRead measures GET /fhir/Patient/{id} through the whole handler stack (auth,
// negotiation, store, rendering, access log, metrics) without the network.
func BenchmarkRead(b *testing.B) { benchEachBackend(b, benchRead) }

func benchRead(b *testing.B) {
	e := newEnv(b)
	body := readNDJSON(b, "patients.ndjson", 1)[0]
	e.must(201, put("/Patient/bench", strings.Replace(string(body), `"id":"`, `"id":"bench","x":"`, 1)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/fhir/Patient/bench", nil)
			r.SetBasicAuth(adminID, adminToken)
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// BenchmarkCreate measures POST /fhir/Patient with a Synthea patient.
func BenchmarkCreate(b *testing.B) { benchEachBackend(b, benchCreate) }

func benchCreate(b *testing.B) {
	e := newEnv(b)
	body := string(readNDJSON(b, "patients.ndjson", 1)[0])
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/fhir/Patient", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/fhir+json")
			r.SetBasicAuth(adminID, adminToken)
			w := httptest.NewRecorder()
			e.srv.ServeHTTP(w, r)
			if w.Code != 201 {
				b.Fatal(fmt.Sprintf("status %d %s", w.Code, w.Body))
			}
		}
	})
}
