package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// Defaults of the caller share (Config.CallerShare, Config.CallerWait).
const (
	// DefaultCallerShare is the share when the wiring does not size it from the pool:
	// half of PostgreSQL's default pool of 20.
	DefaultCallerShare = 10
	// DefaultCallerWait is how long a request over its caller's share waits for a turn.
	DefaultCallerWait = 5 * time.Second
	// shareRetryAfter is the Retry-After of a request turned away.
	shareRetryAfter = time.Second
)

// callerShare bounds the requests that one caller has in flight at once, so that one
// caller cannot hold every connection of the database pool: a flood of expensive
// searches by one client would otherwise leave every other caller waiting for a
// connection, /health included. A request over the share waits up to CallerWait for
// one of its caller's own requests to finish, then is answered 429 with Retry-After.
//
// The caller is the user a token acts for, else the authenticated client, else (the
// anonymous caller) the peer's address. /health is never counted: it has a connection
// of its own. Nor is the token endpoint: its database work is a point read or two and
// one insert that the PostgreSQL store batches with the others waiting (one connection
// for all), so it cannot hold the pool; guessing there is bounded by the limiter, and
// keying it by address (it authenticates clients itself, after this runs) would cap a
// busy backend's token requests at the share and shrink those batches (measured: 12 %
// fewer client-credentials tokens a second with 16 connections). Introspection is
// left out for the same reasons: a resource server asks from one address for all its
// callers, and an access token's look-up is the bearer cache's, with at most a point
// read or two on a miss.
//
// It runs after authorize, which puts the identity in the context; requests refused
// there never count.
func (s *Server) callerShare() echo.MiddlewareFunc {
	limit, wait := s.cfg.CallerShare, s.cfg.CallerWait
	if limit == 0 {
		limit = DefaultCallerShare
	}
	if wait <= 0 {
		wait = DefaultCallerWait
	}
	if limit < 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	sh := &shares{limit: limit, wait: wait, callers: map[string]*callerSlots{}}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.URL.Path == "/health" || r.URL.Path == "/auth/token" || r.URL.Path == auth.IntrospectionPath {
				return next(c)
			}
			key, who := callerKey(r)
			release, err := sh.acquire(r.Context(), key, who)
			if err != nil {
				if strings.HasPrefix(r.URL.Path, "/auth/") {
					return s.oauthError(c, err)
				}
				return err
			}
			defer release()
			return next(c)
		}
	}
}

// callerKey names the caller of r for the share, and describes it for messages.
func callerKey(r *http.Request) (key, who string) {
	id := auth.FromContext(r.Context())
	switch {
	case id.UserID != "":
		return "user\x00" + id.UserID, id.String()
	case id.ClientID != "":
		return "client\x00" + id.ClientID, id.String()
	}
	ip := remoteIP(r)
	return "addr\x00" + ip, "the address " + ip
}

// shares counts the requests in flight per caller.
type shares struct {
	limit int
	wait  time.Duration

	mu      sync.Mutex
	callers map[string]*callerSlots // only callers with requests in flight or waiting
}

type callerSlots struct {
	sem  chan struct{} // one token per request in flight
	refs int           // requests in flight or waiting, under shares.mu
}

// acquire takes a turn for key, waiting up to sh.wait; release gives it back.
func (sh *shares) acquire(ctx context.Context, key, who string) (release func(), err error) {
	sh.mu.Lock()
	cs := sh.callers[key]
	if cs == nil {
		cs = &callerSlots{sem: make(chan struct{}, sh.limit)}
		sh.callers[key] = cs
	}
	cs.refs++
	sh.mu.Unlock()
	leave := func() {
		sh.mu.Lock()
		if cs.refs--; cs.refs == 0 {
			delete(sh.callers, key)
		}
		sh.mu.Unlock()
	}
	release = func() {
		<-cs.sem
		leave()
	}
	select {
	case cs.sem <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(sh.wait)
	defer t.Stop()
	select {
	case cs.sem <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	case <-t.C:
		leave()
		return nil, resources.WithRetryAfter(codeThrottled, shareRetryAfter, nil,
			"%s already has %d requests in flight, the most one caller may have at once; this one waited %s for one of them to finish",
			who, sh.limit, sh.wait)
	}
}
