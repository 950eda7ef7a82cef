package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newTestAPI returns the default client (wire) of the server at url.
func newTestAPI(t testing.TB, url string, conns int) *API {
	t.Helper()
	a, err := NewAPI(url, "admin", "admin-secret", conns, "wire")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// echoServer answers what it was sent, in the ways a server may frame a response.
func echoServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reply := fmt.Sprintf("%s %s|%s|%s|%s|%s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"),
			r.Header.Get("Accept"), r.Header.Get("Content-Type"), body)
		switch r.URL.Query().Get("frame") {
		case "chunked":
			reply += strings.Repeat(".", 5000) // over net/http's 2 KB: sent chunked
		case "close":
			w.Header().Set("Connection", "close")
		case "status":
			w.WriteHeader(http.StatusConflict)
		case "length":
			w.Header().Set("Content-Length", fmt.Sprint(len(reply)))
		}
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Both clients send the same requests and read every framing of a response alike.
func TestClients(t *testing.T) {
	srv := echoServer(t)
	basic := "Basic " + "YWRtaW46YWRtaW4tc2VjcmV0" // admin:admin-secret
	for _, kind := range Clients {
		t.Run(kind, func(t *testing.T) {
			a, err := NewAPI(srv.URL+"/", "admin", "admin-secret", 2, kind)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tests := []struct {
				name, method, path string
				body               string
				keep               bool
				status             int
				want               string
			}{
				{"get with length", "GET", "/Patient/1?frame=length", "", true, 200, "GET /Patient/1?frame=length|" + basic + "|application/fhir+json||"},
				{"get chunked", "GET", "/Patient/1?frame=chunked", "", true, 200, "GET /Patient/1?frame=chunked|" + basic + "|application/fhir+json||" + strings.Repeat(".", 5000)},
				{"put with body", "PUT", "/Patient/1", `{"a":1}`, true, 200, "PUT /Patient/1|" + basic + "|application/fhir+json|application/fhir+json|{\"a\":1}"},
				{"empty body", "POST", "/Patient", "", true, 200, "POST /Patient|" + basic + "|application/fhir+json|application/fhir+json|"},
				{"connection close", "GET", "/x?frame=close", "", true, 200, "GET /x?frame=close|" + basic + "|application/fhir+json||"},
				{"after close", "GET", "/y", "", true, 200, "GET /y|" + basic + "|application/fhir+json||"},
				{"dropped body", "GET", "/z?frame=chunked", "", false, 200, ""},
				{"error status", "GET", "/w?frame=status", "", false, 409, "GET /w?frame=status|" + basic + "|application/fhir+json||"},
			}
			for _, tt := range tests {
				var body []byte
				if tt.method != "GET" {
					body = []byte(tt.body)
				}
				st, out, err := a.Do(ctx, tt.method, tt.path, tt.path, body, tt.keep)
				var se *StatusError
				if tt.status >= 300 {
					if !errors.As(err, &se) || se.Status != tt.status || string(out) != tt.want {
						t.Errorf("%s: %d %q %v, want a %d StatusError with the body", tt.name, st, out, err, tt.status)
					}
					continue
				}
				if err != nil || st != tt.status || string(out) != tt.want {
					t.Errorf("%s: %d %q %v\nwant %d %q", tt.name, st, out, err, tt.status, tt.want)
				}
			}
			// Send carries the caller's own headers instead of the admin's.
			st, out, err := a.Send(ctx, Request{Method: "GET", Path: "/s?frame=length", Route: "/s", Keep: true,
				Header: http.Header{"Authorization": {"Bearer tok"}}})
			if err != nil || st != 200 || string(out) != "GET /s?frame=length|Bearer tok|||" {
				t.Errorf("Send: %d %q %v", st, out, err)
			}
		})
	}
}

// The wire client keeps one connection per worker: a closed loop of requests opens no
// more connections than it has workers.
func TestWireReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 3000))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	a := newTestAPI(t, srv.URL, 3)
	done := make(chan error)
	for range 3 {
		go func() {
			for range 50 {
				if _, _, err := a.Do(context.Background(), "GET", "/r", "/r", nil, false); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n > 3 {
		t.Errorf("150 requests of 3 workers opened %d connections", n)
	}
}

// A connection the server closed while idle is replaced for a GET, without an error;
// a POST on it is not repeated, since the server may have acted on it.
func TestWireStaleConnection(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			posts.Add(1)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	a := newTestAPI(t, srv.URL, 1)
	ctx := context.Background()
	if _, _, err := a.Do(ctx, "GET", "/a", "/a", nil, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server closes the idle connection
	if _, out, err := a.Do(ctx, "GET", "/b", "/b", nil, true); err != nil || string(out) != "ok" {
		t.Fatalf("GET on a connection the server had closed: %q %v", out, err)
	}
	time.Sleep(200 * time.Millisecond)
	_, _, err := a.Do(ctx, "POST", "/c", "/c", []byte("x"), false)
	if err == nil && posts.Load() != 1 || err != nil && posts.Load() != 0 {
		t.Errorf("POST on a stale connection: err %v, the server saw %d POSTs", err, posts.Load())
	}
}

// A request whose context ends stops waiting and reports the context's error.
func TestWireContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	a := newTestAPI(t, srv.URL, 1)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := a.Do(ctx, "GET", "/slow", "/slow", nil, false)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled after %s: %v, want context.Canceled at once", time.Since(start), err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := a.Do(ctx, "GET", "/slow", "/slow", nil, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("past the deadline: %v, want context.DeadlineExceeded", err)
	}
}

func TestWireRefusesOtherURLs(t *testing.T) {
	for _, u := range []string{"https://example.org", "http://user:pw@host", "http://host/?q=1", "host:80", "http://"} {
		if _, err := NewAPI(u, "a", "b", 1, "wire"); err == nil {
			t.Errorf("NewAPI(%q, wire) accepted", u)
		}
	}
	if _, err := NewAPI("http://h", "a", "b", 1, "curl"); err == nil {
		t.Error("an unknown client was accepted")
	}
}
