package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

func newEcho(t *testing.T) (*echo.Echo, *bytes.Buffer, http.Handler) {
	t.Helper()
	var logs bytes.Buffer
	reg := NewRegistry()
	e := echo.New()
	m := NewMetrics(reg)
	e.Use(RequestID(), AccessLog(NewLogger(&logs, false, slog.LevelInfo)), m.Middleware())
	e.GET("/Patient/:id", func(c echo.Context) error {
		return c.String(http.StatusOK, RequestIDFrom(c.Request().Context()))
	})
	e.GET("/boom", func(c echo.Context) error { return errors.New("boom") })
	e.GET("/teapot", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusTeapot, "short and stout")
	})
	return e, &logs, Handler(reg)
}

func do(h http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestRequestID(t *testing.T) {
	e, _, _ := newEcho(t)
	tests := []struct {
		name, given string
		kept        bool
	}{
		{"generated when absent", "", false},
		{"caller's plain id kept", "abc-123.x:y_z", true},
		{"header injection replaced", "abc\r\nX-Evil: 1", false},
		{"spaces replaced", "a b", false},
		{"overlong replaced", strings.Repeat("a", maxRequestIDLen+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec *httptest.ResponseRecorder
			if tt.given == "" {
				rec = do(e, "/Patient/1")
			} else {
				rec = do(e, "/Patient/1", echo.HeaderXRequestID, tt.given)
			}
			got := rec.Header().Get(echo.HeaderXRequestID)
			if got == "" || rec.Body.String() != got {
				t.Fatalf("header %q, context %q: want the same non-empty id", got, rec.Body.String())
			}
			if (got == tt.given) != tt.kept {
				t.Fatalf("id %q for given %q: kept=%v, want %v", got, tt.given, got == tt.given, tt.kept)
			}
		})
	}
}

func TestAccessLogOmitsQueryAndRecordsStatus(t *testing.T) {
	e, logs, _ := newEcho(t)
	tests := []struct {
		target string
		status int
		route  string
	}{
		{"/Patient/42?name=Smith&birthdate=1970-01-01", 200, "/Patient/:id"},
		{"/boom", 500, "/boom"},
		{"/teapot", 418, "/teapot"},
		{"/nowhere?secret=1", 404, "unmatched"},
	}
	for _, tt := range tests {
		logs.Reset()
		rec := do(e, tt.target)
		if rec.Code != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.target, rec.Code, tt.status)
		}
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("%s: log is not one JSON line: %v\n%s", tt.target, err, logs.String())
		}
		if int(line["status"].(float64)) != tt.status || line["route"] != tt.route {
			t.Errorf("%s: logged status %v route %v, want %d %s", tt.target, line["status"], line["route"], tt.status, tt.route)
		}
		if strings.Contains(logs.String(), "Smith") || strings.Contains(logs.String(), "secret") {
			t.Errorf("%s: query string leaked into the log: %s", tt.target, logs.String())
		}
		if line["request_id"] != rec.Header().Get(echo.HeaderXRequestID) {
			t.Errorf("%s: logged request_id %v, response has %q", tt.target, line["request_id"], rec.Header().Get(echo.HeaderXRequestID))
		}
	}
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	e, _, metrics := newEcho(t)
	for _, p := range []string{"/Patient/1", "/Patient/2", "/boom", "/x/y/z", "/a/b"} {
		do(e, p)
	}
	body := do(metrics, "/metrics").Body.String()
	for _, want := range []string{
		`fhirbox_http_requests_total{code="200",method="GET",route="/Patient/:id"} 2`,
		`fhirbox_http_requests_total{code="500",method="GET",route="/boom"} 1`,
		`fhirbox_http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		"process_resident_memory_bytes",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `route="/Patient/1"`) {
		t.Error("a raw path became a label value")
	}
}

func TestNewLoggerFormat(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, true, slog.LevelInfo).Info("hello", "k", "v")
	if !strings.Contains(buf.String(), "msg=hello k=v") {
		t.Errorf("terminal logger wrote %q, want text", buf.String())
	}
	buf.Reset()
	NewLogger(&buf, false, slog.LevelWarn).Info("hidden")
	if buf.Len() != 0 {
		t.Errorf("info logged at warn level: %q", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file was taken for a terminal")
	}
}

func TestBufferedWriter(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	read := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	b := NewBufferedWriter(w, 64, 20*time.Millisecond)
	fmt.Fprintln(b, "one")
	if read() != "" {
		t.Error("a short line was written through at once")
	}
	deadline := time.Now().Add(2 * time.Second)
	for read() != "one\n" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if read() != "one\n" {
		t.Fatalf("the periodic flush did not happen: %q", read())
	}
	fmt.Fprint(b, strings.Repeat("x", 100)) // larger than the buffer: written through
	if !strings.HasSuffix(read(), strings.Repeat("x", 100)) {
		t.Error("a write larger than the buffer was held back")
	}
	fmt.Fprintln(b, "last")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(read(), "last\n") {
		t.Errorf("Close did not flush: %q", read())
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
