package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API is a client of fhirbox's HTTP API: as the admin, with Basic credentials (Do),
// or as any other caller (Send).
type API struct {
	base         string
	user, secret string
	client       *http.Client // -client net/http
	wire         *wire        // -client wire
	// adminGet and adminSend are the admin's headers without and with a body, built
	// once: the wire client only reads them.
	adminGet, adminSend http.Header
}

// Clients are the values of -client.
var Clients = []string{"wire", "net/http"}

// NewAPI returns a client of the server at base that keeps up to conns connections
// open, so that every closed-loop worker reuses its own connection instead of paying
// for a TCP handshake per request. kind is one of Clients.
func NewAPI(base, user, secret string, conns int, kind string) (*API, error) {
	a := &API{base: strings.TrimRight(base, "/"), user: user, secret: secret}
	const timeout = 60 * time.Second
	switch kind {
	case "wire":
		w, err := newWire(a.base, 2*conns, timeout)
		if err != nil {
			return nil, err
		}
		a.wire = w
	case "net/http":
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 2 * conns
		tr.MaxIdleConnsPerHost = 2 * conns
		a.client = &http.Client{Transport: tr, Timeout: timeout}
	default:
		return nil, fmt.Errorf("unknown client %q: one of %s", kind, strings.Join(Clients, ", "))
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, secret)
	a.adminGet = http.Header{"Authorization": r.Header["Authorization"], "Accept": {"application/fhir+json"}}
	a.adminSend = a.adminGet.Clone()
	a.adminSend.Set("Content-Type", "application/fhir+json")
	return a, nil
}

// StatusError is a response outside 2xx.
type StatusError struct {
	Method, Route string
	Status        int
	Body          string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Route, e.Status, e.Body)
}

// Do sends one request with the admin credentials and reads the whole response. route
// names the request in errors without its varying parts ("/Patient/{id}"), so that
// errors group by kind. keep asks for the response body; otherwise it is read and
// dropped, which the connection needs to be reused.
func (a *API) Do(ctx context.Context, method, path, route string, body []byte, keep bool) (int, []byte, error) {
	h := a.adminGet
	if body != nil {
		h = a.adminSend
	}
	return a.send(ctx, method, path, route, h, body, keep)
}

// Request is a request sent as another caller than the admin: its Header carries the
// caller's own Authorization, if any, and every other header the request needs.
type Request struct {
	Method, Path string
	// Route names the request in errors, as in Do.
	Route  string
	Header http.Header
	Body   []byte
	// Keep asks for the response body, as in Do.
	Keep bool
}

// Send sends r without the admin credentials, over the same pooled connections as Do.
func (a *API) Send(ctx context.Context, r Request) (int, []byte, error) {
	return a.send(ctx, r.Method, r.Path, r.Route, r.Header, r.Body, r.Keep)
}

// send sends one request with header, which it only reads (workers share it), and
// reads the whole response.
func (a *API) send(ctx context.Context, method, path, route string, header http.Header, body []byte, keep bool) (int, []byte, error) {
	var (
		st  int
		out []byte
		err error
	)
	if a.wire != nil {
		st, out, err = a.wire.do(ctx, method, path, header, body, keep)
	} else {
		st, out, err = a.netHTTP(ctx, method, path, header, body, keep)
	}
	if err != nil {
		return st, nil, err
	}
	if st < 200 || st > 299 {
		return st, out, &StatusError{method, route, st, snippet(out)}
	}
	return st, out, nil
}

func (a *API) netHTTP(ctx context.Context, method, path string, header http.Header, body []byte, keep bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	// The values are shared with other workers' requests: the transport only reads
	// them, so a copy per request would buy nothing.
	maps.Copy(req.Header, header)
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out []byte
	if keep || resp.StatusCode < 200 || resp.StatusCode > 299 {
		out, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, out, nil
}

// snippet shortens a response body for an error message.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// BundleSize returns the total of a search Bundle, or its number of entries when it
// has no total.
func BundleSize(b []byte) (int, error) {
	var bundle struct {
		Total *int              `json:"total"`
		Entry []json.RawMessage `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return 0, err
	}
	if bundle.Total != nil {
		return *bundle.Total, nil
	}
	return len(bundle.Entry), nil
}

// RSS returns the server's resident memory in bytes from its /metrics.
func (a *API) RSS(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, body, err := a.Do(ctx, http.MethodGet, "/metrics", "/metrics", nil, true)
	if err != nil {
		return 0, err
	}
	return parseRSS(body)
}

// parseRSS finds process_resident_memory_bytes in Prometheus text.
func parseRSS(metrics []byte) (float64, error) {
	for line := range strings.Lines(string(metrics)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "process_resident_memory_bytes" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no process_resident_memory_bytes")
}
