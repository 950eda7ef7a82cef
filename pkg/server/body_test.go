package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
)

// countingBody is a request body that counts the bytes read from it: a Patient of size
// bytes, padded with whitespace inside its object.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func newCountingBody(size int) *countingBody {
	head := `{"resourceType":"Patient","active":true`
	pad := size - len(head) - 1
	if pad < 0 {
		pad = 0
	}
	return &countingBody{r: io.MultiReader(strings.NewReader(head), io.LimitReader(spaces{}, int64(pad)), strings.NewReader("}"))}
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// spaces is an endless reader of JSON whitespace.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// The caller is identified and the policies decide before a body is read: a caller that
// no policy could allow has nothing of its body read, whether anonymous or not; only a
// policy that looks at the body makes the server read it before deciding.
func TestBodyReadOnlyAfterDecision(t *testing.T) { forEachBackend(t, testBodyReadOnlyAfterDecision) }

func testBodyReadOnlyAfterDecision(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/nobody", `{"secret":"nobody-secret","grant_types":["basic"]}`))
	e.must(201, put("/Client/uri", `{"secret":"uri-secret","grant_types":["basic"]}`))
	e.must(201, put("/Client/body", `{"secret":"body-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/uri-writes", `
engine: matcho
link: [{resourceType: Client, id: uri}]
matcho: {request-method: post, uri: /fhir/Patient}
`))
	e.must(201, yamlPut("/AccessPolicy/body-writes", `
engine: matcho
link: [{resourceType: Client, id: body}]
matcho: {request-method: post, body: {resourceType: Patient, active: true}}
`))
	const size = 1 << 20
	tests := []struct {
		name     string
		client   string
		path     string
		ctype    string
		status   int
		wantRead bool
	}{
		{"anonymous write", "", "/fhir/Patient", "application/json", 401, false},
		{"anonymous POST _search", "", "/fhir/Patient/_search", "application/x-www-form-urlencoded", 401, false},
		{"client without a policy", "nobody", "/fhir/Patient", "application/json", 403, false},
		{"policy on the uri, other type", "uri", "/fhir/Observation", "application/json", 403, false},
		{"policy on the uri", "uri", "/fhir/Patient", "application/json", 201, true},
		{"policy on the body", "body", "/fhir/Patient", "application/json", 201, true},
	}
	for _, tt := range tests {
		body := newCountingBody(size)
		hr := httptest.NewRequest(http.MethodPost, tt.path, body)
		hr.Header.Set("Content-Type", tt.ctype)
		if tt.client != "" {
			hr.SetBasicAuth(tt.client, tt.client+"-secret")
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, hr)
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d: %.300s", tt.name, rec.Code, tt.status, rec.Body.String())
		}
		if n := body.read.Load(); (n > 0) != tt.wantRead {
			t.Errorf("%s: %d bytes of the body read, want read=%v", tt.name, n, tt.wantRead)
		}
	}
}

// Twenty anonymous 10 MB POSTs at once, over TCP, cost the server next to nothing: no
// body is read or decoded before the 401. (Before, they took the server from 120 MB to
// 6.27 GB.) The bound is generous; the figure is logged.
func TestAnonymousBodiesCostNoMemory(t *testing.T) {
	forEachBackend(t, testAnonymousBodiesCostNoMemory)
}

func testAnonymousBodiesCostNoMemory(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	const n, size = 20, 10 << 20
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/fhir/Patient", newCountingBody(size))
			req.ContentLength = size
			req.Header.Set("Content-Type", "application/fhir+json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				// The server may close the connection on the unread body once it has
				// answered; the status was then still sent, but the client may miss it.
				statuses[i] = -1
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("%d anonymous %d MB POSTs in %v: heap in use grew by at most %.1f MB", n, size>>20, time.Since(start).Round(time.Millisecond), float64(growth)/(1<<20))
	for i, s := range statuses {
		if s != 401 && s != -1 {
			t.Errorf("request %d: status %d, want 401", i, s)
		}
	}
	if growth > 100<<20 {
		t.Errorf("heap in use grew by %d MB under anonymous 10 MB POSTs; want well under 100 MB", growth>>20)
	}
}

func withBodyMemory(n int64) envOption { return func(c *app.Config) { c.Server.BodyMemory = n } }

// Bodies take turns within the body-memory budget: while one body that fills the budget
// is being read, another write waits, and goes through once the first is done.
func TestBodyMemoryBudget(t *testing.T) { forEachBackend(t, testBodyMemoryBudget) }

func testBodyMemoryBudget(t *testing.T) {
	const limit = 64 << 10
	e := newEnv(t, withMaxBody(limit), withBodyMemory(limit))
	pr, pw := io.Pipe()
	first := httptest.NewRequest(http.MethodPost, "/fhir/Patient", pr)
	first.ContentLength = -1 // unknown: counted at the whole limit
	first.Header.Set("Content-Type", "application/json")
	first.SetBasicAuth(adminID, adminToken)
	firstDone := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, first)
		firstDone <- rec.Code
	}()
	// The first body has begun: the budget is taken.
	if _, err := pw.Write([]byte(`{"resourceType":"Patient",`)); err != nil {
		t.Fatal(err)
	}
	secondDone := make(chan int)
	go func() {
		r := e.do(post("/fhir/Patient", `{"resourceType":"Patient"}`))
		secondDone <- r.status
	}()
	select {
	case s := <-secondDone:
		t.Fatalf("the second write (status %d) did not wait for the budget", s)
	case <-time.After(200 * time.Millisecond):
	}
	pw.Write([]byte(`"active":true}`))
	pw.Close()
	if s := <-firstDone; s != 201 {
		t.Errorf("first write: status %d", s)
	}
	if s := <-secondDone; s != 201 {
		t.Errorf("second write: status %d", s)
	}
}
