package server_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/auth"
)

// Guessing limits (issue 12, items 3, 8 and 11): the check and the count of a guess are
// one step, client secrets are limited like passwords, and a user's names share one
// budget. The default limiter (5 free failures, then 1 s doubling) runs on a clock that
// only the test moves, so no wait ends while a test is slow.

// tokenForm is a form POST to /auth/token.
func tokenForm(v url.Values, hdr ...string) req {
	return req{method: http.MethodPost, path: "/auth/token", anonymous: true, body: v.Encode(),
		hdr: append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)}
}

func signIn(username, password string) req {
	return tokenForm(url.Values{"grant_type": {"password"}, "client_id": {"myapp"}, "client_secret": {"verysecret"},
		"username": {username}, "password": {password}})
}

// guessEnv is a server whose limiter runs on clk, with the default numbers.
func guessEnv(t *testing.T, opts ...envOption) (*env, *clock) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	lim := auth.NewLimiter(auth.LimiterOptions{Now: clk.Now})
	return newEnv(t, append([]envOption{withClock(clk), withLimiter(lim)}, opts...)...), clk
}

// mustThrottle asserts the token endpoint's answer while guessing is slowed: 429,
// invalid_request and a Retry-After.
func mustThrottle(t *testing.T, r *resp, what string) {
	t.Helper()
	if r.status != 429 {
		t.Fatalf("%s: status %d, want 429: %s", what, r.status, r.raw)
	}
	if code := oauthErrorOf(t, r, 429); code != "invalid_request" {
		t.Errorf("%s: error %q, want invalid_request", what, code)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: Retry-After %q", what, r.header.Get("Retry-After"))
	}
}

// Item 3: a burst of parallel guesses for one user gets the free allowance of bcrypt
// checks and no more, and the right password sent within the burst, past the allowance,
// gets no token. The first six checks are held in the hook until every other request has
// been answered, so that the right password arrives while they are in flight.
func TestPasswordBurst(t *testing.T) { forEachBackend(t, testPasswordBurst) }

func testPasswordBurst(t *testing.T) {
	const burst, allowance = 200, 6 // 5 free failures and the one that starts the wait
	// The per-caller share would hold all but a few of the burst back (on SQLite it is
	// 2): without it, every guess reaches the limiter at once, the case to prove.
	e, clk := guessEnv(t, withCallerShare(-1))
	setupMyapp(t, e)
	// The client's secret is verified once, here, so the burst pays for passwords only.
	checkTokenResponse(t, e.do(tokenForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}})))

	var checks atomic.Int64
	entered, release := make(chan struct{}, burst), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	e.app.Dir.OnPasswordCheck = func() {
		if checks.Add(1) <= allowance {
			entered <- struct{}{}
			<-release
		}
	}

	start := time.Now()
	results := make(chan *resp, burst)
	var wg sync.WaitGroup
	for i := range burst - 1 {
		wg.Go(func() { results <- e.do(signIn("user1", "guess-"+strconv.Itoa(i))) })
	}
	for range allowance {
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d password checks began", checks.Load())
		}
	}
	right := make(chan *resp, 1)
	wg.Go(func() { right <- e.do(signIn("user1", "password1")) })
	// Every request but the six held is answered before they are let go.
	statuses := map[int]int{}
	for range burst - allowance {
		select {
		case r := <-results:
			statuses[r.status]++
		case r := <-right:
			right <- r
			statuses[-1]++ // counted apart below
		case <-time.After(60 * time.Second):
			t.Fatalf("requests still running: %v answered, %d checks", statuses, checks.Load())
		}
	}
	delete(statuses, -1)
	unblock()
	wg.Wait()
	close(results)
	for r := range results {
		statuses[r.status]++
	}
	elapsed := time.Since(start)

	n := checks.Load()
	t.Logf("burst of %d sign-ins for one user (%s): %d bcrypt checks, %v; statuses %v", burst, e.backend, n, elapsed, statuses)
	if n > allowance+2 {
		t.Errorf("%d bcrypt checks for a burst of %d guesses, want at most %d", n, burst, allowance+2)
	}
	if statuses[400] != allowance || statuses[429] != burst-1-allowance {
		t.Errorf("statuses %v: want %d × 400 and %d × 429", statuses, allowance, burst-1-allowance)
	}
	mustThrottle(t, <-right, "the right password within the burst")
	mustThrottle(t, e.do(signIn("user1", "password1")), "the right password after the burst")
	// Waits are counted on the limiter's clock: once the wait is over the user gets in.
	clk.Advance(time.Second)
	checkTokenResponse(t, e.do(signIn("user1", "password1")))
}

// The figures for docs/security.md: a burst of wrong passwords against a User whose hash
// has bcrypt's default cost, as stored outside tests; nothing held.
func TestPasswordBurstFigures(t *testing.T) { forEachBackend(t, testPasswordBurstFigures) }

func testPasswordBurstFigures(t *testing.T) {
	const burst = 200
	e, _ := guessEnv(t, func(c *app.Config) { c.BcryptCost = bcrypt.DefaultCost })
	setupMyapp(t, e)
	checkTokenResponse(t, e.do(tokenForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {"myapp"}, "client_secret": {"verysecret"}})))
	var checks atomic.Int64
	e.app.Dir.OnPasswordCheck = func() { checks.Add(1) }
	start := time.Now()
	var wg sync.WaitGroup
	var tokens, refused atomic.Int64
	for i := range burst {
		wg.Go(func() {
			pw := "guess-" + strconv.Itoa(i)
			if i == burst/2 {
				pw = "password1" // the right one, in the middle of the burst
			}
			switch e.do(signIn("user1", pw)).status {
			case 200:
				tokens.Add(1)
			case 429:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	n := checks.Load()
	t.Logf("burst of %d sign-ins for one user (%s, bcrypt cost %d): %d bcrypt checks, %d refused with 429, %d token(s), %v",
		burst, e.backend, bcrypt.DefaultCost, n, refused.Load(), tokens.Load(), elapsed)
	// A success within the allowance clears the user, not the address: at most one more.
	if n > 8 {
		t.Errorf("%d bcrypt checks for %d parallel guesses, want at most 8", n, burst)
	}
	if tokens.Load() > 0 && n > 7 {
		t.Errorf("a token was issued though %d checks ran", n)
	}
}

// Item 11: failures count against the User, whichever of its names is typed, and names
// of nobody are limited too, with the same answers as a wrong password. Each attempt
// comes from its own address, so only the user's budget is at work.
func TestLoginNamesShareBudget(t *testing.T) { forEachBackend(t, testLoginNamesShareBudget) }

func testLoginNamesShareBudget(t *testing.T) {
	e, _ := guessEnv(t)
	setupMyapp(t, e) // user1: email user1@example.com, userName uone
	var checks atomic.Int64
	e.app.Dir.OnPasswordCheck = func() { checks.Add(1) }
	addr := 0
	from := func(r req) *resp {
		addr++
		return e.doFrom("198.51.100."+strconv.Itoa(addr), r)
	}
	var wrong []byte
	for i, name := range []string{"user1", "user1@example.com", "uone", "user1", "user1@example.com", "uone"} {
		r := from(signIn(name, "nope"))
		if code := oauthErrorOf(t, r, 400); code != "invalid_grant" {
			t.Fatalf("failure %d (%s): %s", i+1, name, code)
		}
		wrong = r.raw
	}
	for _, name := range []string{"uone", "user1@example.com", "user1"} {
		mustThrottle(t, from(signIn(name, "password1")), "the right password as "+name+" after six failures spread over the user's names")
	}

	// Unknown names: the same answer as a wrong password, bcrypt paid, and limited.
	before := checks.Load()
	for i := range 6 {
		r := from(signIn("Nobody", "nope"))
		if r.status != 400 || string(r.raw) != string(wrong) {
			t.Fatalf("unknown user, attempt %d: %d %s; a wrong password got 400 %s", i+1, r.status, r.raw, wrong)
		}
	}
	if n := checks.Load() - before; n != 6 {
		t.Errorf("%d password checks for 6 unknown-user attempts, want 6", n)
	}
	unknown := from(signIn(" nobody ", "nope"))
	mustThrottle(t, unknown, "an unknown name after six failures")
	known := from(signIn("user1", "nope"))
	mustThrottle(t, known, "a known name after six failures")
	if string(unknown.raw) != string(known.raw) || unknown.header.Get("Retry-After") != known.header.Get("Retry-After") {
		t.Errorf("429 for nobody %s (Retry-After %s), for user1 %s (%s): they must not differ",
			unknown.raw, unknown.header.Get("Retry-After"), known.raw, known.header.Get("Retry-After"))
	}
	// Another user is not held up by user1's budget.
	e.must(201, put("/User/user2", `{"email":"user2@example.com","password":"password2"}`))
	checkTokenResponse(t, from(signIn("user2@example.com", "password2")))
}

// Item 8: client secrets are limited like passwords, per client id and per address,
// whichever way they are sent: HTTP Basic on the API, Basic or client_secret at
// /auth/token. Under the limit a wrong secret is 401 (400 for client_secret in the
// body); over it, every attempt, the right secret included, is 429 with Retry-After.
func TestClientSecretGuessing(t *testing.T) { forEachBackend(t, testClientSecretGuessing) }

func testClientSecretGuessing(t *testing.T) {
	const guesses = 300
	const attacker, elsewhere, bystander = "203.0.113.66", "203.0.113.77", "203.0.113.88"
	cases := []struct {
		name string
		// attempt is one authentication as client id with secret.
		attempt func(id, secret string) req
		// wrong is the status of a wrong secret under the limit.
		wrong int
		// throttled asserts the answer over the limit.
		throttled func(t *testing.T, r *resp)
	}{
		{"api-basic", func(id, secret string) req { return as(id, secret, get("/fhir/Patient")) }, 401, apiThrottled},
		{"token-basic", func(id, secret string) req {
			return tokenForm(url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(id, secret))
		}, 401, func(t *testing.T, r *resp) { mustThrottle(t, r, "token endpoint, Basic") }},
		{"token-body", func(id, secret string) req {
			return tokenForm(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
		}, 400, func(t *testing.T, r *resp) { mustThrottle(t, r, "token endpoint, client_secret") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, clk := guessEnv(t)
			// target is attacked; other is a second client, used from elsewhere.
			target, other := "target", "other"
			for _, id := range []string{target, other} {
				e.must(201, yamlPut("/Client/"+id, "secret: "+id+"-secret\ngrant_types: [basic, client_credentials]\n"))
				e.must(201, yamlPut("/AccessPolicy/"+id+"-read", "engine: matcho\nlink: [{resourceType: Client, id: "+id+"}]\nmatcho: {request-method: get}\n"))
			}
			e.must(201, yamlPut("/Client/pub", "grant_types: [password]\n"))
			e.must(201, put("/User/user1", `{"password":"password1"}`))
			ok := func(r *resp) bool { return r.status == 200 }
			// Both are verified once, so the right secret is remembered (DESIGN §5).
			for _, id := range []string{target, other} {
				if r := e.doFrom(bystander, tc.attempt(id, id+"-secret")); !ok(r) {
					t.Fatalf("%s with its secret: %d %s", id, r.status, r.raw)
				}
			}
			var checks atomic.Int64
			e.app.Clients.OnSecretCheck = func() { checks.Add(1) }

			counts := map[int]int{}
			var last *resp
			for i := range guesses {
				last = e.doFrom(attacker, tc.attempt(target, "guess-"+strconv.Itoa(i)))
				counts[last.status]++
				if i < 6 && last.status != tc.wrong {
					t.Fatalf("wrong secret %d: %d, want %d: %s", i+1, last.status, tc.wrong, last.raw)
				}
			}
			t.Logf("%d wrong secrets (%s, %s): %d bcrypt checks, statuses %v", guesses, tc.name, e.backend, checks.Load(), counts)
			if counts[tc.wrong] != 6 || counts[429] != guesses-6 {
				t.Errorf("statuses %v: want 6 × %d, then 429", counts, tc.wrong)
			}
			if n := checks.Load(); n != 6 {
				t.Errorf("%d secret checks for %d wrong secrets, want 6", n, guesses)
			}
			tc.throttled(t, last)
			// The right secret: limited from the attacker's address, and for that client
			// from anywhere; the same address is limited for another client too. A
			// different client from a different address is not affected.
			tc.throttled(t, e.doFrom(attacker, tc.attempt(target, target+"-secret")))
			tc.throttled(t, e.doFrom(elsewhere, tc.attempt(target, target+"-secret")))
			tc.throttled(t, e.doFrom(attacker, tc.attempt(other, other+"-secret")))
			if r := e.doFrom(elsewhere, tc.attempt(other, other+"-secret")); !ok(r) {
				t.Errorf("another client from another address: %d %s", r.status, r.raw)
			}
			if r := e.doFrom(attacker, tc.attempt(target, "still-wrong")); r.status != 429 {
				t.Errorf("a wrong secret while waiting: %d", r.status)
			}
			// Sign-ins have their own address budget: users behind the attacker's address
			// may still sign in through a public client.
			if r := e.doFrom(attacker, tokenForm(url.Values{"grant_type": {"password"}, "client_id": {"pub"}, "username": {"user1"}, "password": {"password1"}})); !ok(r) {
				t.Errorf("a sign-in from the address that guessed secrets: %d %s", r.status, r.raw)
			}
			if n := checks.Load(); n != 6 {
				t.Errorf("%d secret checks after the refused attempts, want 6: a refused attempt is not checked", n)
			}

			// Once the wait is over the right secret works again, without bcrypt (it is
			// remembered), and at speed.
			clk.Advance(time.Second)
			for range 50 {
				if r := e.doFrom(elsewhere, tc.attempt(target, target+"-secret")); !ok(r) {
					t.Fatalf("after the wait: %d %s", r.status, r.raw)
				}
			}
			if n := checks.Load(); n != 6 {
				t.Errorf("%d secret checks after 50 right secrets, want 6: a remembered secret costs none", n)
			}
		})
	}
}

// apiThrottled asserts the API's answer while client authentication is slowed.
func apiThrottled(t *testing.T, r *resp) {
	t.Helper()
	if r.status != 429 {
		t.Fatalf("status %d, want 429: %s", r.status, r.raw)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if at(r.doc, "issue", 0, "code") != "throttled" || !strings.Contains(outcomeText(t, r), "too many failed client authentications") {
		t.Errorf("429 body: %s", r.raw)
	}
}

// The root client is limited like any other, and a burst of parallel wrong secrets
// costs the free allowance of checks.
func TestRootSecretBurst(t *testing.T) { forEachBackend(t, testRootSecretBurst) }

func testRootSecretBurst(t *testing.T) {
	const burst = 300
	e, _ := guessEnv(t)
	e.must(200, get("/fhir/Patient")) // the root secret is remembered
	var checks atomic.Int64
	e.app.Clients.OnSecretCheck = func() { checks.Add(1) }
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range burst {
		wg.Go(func() {
			r := e.doFrom("203.0.113.9", as(adminID, "guess-"+strconv.Itoa(i), get("/fhir/Patient")))
			mu.Lock()
			statuses[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	n := checks.Load()
	t.Logf("burst of %d wrong root secrets (%s): %d bcrypt checks, %v; statuses %v", burst, e.backend, n, time.Since(start), statuses)
	if n > 8 || statuses[401] != int(n) || statuses[429] != burst-int(n) {
		t.Errorf("%d checks, statuses %v: want at most 8 checks, each a 401, the rest 429", n, statuses)
	}
	apiThrottled(t, e.do(get("/fhir/Patient")))
}
