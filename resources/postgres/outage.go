package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fhirbox/fhirbox/resources"
)

// Back-off of the connection attempts while PostgreSQL is unreachable: the first retry
// after minBackoff, then twice the wait each time up to maxBackoff, which also bounds how
// long after PostgreSQL is back the store notices.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// outageLogInterval is how often an outage under way is logged again.
	outageLogInterval = 10 * time.Second
)

// breaker keeps the store from dialling PostgreSQL for every request while it cannot be
// reached: after a failed connection attempt, attempts fail at once until the back-off
// window has passed; then one attempt (by whoever comes first: a request, the change
// feed) is let through, and its result opens or closes the way. It also logs the
// outage: one line when it starts, a summary every outageLogInterval while it lasts,
// one when it ends, instead of a line per request.
type breaker struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	down    bool          // an outage is under way
	since   time.Time     // when it began
	backoff time.Duration // the current window
	until   time.Time     // no attempt before
	trying  bool          // an attempt after the window is under way
	refused int64         // requests failed since the last line
	total   int64         // requests failed during the outage
	logged  time.Time     // the last line
}

func newBreaker(log *slog.Logger) *breaker {
	if log == nil {
		log = slog.Default()
	}
	return &breaker{log: log, now: time.Now}
}

// errUnreachable is the error of an attempt refused by the breaker; RetryAfter is what
// is left of the window.
type errUnreachable struct{ wait time.Duration }

func (e errUnreachable) Error() string {
	return "postgres: the database is unreachable; the next connection attempt is in " + e.wait.Round(time.Millisecond).String()
}

func (e errUnreachable) RetryAfter() time.Duration { return e.wait }

// allow reports whether a connection attempt may be made now: (true, true) when it is
// the one attempt after a window, whose outcome must be reported (success, failure or
// abandon); an error when it may not.
func (b *breaker) allow() (trial bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down {
		return false, nil
	}
	now := b.now()
	if b.trying || now.Before(b.until) {
		b.refused++
		b.total++
		b.summary(now)
		return false, errUnreachable{wait: max(b.until.Sub(now), minBackoff)}
	}
	b.trying = true
	return true, nil
}

// success reports a connection made.
func (b *breaker) success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.trying = false
	if !b.down {
		return
	}
	b.log.Warn("database reachable again", "outage", b.now().Sub(b.since).Round(time.Millisecond).String(),
		"failed_requests", b.total)
	b.down, b.backoff, b.until, b.refused, b.total = false, 0, time.Time{}, 0, 0
}

// failure reports a connection attempt that failed.
func (b *breaker) failure(trial bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	switch {
	case !b.down:
		b.down, b.since, b.backoff, b.logged = true, now, minBackoff, now
		b.total, b.refused = 1, 0
		b.log.Error("database unreachable: requests are answered 503 until it is back; this is logged again every "+outageLogInterval.String()+" while it lasts",
			"err", connError(err), "retry_in", b.backoff.String())
	case trial:
		b.trying = false
		b.backoff = min(2*b.backoff, maxBackoff)
		b.refused++
		b.total++
		b.summary(now)
	default:
		// An attempt that began before the outage was known.
		b.refused++
		b.total++
		return
	}
	// A little jitter keeps the instances of a cluster from dialling in step; the
	// window stays within maxBackoff, which bounds Retry-After and the time to notice
	// that the database is back.
	b.until = now.Add(min(time.Duration(float64(b.backoff)*(0.8+0.4*rand.Float64())), maxBackoff))
}

// abandon reports an attempt given up by its caller (its context ended): no verdict.
func (b *breaker) abandon(trial bool) {
	if !trial {
		return
	}
	b.mu.Lock()
	b.trying = false
	b.mu.Unlock()
}

// summary logs the outage under way if outageLogInterval has passed since the last line.
func (b *breaker) summary(now time.Time) {
	if now.Sub(b.logged) < outageLogInterval {
		return
	}
	b.log.Warn("database still unreachable", "for", now.Sub(b.since).Round(time.Second).String(),
		"failed_requests", b.refused, "retry_in", max(b.until.Sub(now), 0).Round(time.Millisecond).String())
	b.logged, b.refused = now, 0
}

// connector dials through the breaker: database/sql asks it for every new connection of
// the pool.
type connector struct {
	driver.Connector
	b *breaker
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	trial, err := c.b.allow()
	if err != nil {
		return nil, err
	}
	conn, err := c.Connector.Connect(ctx)
	switch {
	case err == nil:
		c.b.success()
	case ctx.Err() != nil:
		c.b.abandon(trial)
	default:
		c.b.failure(trial, err)
	}
	return conn, err
}

// unreachable reports whether err says the database could not be reached or the
// connection to it broke, as opposed to an error of the statement.
func unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// connection_exception, admin_shutdown, crash_shutdown, cannot_connect_now.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ue errUnreachable
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) ||
		strings.Contains(err.Error(), "conn closed")
}

// unavailable is the engine's error for a request that failed because the database is
// unreachable: 503 with Retry-After.
func unavailable(err error) error {
	wait := time.Second
	var ue errUnreachable
	if errors.As(err, &ue) {
		wait = ue.wait
	}
	return resources.WithRetryAfter(resources.CodeUnavailable, wait, err,
		"the database is unavailable; try again shortly")
}
