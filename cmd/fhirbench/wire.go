package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

// wire is fhirbench's own HTTP/1.1 client: a kept-alive connection per worker, the
// request written straight to it, the response read by net/http's parser on the same
// goroutine. net/http's Transport runs a reader and a writer goroutine per connection
// and hands every request and response between them and the caller; on fhirbench's
// two-core machine, sharing the cores with fhirbox and its database, that cost about
// 80 µs of CPU per request, 2.5× what this client spends, and every microsecond the load
// generator spends is one the server under test does not get, while the ceiling's
// client (pgx) pays nothing like it. -client net/http measures with the Transport.
type wire struct {
	addr, host, prefix string
	timeout            time.Duration
	idle               chan *wireConn
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// newWire returns a client of the server at base (http://host[:port][/prefix]) that
// keeps up to conns idle connections.
func newWire(base string, conns int, timeout time.Duration) (*wire, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: the wire client speaks plain http://host[:port][/path] only; use -client net/http", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &wire{addr: addr, host: u.Host, prefix: u.EscapedPath(), timeout: timeout, idle: make(chan *wireConn, conns)}, nil
}

// do sends one request and reads the whole response, returning its body when keep
// is set or the status is not 2xx (a body read and dropped otherwise).
func (w *wire) do(ctx context.Context, method, path string, header http.Header, body []byte, keep bool) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := w.conn(ctx)
		if err != nil {
			return 0, nil, err
		}
		st, out, err := w.roundTrip(ctx, c, method, path, header, body, keep)
		// The server may have closed a connection while it sat idle; a request that got
		// no answer on such a connection is sent once more on a new one, as net/http's
		// Transport does, unless repeating it could do something twice.
		if err != nil && reused && attempt == 0 && staleConn(err) && method != http.MethodPost && method != http.MethodPatch {
			continue
		}
		return st, out, err
	}
}

func (w *wire) conn(ctx context.Context) (c *wireConn, reused bool, err error) {
	select {
	case c := <-w.idle:
		return c, true, nil
	default:
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return nil, false, err
	}
	return &wireConn{c: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

func (w *wire) release(c *wireConn) {
	select {
	case w.idle <- c:
	default:
		c.c.Close()
	}
}

func (w *wire) roundTrip(ctx context.Context, c *wireConn, method, path string, header http.Header, body []byte, keep bool) (int, []byte, error) {
	ok := false
	defer func() {
		if ok {
			w.release(c)
		} else {
			c.c.Close()
		}
	}()
	deadline := time.Now().Add(w.timeout)
	if d, has := ctx.Deadline(); has && d.Before(deadline) {
		deadline = d
	}
	if err := c.c.SetDeadline(deadline); err != nil {
		return 0, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Now()) })
	defer stop()

	bw := c.bw
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(w.prefix)
	bw.WriteString(path)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(w.host)
	bw.WriteString("\r\n")
	for k, vs := range header {
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if body != nil {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.Itoa(len(body)))
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	bw.Write(body)
	if err := bw.Flush(); err != nil {
		return 0, nil, w.err(ctx, err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return 0, nil, w.err(ctx, err)
	}
	success := resp.StatusCode >= 200 && resp.StatusCode < 300
	var out []byte
	if keep || !success {
		out, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, nil, w.err(ctx, err)
	}
	ok = !resp.Close
	return resp.StatusCode, out, nil
}

// err reports the context's end rather than the deadline it set on the connection,
// which may pass a moment before the context notices its own.
func (w *wire) err(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return err
}

// staleConn reports the errors of a connection the server had already closed.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
