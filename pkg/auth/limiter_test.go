package auth

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// limiterClock is a settable clock for the limiter tests.
type limiterClock struct {
	mu sync.Mutex
	t  time.Time
}

func newLimiterClock() *limiterClock {
	return &limiterClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *limiterClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *limiterClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestLimiter(opt LimiterOptions) (*Limiter, *limiterClock) {
	c := newLimiterClock()
	opt.Now = c.now
	return NewLimiter(opt), c
}

func limiterMustWait(t *testing.T, l *Limiter, want time.Duration, keys ...string) {
	t.Helper()
	wait, ok := l.Check(keys...)
	if want == 0 {
		if !ok || wait != 0 {
			t.Fatalf("Check(%v) = %v, %v; want allowed", keys, wait, ok)
		}
		return
	}
	if ok || wait != want {
		t.Fatalf("Check(%v) = %v, %v; want a wait of %v", keys, wait, ok, want)
	}
}

// limiterCheckList verifies that the map and the age-ordered list hold the same entries, in
// order of last failure.
func limiterCheckList(t *testing.T, l *Limiter) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	var prev *limitEntry
	for e := l.head; e != nil; e = e.next {
		if e.prev != prev || l.keys[e.key] != e {
			t.Fatalf("list broken at %q", e.key)
		}
		if prev != nil && e.last.Before(prev.last) {
			t.Fatalf("list out of order at %q", e.key)
		}
		prev = e
		n++
	}
	if prev != l.tail || n != len(l.keys) {
		t.Fatalf("list has %d entries, map %d", n, len(l.keys))
	}
}

func TestLimiterFreeAttempts(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{})
	for i := range 5 {
		limiterMustWait(t, l, 0, "user:a")
		l.Fail("user:a")
		if i < 4 {
			limiterMustWait(t, l, 0, "user:a")
		}
	}
	// The 5th failure is still free; the 6th starts the wait.
	limiterMustWait(t, l, 0, "user:a")
	l.Fail("user:a")
	limiterMustWait(t, l, time.Second, "user:a")
	limiterMustWait(t, l, 0, "user:b")
}

func TestLimiterDoubling(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: 2, Base: time.Second, Max: 20 * time.Second, Forget: time.Hour})
	l.Fail("k")
	l.Fail("k")
	limiterMustWait(t, l, 0, "k")
	for _, want := range []time.Duration{1, 2, 4, 8, 16, 20, 20, 20} {
		l.Fail("k")
		limiterMustWait(t, l, want*time.Second, "k")
		// The wait counts from the failure: part of it elapsed, the rest remains.
		c.advance(want * time.Second / 2)
		limiterMustWait(t, l, want*time.Second/2, "k")
		c.advance(want*time.Second/2 - time.Millisecond)
		limiterMustWait(t, l, time.Millisecond, "k")
		c.advance(time.Millisecond)
		limiterMustWait(t, l, 0, "k")
	}
}

func TestLimiterMaxDefault(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{})
	for range 200 { // far past any doubling that could overflow
		l.Fail("k")
	}
	limiterMustWait(t, l, 5*time.Minute, "k")
}

func TestLimiterCheckIsLongestAndCountsNothing(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: -1, Base: time.Second, Max: time.Hour})
	l.Fail("user:a", "addr:1") // 1 s each
	l.Fail("addr:1")           // 2 s
	limiterMustWait(t, l, time.Second, "user:a")
	limiterMustWait(t, l, 2*time.Second, "user:a", "addr:1")
	limiterMustWait(t, l, 2*time.Second, "addr:1", "user:new")
	// Refused checks do not lengthen anything.
	for range 100 {
		l.Check("user:a", "addr:1")
	}
	c.advance(2 * time.Second)
	limiterMustWait(t, l, 0, "user:a", "addr:1")
}

func TestLimiterForget(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: 1, Base: time.Second, Max: time.Minute, Forget: 10 * time.Minute})
	for range 5 {
		l.Fail("k")
	}
	limiterMustWait(t, l, 8*time.Second, "k")
	c.advance(10*time.Minute - time.Second)
	l.Fail("k") // not yet forgotten: the count goes on
	limiterMustWait(t, l, 16*time.Second, "k")
	c.advance(10 * time.Minute)
	limiterMustWait(t, l, 0, "k")
	// Forgotten: the count starts over, so one failure is free again.
	l.Fail("k")
	limiterMustWait(t, l, 0, "k")
	l.Fail("k")
	limiterMustWait(t, l, time.Second, "k")

	// Forgotten entries are swept, not only ignored.
	c.advance(10 * time.Minute)
	l.Fail("other")
	l.mu.Lock()
	_, kept := l.keys["k"]
	l.mu.Unlock()
	if kept {
		t.Error("a forgotten key is still held")
	}
	limiterCheckList(t, l)
}

func TestLimiterClockStepsBack(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: 1, Forget: 10 * time.Minute})
	c.advance(10 * time.Minute)
	l.Fail("a")
	c.advance(-10 * time.Minute)
	l.Fail("b", "b") // b is now behind a in the list, though older
	limiterMustWait(t, l, time.Second, "b")
	c.advance(15 * time.Minute)
	l.Fail("b") // forgotten, though sweep stopped at a: one free failure again
	limiterMustWait(t, l, 0, "b")
}

func TestLimiterForgetNeverCutsAWait(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: -1, Base: time.Hour, Max: time.Hour, Forget: time.Minute})
	l.Fail("k")
	c.advance(30 * time.Minute)
	limiterMustWait(t, l, 30*time.Minute, "k")
}

func TestLimiterSucceed(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{})
	user, addr := "user:alice", "addr:203.0.113.7"
	for range 8 {
		l.Fail(user, addr)
	}
	limiterMustWait(t, l, 4*time.Second, user, addr)
	// The token endpoint clears the user only: the address keeps its record.
	l.Succeed(user)
	limiterMustWait(t, l, 0, user)
	limiterMustWait(t, l, 4*time.Second, addr)
	limiterMustWait(t, l, 4*time.Second, user, addr)
	// After Succeed the user starts over with its free attempts.
	for range 5 {
		l.Fail(user)
	}
	limiterMustWait(t, l, 0, user)
	l.Succeed(user, addr, "never-seen")
	limiterMustWait(t, l, 0, user, addr)
	limiterCheckList(t, l)
}

func TestLimiterMemoryBounded(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: -1})
	const n = 150_000
	for i := range n {
		l.Fail(fmt.Sprintf("addr:%d", i))
		if i%1000 == 0 {
			c.advance(time.Millisecond)
		}
	}
	l.mu.Lock()
	size := len(l.keys)
	l.mu.Unlock()
	if size != defaultLimiterMaxKeys {
		t.Fatalf("%d keys held, want %d", size, defaultLimiterMaxKeys)
	}
	// The oldest were evicted; the newest still wait.
	limiterMustWait(t, l, 0, "addr:0")
	limiterMustWait(t, l, 0, fmt.Sprintf("addr:%d", n-defaultLimiterMaxKeys-1))
	if _, ok := l.Check(fmt.Sprintf("addr:%d", n-defaultLimiterMaxKeys)); ok {
		t.Error("the oldest kept key has no wait")
	}
	if _, ok := l.Check(fmt.Sprintf("addr:%d", n-1)); ok {
		t.Error("the newest key has no wait")
	}
	limiterCheckList(t, l)
}

func TestLimiterEvictsExpiredFirst(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: -1, MaxKeys: 3, Forget: time.Minute})
	l.Fail("a")
	c.advance(time.Second)
	l.Fail("b")
	l.Fail("c")
	l.Fail("a") // a is now the newest
	l.Fail("d") // full: b, the one idle longest, goes
	limiterMustWait(t, l, 0, "b")
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := l.Check(k); ok {
			t.Errorf("%s was evicted", k)
		}
	}
	c.advance(time.Hour)
	l.Fail("e")
	l.mu.Lock()
	size := len(l.keys)
	l.mu.Unlock()
	if size != 1 {
		t.Errorf("%d keys held after all others expired, want 1", size)
	}
	limiterCheckList(t, l)
}

func TestLimiterLongKeys(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{Free: -1})
	long := "user:" + strings.Repeat("x", 1<<20)
	l.Fail(long)
	if _, ok := l.Check(long); ok {
		t.Fatal("a long key is not limited")
	}
	if _, ok := l.Check(long + "y"); !ok {
		t.Fatal("two long keys share a record")
	}
	l.mu.Lock()
	for k := range l.keys {
		if len(k) > 80 {
			t.Errorf("a key of %d bytes is held", len(k))
		}
	}
	l.mu.Unlock()
	l.Succeed(long)
	limiterMustWait(t, l, 0, long)
}

func TestLimiterConcurrent(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: 1000, MaxKeys: 500, Forget: time.Hour})
	const workers, rounds = 16, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				own := fmt.Sprintf("addr:%d:%d", w, i%50)
				l.Check("user:shared", own)
				l.Fail("user:shared", own)
				if i%7 == 0 {
					l.Succeed(own)
				}
				if i%100 == 0 {
					c.advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	limiterCheckList(t, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	// The shared key was failed on most recently by every round, so it is never the
	// oldest and never evicted: every failure counted.
	if e := l.keys["user:shared"]; e == nil || e.fails != workers*rounds {
		t.Fatalf("shared key: %+v, want %d failures", e, workers*rounds)
	}
	if len(l.keys) > 500 {
		t.Fatalf("%d keys held, MaxKeys is 500", len(l.keys))
	}
}

// limiterBurst starts n goroutines that call Begin(keys...) at once and returns the
// attempts allowed (the others were refused).
func limiterBurst(l *Limiter, n int, keys ...string) []*Attempt {
	var (
		mu      sync.Mutex
		allowed []*Attempt
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			if a, _, ok := l.Begin(keys...); ok {
				mu.Lock()
				allowed = append(allowed, a)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return allowed
}

// A burst of parallel attempts gets what sequential ones get: the free failures and the
// one that starts the wait. Checking first and counting after the slow check gave every
// attempt of the burst a pass.
func TestLimiterBeginBurst(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{})
	allowed := limiterBurst(l, 200, "user:a", "addr:1")
	if len(allowed) != 6 {
		t.Fatalf("%d of 200 parallel attempts allowed, want 6 (5 free and the one that starts the wait)", len(allowed))
	}
	// While they are in flight, the next is refused: they count as failures.
	if _, _, ok := l.Begin("user:a"); ok {
		t.Fatal("an attempt past the allowance was allowed while 6 are in flight")
	}
	limiterMustWait(t, l, time.Second, "addr:1")
	for _, a := range allowed {
		a.Fail()
	}
	limiterMustWait(t, l, time.Second, "user:a", "addr:1")
	limiterCheckList(t, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range []string{"user:a", "addr:1"} {
		if e := l.keys[k]; e.fails != 6 || e.pending != 0 {
			t.Errorf("%s: %d failures, %d in flight; want 6 and 0", k, e.fails, e.pending)
		}
	}
}

// Past the free failures, attempts go one at a time: each waits for the one before to be
// resolved, as they would if made one after another.
func TestLimiterOneAtATimePastAllowance(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: 2, Base: time.Second, Max: time.Minute})
	for range 3 {
		a, _, ok := l.Begin("k")
		if !ok {
			t.Fatal("a free attempt was refused")
		}
		a.Fail()
	}
	limiterMustWait(t, l, time.Second, "k")
	c.advance(time.Second)
	a, _, ok := l.Begin("k")
	if !ok {
		t.Fatal("refused after the wait")
	}
	// One in flight past the allowance: the next waits as long as a failure of it would
	// make it wait, and Check (the path of an answer known without a check) agrees.
	if _, wait, ok := l.Begin("k"); ok || wait != 2*time.Second {
		t.Fatalf("second attempt in flight: %v, %v; want refused with 2s", wait, ok)
	}
	limiterMustWait(t, l, 2*time.Second, "k")
	a.Fail()
	limiterMustWait(t, l, 2*time.Second, "k")
}

// Within the free failures, attempts may overlap: people signing in at once through one
// proxy address are not refused for it.
func TestLimiterOverlapWithinAllowance(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{Free: 5})
	var inFlight []*Attempt
	for i := range 6 {
		a, _, ok := l.Begin(fmt.Sprintf("user:%d", i), "addr:proxy")
		if !ok {
			t.Fatalf("attempt %d refused", i)
		}
		inFlight = append(inFlight, a)
	}
	for i, a := range inFlight {
		a.Succeed(fmt.Sprintf("user:%d", i))
	}
	// Successes leave no record, of the users or of the address.
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n != 0 {
		t.Errorf("%d records left after successes, want 0", n)
	}
	limiterCheckList(t, l)
}

func TestLimiterAttemptResolution(t *testing.T) {
	l, _ := newTestLimiter(LimiterOptions{Free: 1})
	user, addr := "user:a", "addr:1"

	// Cancel counts nothing; resolving twice does nothing.
	a, _, _ := l.Begin(user, addr)
	a.Cancel()
	a.Fail()
	a.Cancel()
	limiterMustWait(t, l, 0, user, addr)
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d records after a cancelled attempt, want 0", n)
	}

	// A success clears the keys named, and the others keep their failures.
	a, _, _ = l.Begin(user, addr)
	a.Fail()
	a, _, _ = l.Begin(user, addr)
	a.Fail()
	limiterMustWait(t, l, time.Second, user, addr)
	l.Succeed(user)
	a, _, ok := l.Begin(user)
	b, _, ok2 := l.Begin(user) // the free one and the one that starts the wait
	if !ok || !ok2 {
		t.Fatal("refused after Succeed")
	}
	if _, _, ok := l.Begin(user); ok {
		t.Fatal("three attempts in flight, one free")
	}
	a.Succeed(user)
	b.Cancel()
	limiterMustWait(t, l, 0, user)
	limiterMustWait(t, l, time.Second, addr)

	// An attempt whose record was cleared while it was in flight counts on a fresh one.
	a, _, _ = l.Begin(user)
	b, _, _ = l.Begin(user)
	b.Succeed(user)
	a.Fail()
	a.Fail()
	l.mu.Lock()
	e := l.keys[user]
	l.mu.Unlock()
	if e == nil || e.fails != 1 || e.pending != 0 {
		t.Fatalf("after a cleared record: %+v, want 1 failure, none in flight", e)
	}
	limiterCheckList(t, l)
}

// Attempts in flight keep their records: they are neither forgotten nor swept, however
// long the check takes.
func TestLimiterInFlightNotForgotten(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: -1, Forget: time.Minute})
	a, _, _ := l.Begin("k")
	c.advance(time.Hour)
	l.Fail("other") // sweeps
	if _, _, ok := l.Begin("k"); ok {
		t.Fatal("a second attempt past the allowance while one is in flight")
	}
	a.Fail()
	limiterMustWait(t, l, time.Second, "k")
	limiterCheckList(t, l)
}

// Begin, resolution and eviction from many goroutines: the list stays whole, every
// resolution is counted once (go test -race).
func TestLimiterAttemptsConcurrent(t *testing.T) {
	l, c := newTestLimiter(LimiterOptions{Free: 1_000_000, MaxKeys: 300, Forget: time.Hour})
	const workers, rounds = 16, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				own := fmt.Sprintf("addr:%d:%d", w, i%40)
				a, _, ok := l.Begin("user:shared", own)
				if !ok {
					t.Error("refused within the allowance")
					return
				}
				switch i % 3 {
				case 0:
					a.Fail()
				case 1:
					a.Succeed(own)
				default:
					a.Cancel()
				}
				if i%100 == 0 {
					c.advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	limiterCheckList(t, l)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.keys["user:shared"]; e == nil || e.fails != workers*rounds/3 || e.pending != 0 {
		t.Fatalf("shared key: %+v, want %d failures and none in flight", e, workers*rounds/3)
	}
	for k, e := range l.keys {
		if e.pending != 0 {
			t.Errorf("%s: %d attempts still in flight", k, e.pending)
		}
	}
	if len(l.keys) > 300 {
		t.Fatalf("%d keys held, MaxKeys is 300", len(l.keys))
	}
}
