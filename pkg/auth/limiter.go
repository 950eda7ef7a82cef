package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// Limiter defaults.
const (
	defaultLimiterFree    = 5
	defaultLimiterBase    = time.Second
	defaultLimiterMax     = 5 * time.Minute
	defaultLimiterForget  = 15 * time.Minute
	defaultLimiterMaxKeys = 100_000
	// maxLimiterKeyLen: longer keys are kept as their SHA-256, so that an attacker
	// sending huge usernames cannot make the bounded number of entries take unbounded
	// memory.
	maxLimiterKeyLen = 64
)

// LimiterOptions configures a Limiter; zero fields take the defaults.
type LimiterOptions struct {
	// Free is how many failures a key may have before any wait: 5 by default, so that a
	// person mistyping a password is never slowed down. A negative value allows none.
	Free int
	// Base is the wait after the first failure past Free (1 s by default); each further
	// failure doubles it.
	Base time.Duration
	// Max caps the wait (5 min by default): a guesser is held to a few attempts an hour,
	// while the real user, whose name the guesser fails against, waits minutes, not days.
	Max time.Duration
	// Forget is how long after its last failure a key is forgotten, its count reset (15
	// min by default). It is raised to Max when shorter, so a wait is never cut short.
	Forget time.Duration
	// MaxKeys bounds how many keys are remembered (100,000 by default), so that an attack
	// from many addresses or against many usernames cannot exhaust memory.
	MaxKeys int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Limiter slows repeated failures per key (a username, a client address), so that a
// password cannot be guessed at request speed (CONFORMANCE T9, RFC 6749 §4.3.2). It is
// safe for concurrent use. State is in memory and per process: with several instances a
// guesser gets each instance's allowance, which still keeps guessing far below request
// speed, and no shared store is written on every failed sign-in.
type Limiter struct {
	opt LimiterOptions

	mu   sync.Mutex
	keys map[string]*limitEntry
	// head is the entry whose last failure is the oldest, tail the newest: expired
	// entries are swept from the head, and when memory is full the head is evicted.
	head, tail *limitEntry
}

// limitEntry is the record of one key, linked in order of its last failure.
type limitEntry struct {
	key        string
	fails      int
	last       time.Time // the latest failure
	until      time.Time // no try before this
	prev, next *limitEntry
}

// NewLimiter returns a Limiter with opt, defaults filled in.
func NewLimiter(opt LimiterOptions) *Limiter {
	switch {
	case opt.Free == 0:
		opt.Free = defaultLimiterFree
	case opt.Free < 0:
		opt.Free = 0
	}
	if opt.Base <= 0 {
		opt.Base = defaultLimiterBase
	}
	if opt.Max <= 0 {
		opt.Max = defaultLimiterMax
	}
	opt.Max = max(opt.Max, opt.Base)
	if opt.Forget <= 0 {
		opt.Forget = defaultLimiterForget
	}
	opt.Forget = max(opt.Forget, opt.Max)
	if opt.MaxKeys <= 0 {
		opt.MaxKeys = defaultLimiterMaxKeys
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Limiter{opt: opt, keys: map[string]*limitEntry{}}
}

// Check reports whether every key may try now; if not, wait is how long until all of
// them may (the longest of their waits), for a Retry-After. It records nothing: a
// refused attempt never reaches the password check, so it must not count as a failure,
// or the real user could be kept out for as long as a guesser keeps knocking.
func (l *Limiter) Check(keys ...string) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opt.Now()
	for _, k := range keys {
		e := l.keys[limiterKey(k)]
		if e == nil || l.forgotten(e, now) {
			continue
		}
		wait = max(wait, e.until.Sub(now))
	}
	return wait, wait <= 0
}

// Fail records a failure for each key. Past Free failures each further one makes the
// key wait, counted from this failure: Base, then twice as long each time, up to Max.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opt.Now()
	l.sweep(now)
	for _, k := range keys {
		k = limiterKey(k)
		e := l.keys[k]
		switch {
		case e == nil:
			if len(l.keys) >= l.opt.MaxKeys {
				// Full of live records: drop the one idle longest. Evicting a record an
				// attacker is still using would take MaxKeys fresh failures, each a full
				// password check, to win back one guess.
				l.remove(l.head)
			}
			e = &limitEntry{key: k}
			l.keys[k] = e
		case l.forgotten(e, now):
			// Left by sweep only when the clock stepped back and broke the list's order.
			e.fails = 0
			l.unlink(e)
		default:
			l.unlink(e)
		}
		e.fails++
		e.last = now
		if n := e.fails - l.opt.Free; n > 0 {
			e.until = now.Add(l.waitAfter(n))
		}
		l.pushBack(e)
	}
}

// Succeed clears the keys, ending their back-off. Callers pass the username only, not
// the address: an attacker who owns one account could otherwise clear the back-off of
// the address they guess from by signing into their own account between guesses. The
// real user, who signs in from that address too, is let in by their own key being
// cleared and waits at most Max for the address.
func (l *Limiter) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e := l.keys[limiterKey(k)]; e != nil {
			l.remove(e)
		}
	}
}

// waitAfter is the wait after the n-th failure past Free (n ≥ 1).
func (l *Limiter) waitAfter(n int) time.Duration {
	d := l.opt.Base
	for i := 1; i < n && d < l.opt.Max; i++ {
		d *= 2 // d < Max here, so doubling cannot overflow before the cap
	}
	return min(d, l.opt.Max)
}

// forgotten reports whether e has had no failure for Forget.
func (l *Limiter) forgotten(e *limitEntry, now time.Time) bool {
	return now.Sub(e.last) >= l.opt.Forget
}

// sweep drops forgotten entries from the oldest on; each entry is dropped once, so the
// cost spreads over the failures that created them.
func (l *Limiter) sweep(now time.Time) {
	for l.head != nil && l.forgotten(l.head, now) {
		l.remove(l.head)
	}
}

func (l *Limiter) remove(e *limitEntry) {
	l.unlink(e)
	delete(l.keys, e.key)
}

func (l *Limiter) unlink(e *limitEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *Limiter) pushBack(e *limitEntry) {
	e.prev = l.tail
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// limiterKey bounds the memory of one key.
func limiterKey(k string) string {
	if len(k) <= maxLimiterKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	// Longer than maxLimiterKeyLen, so it never equals a key kept as is.
	return "sha256:" + hex.EncodeToString(sum[:])
}
