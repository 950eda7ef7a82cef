package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
)

func withRetention(d time.Duration) envOption {
	return func(a *app.Config) { a.SessionRetention = d }
}

// The sweeper removes Sessions some time after they end or are closed, and spent or
// expired authorization codes and launch contexts, with their history; it keeps Sessions that are still
// usable: not yet expired, kept alive by refreshing, or with a refresh token that never
// expires.
func TestSweepRemovesEndedSessions(t *testing.T) { forEachBackend(t, testSweepRemovesEndedSessions) }

func testSweepRemovesEndedSessions(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clk), withRetention(time.Hour))
	ctx := context.Background()
	e.must(201, yamlPut("/Client/cc1", "secret: s1\ngrant_types: [client_credentials]\nauth: {client_credentials: {access_token_expiration: 600}}\n"))
	e.must(201, yamlPut("/Client/cc2", "secret: s2\ngrant_types: [client_credentials]\nauth: {client_credentials: {access_token_expiration: 600}}\n"))
	e.must(201, yamlPut("/Client/sliding", "secret: s3\ngrant_types: [password, refresh_token]\nauth: {password: {access_token_expiration: 300, refresh_token: true, refresh_token_expiration: 3600}}\n"))
	e.must(201, yamlPut("/Client/forever", "secret: s4\ngrant_types: [password, refresh_token]\nauth: {password: {access_token_expiration: 300, refresh_token: true}}\n"))
	e.must(201, yamlPut("/Client/webapp", "secret: s5\ngrant_types: [password]\nauth: {password: {redirect_uri: 'https://app.example.com/cb'}}\n"))
	e.must(201, put("/User/user1", `{"password":"password1"}`))

	issue := func(v url.Values) *resp {
		t.Helper()
		r := token(e, v)
		checkTokenResponse(t, r)
		return r
	}
	cc := func(id, secret string) *resp {
		return issue(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	}
	pw := func(id, secret string) *resp {
		return issue(url.Values{"grant_type": {"password"}, "client_id": {id}, "client_secret": {secret}, "username": {"user1"}, "password": {"password1"}})
	}
	sessionOf := func(client string) string {
		t.Helper()
		r := e.must(200, get("/Session?client=Client/"+client))
		id, _ := at(r.doc, "entry", 0, "resource", "id").(string)
		if id == "" {
			t.Fatalf("no Session of %s: %s", client, r.raw)
		}
		return id
	}
	sweep := func(want int) {
		t.Helper()
		n, err := e.app.Sweep(ctx)
		if err != nil || n != want {
			t.Fatalf("Sweep at %s removed %d, %v; want %d", clk.Now().Format(time.TimeOnly), n, err, want)
		}
	}
	readSession := func(id string, want int) {
		t.Helper()
		r := e.must(want, get("/Session/"+id))
		if _, shown := r.doc["ends"]; shown {
			t.Errorf("Session/%s shows the sweeper's field: %s", id, r.raw)
		}
		if want == 404 {
			e.must(404, get("/Session/"+id+"/_history"))
		}
	}

	cc("cc1", "s1")                // ends at +10 min
	closed := cc("cc2", "s2")      // closed at once
	sliding := pw("sliding", "s3") // ends an hour after its last refresh
	pw("forever", "s4")            // never ends by itself
	ended, closedID := sessionOf("cc1"), sessionOf("cc2")
	slidingID, foreverID := sessionOf("sliding"), sessionOf("forever")
	e.must(200, bearer(closed.doc["access_token"].(string), del("/Session")))
	r := e.do(req{method: http.MethodGet, path: "/auth/authorize?client_id=webapp&grant_type=password&state=x", anonymous: true})
	if r.status != 302 {
		t.Fatalf("authorize: %d %s", r.status, r.raw)
	}
	// A SMART launch context expires in an hour, and goes an hour after that.
	launch := e.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"}}`)).doc["id"].(string)
	if _, shown := e.must(200, get("/LaunchContext/"+launch)).doc["exp"]; shown {
		t.Error("LaunchContext shows the sweeper's field")
	}
	sweep(0) // nothing has ended an hour ago yet

	clk.Advance(50 * time.Minute)
	issue(url.Values{"grant_type": {"refresh_token"}, "client_id": {"sliding"}, "client_secret": {"s3"}, "refresh_token": {sliding.doc["refresh_token"].(string)}})

	// At +2 h, cc1's Session (ended at +10 min) and cc2's (closed at 0) ended more than
	// an hour ago, and the code expired at +10 min. The refresh moved the sliding
	// Session's end from +1 h to +1 h 50 min: less than an hour ago.
	clk.Advance(70 * time.Minute)
	sweep(3)
	readSession(ended, 404)
	readSession(closedID, 404)
	readSession(slidingID, 200)
	readSession(foreverID, 200)

	// An hour after the sliding Session's end, it goes too, and so does the launch
	// context (expired at +1 h); the other Session stays.
	clk.Advance(time.Hour)
	sweep(2)
	e.must(404, get("/LaunchContext/"+launch+"/_history"))
	readSession(slidingID, 404)
	readSession(foreverID, 200)
	if r := e.must(200, get("/Session?_summary=count")); fmt.Sprint(r.doc["total"]) != "1" {
		t.Errorf("Sessions left: %s, want 1", r.raw)
	}
}
