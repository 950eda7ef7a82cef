package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// Limiter slows repeated failures per key (a user, a client, a client address), so that a
// password or a client secret cannot be guessed at request speed (conformance T9, RFC 6749
// §4.3.2). It is safe for concurrent use. State is in memory and per process: with several
// instances a guesser gets each instance's allowance, which still keeps guessing far below
// request speed, and no shared store is written on every failed sign-in.
//
// A guess is made through Begin, which checks the keys and reserves the attempt in one
// step: until the attempt is resolved (Attempt.Fail, Succeed or Cancel) it counts as a
// failure. Checking first and counting after the slow password check would let a burst of
// parallel guesses all pass the check before the first of them is counted.
type Limiter struct {
	opt LimiterOptions

	mu   sync.Mutex
	keys map[string]*limitEntry
	// head is the entry whose last failure is the oldest, tail the newest: expired
	// entries are swept from the head, and when memory is full the head is evicted.
	head, tail *limitEntry
}

// limitEntry is the record of one key, linked in order of its last failure or attempt.
type limitEntry struct {
	key   string
	fails int
	// pending counts the attempts begun and not yet resolved.
	pending    int
	last       time.Time // the latest failure, or attempt begun
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
// or the real user could be kept out for as long as a guesser keeps knocking. A guess
// goes through Begin; Check is for skipping work that would be refused, and is the whole
// decision for an answer known without a check (see Begin).
func (l *Limiter) Check(keys ...string) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitLocked(keys, l.opt.Now())
}

// waitLocked is Check under l.mu.
func (l *Limiter) waitLocked(keys []string, now time.Time) (wait time.Duration, ok bool) {
	for _, k := range keys {
		e := l.keys[limiterKey(k)]
		if e == nil || l.forgotten(e, now) {
			continue
		}
		switch {
		case e.until.After(now):
			wait = max(wait, e.until.Sub(now))
		case e.pending > 0 && e.fails+e.pending > l.opt.Free:
			// Counting the attempts in flight as failures, the free ones are spent: one
			// attempt at a time past them, as if they were made one after another. The
			// wait is what follows if those in flight fail.
			wait = max(wait, l.waitAfter(e.fails+e.pending-l.opt.Free))
		}
	}
	return wait, wait <= 0
}

// Attempt is a guess that Begin allowed and reserved. Resolve it exactly once, with Fail,
// Succeed or Cancel; later calls do nothing. Deferring Cancel right after Begin makes sure
// an attempt that ends in an error or a panic does not hold its reservation.
type Attempt struct {
	l       *Limiter
	keys    []string
	entries []*limitEntry // the record each key had when the attempt began
	done    bool
}

// Begin checks keys and, when every one may try now, reserves an attempt on each of them
// in the same step: from then until it is resolved the attempt counts as a failure, so
// parallel attempts cannot share one check. Within the free allowance any number may be
// in flight; past it, one at a time. When a key must wait, Begin reserves nothing and
// returns ok false with the wait, as Check does.
//
// An answer known without a check (a client secret equal to one verified before) needs no
// attempt: Check, then answer. It is the same decision as Begin's, taken for a guess that
// is right, and a wrong guess is never compared with what is known without going through
// Begin.
func (l *Limiter) Begin(keys ...string) (a *Attempt, wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opt.Now()
	if wait, ok := l.waitLocked(keys, now); !ok {
		return nil, wait, false
	}
	l.sweep(now)
	a = &Attempt{l: l, keys: keys, entries: make([]*limitEntry, len(keys))}
	for i, k := range keys {
		e := l.entry(limiterKey(k), now)
		e.pending++
		e.last = now
		l.pushBack(e)
		a.entries[i] = e
	}
	return a, 0, true
}

// Fail resolves the attempt as a failure: it counts for each key as Limiter.Fail does.
func (a *Attempt) Fail() {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.done {
		return
	}
	a.done = true
	now := l.opt.Now()
	l.sweep(now)
	for i, k := range a.keys {
		k = limiterKey(k)
		if e := a.entries[i]; l.keys[k] == e {
			e.pending--
		}
		// A record dropped meanwhile (cleared by a success, or evicted) leaves this
		// failure to start a new one.
		l.failLocked(k, now)
	}
}

// Succeed resolves the attempt as a success: it no longer counts, and the keys named in
// reset are cleared as Limiter.Succeed clears them. The others keep their record: the
// caller passes the user or client, not the address (see Limiter.Succeed).
func (a *Attempt) Succeed(reset ...string) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.done {
		return
	}
	a.release()
	for _, k := range reset {
		if e := l.keys[limiterKey(k)]; e != nil {
			l.remove(e)
		}
	}
}

// Cancel resolves the attempt without counting it, for one that could not be checked (the
// store failed): it was no guess. Once the attempt is resolved it does nothing.
func (a *Attempt) Cancel() {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if !a.done {
		a.release()
	}
}

// release ends the attempt's reservations; a record left with nothing in it is dropped.
// The caller holds l.mu.
func (a *Attempt) release() {
	a.done = true
	l := a.l
	for i, k := range a.keys {
		e := a.entries[i]
		if l.keys[limiterKey(k)] != e {
			continue
		}
		e.pending--
		if e.pending == 0 && e.fails == 0 {
			l.remove(e)
		}
	}
}

// LimitedError is the answer to an attempt refused because its keys must wait: it was
// neither checked nor counted.
type LimitedError struct {
	Wait time.Duration
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many failed attempts; try again in %d seconds", e.Seconds())
}

// Seconds is the wait in whole seconds, rounded up and at least 1: the Retry-After value.
func (e *LimitedError) Seconds() int {
	return max(1, int((e.Wait+time.Second-1)/time.Second))
}

// Fail records a failure for each key. Past Free failures each further one makes the
// key wait, counted from this failure: Base, then twice as long each time, up to Max.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opt.Now()
	l.sweep(now)
	for _, k := range keys {
		l.failLocked(limiterKey(k), now)
	}
}

// failLocked counts a failure for k (already bounded by limiterKey).
func (l *Limiter) failLocked(k string, now time.Time) {
	e := l.entry(k, now)
	e.fails++
	e.last = now
	if n := e.fails - l.opt.Free; n > 0 {
		e.until = now.Add(l.waitAfter(n))
	}
	l.pushBack(e)
}

// entry returns k's record, unlinked from the list for the caller to push back: a new one
// when there is none, or when the one there was forgotten.
func (l *Limiter) entry(k string, now time.Time) *limitEntry {
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
		e.until = time.Time{}
		l.unlink(e)
	default:
		l.unlink(e)
	}
	return e
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

// forgotten reports whether e has had no failure and no attempt for Forget, and has none
// in flight.
func (l *Limiter) forgotten(e *limitEntry, now time.Time) bool {
	return e.pending == 0 && now.Sub(e.last) >= l.opt.Forget
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
