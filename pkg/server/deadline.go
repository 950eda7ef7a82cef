package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"
)

// Defaults of Config.TransferTimeout and Config.TransferMinRate.
const (
	DefaultTransferTimeout = 10 * time.Second
	DefaultTransferMinRate = 32 << 10 // bytes per second
)

// errBodyTimeout marks a request body that did not arrive within its deadline.
var errBodyTimeout = errors.New("the request body did not arrive in time")

// transferDeadline is how long moving n bytes may take: the fixed allowance plus what n
// needs at the minimum rate.
func (s *Server) transferDeadline(start time.Time, n int64) time.Time {
	return start.Add(s.cfg.TransferTimeout + time.Duration(n)*time.Second/time.Duration(s.cfg.TransferMinRate))
}

// bodyDeadline bounds the time a request body may take to arrive: TransferTimeout,
// extended by each byte received at TransferMinRate. So a large upload at an ordinary
// rate goes through while a trickle is cut off, and the connection it held is freed.
// It is a per-request read deadline rather than http.Server.ReadTimeout because that
// one counts from the start of the request whatever its size, and its expiry cancels
// the context of a handler still at work after the body was read.
func (s *Server) bodyDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rc := http.NewResponseController(c.Response())
		// A deadline from the previous response on this connection must not cut this one.
		_ = rc.SetWriteDeadline(time.Time{})
		r := c.Request()
		if r.Body != nil && r.Body != http.NoBody {
			start := time.Now()
			if err := rc.SetReadDeadline(s.transferDeadline(start, 0)); err == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, s: s, start: start}
			}
		}
		return next(c)
	}
}

// deadlineBody moves the read deadline on as bytes arrive and lifts it at the end of
// the body, so that it does not cut the connection's next request or the server's
// background read that notices a client going away.
type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	s     *Server
	start time.Time
	got   int64
	set   time.Time // the deadline last set
	done  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.got += int64(n)
	switch {
	case err == io.EOF:
		if !b.done {
			b.done = true
			_ = b.rc.SetReadDeadline(time.Time{})
		}
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		err = errBodyTimeout
	case n > 0:
		// Moving a deadline costs a timer update: once a second of credit is enough.
		if d := b.s.transferDeadline(b.start, b.got); d.Sub(b.set) >= time.Second {
			b.set = d
			_ = b.rc.SetReadDeadline(d)
		}
	}
	return n, err
}

// setWriteDeadline bounds the time writing an n-byte answer may take, counted from now:
// it starts when the answer is ready, so a long search is not cut, only a reader too
// slow to take what it asked for.
func (s *Server) setWriteDeadline(c echo.Context, n int) {
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(s.transferDeadline(time.Now(), int64(n)))
}
