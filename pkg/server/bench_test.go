package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRead measures GET /fhir/Patient/{id} through the whole handler stack (auth,
// negotiation, store, rendering, access log, metrics) without the network. Its time
// per read is mostly the database's answer; cpu-us/op is what fhirbox spends, the
// figure that decides how many reads two cores serve.
func BenchmarkRead(b *testing.B) { benchEachBackend(b, benchRead) }

func benchRead(b *testing.B) {
	e := newEnv(b)
	body := readNDJSON(b, "patients.ndjson", 1)[0]
	e.must(201, put("/Patient/bench", strings.Replace(string(body), `"id":"`, `"id":"bench","x":"`, 1)))
	b.ReportAllocs()
	b.SetParallelism(8) // 16 requests in flight on two cores, as fhirbench sends them
	defer reportCPU(b)()
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

// reportCPU starts counting the process's CPU time and returns the function that
// reports it per op. On SQLite the database's own work is in the process too.
func reportCPU(b *testing.B) func() {
	b.ResetTimer()
	start := cpuTime()
	return func() {
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-us/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
