package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// A real browser through the sign-in pages: headless Chromium opens the authorization
// URL of a standalone SMART launch, signs in through the login form, allows on the
// consent page, picks a patient and lands on the client's redirect URI with a code,
// which the test exchanges: the token response names the patient, and the token reads
// only that patient (conformance A1, A4, A6, L1). Set FHIRBOX_TEST_SCREENSHOTS to a directory to keep screenshots of the login,
// consent and picker pages (docs/img holds the ones in the documentation).
//
// Both backends share one Chromium, each in a browser context of its own (cookies
// apart): starting the browser is most of the test's cost.
func TestBrowserSignIn(t *testing.T) {
	exe := testdb.Browser(t)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(800, 640),
		chromedp.Flag("disable-gpu", true))...)
	t.Cleanup(cancel)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	forEachBackend(t, func(t *testing.T) { testBrowserSignIn(t, browser) })
}

func testBrowserSignIn(t *testing.T, browser context.Context) {
	// The client's side: a page at the redirect URI that keeps what it was sent.
	got := make(chan url.Values, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>app</title><p id=done>signed in</p>"))
	}))
	t.Cleanup(app.Close)
	redirect := app.URL + "/cb"
	ce := newCodeEnv(t)
	launchFixture(t, ce)
	ce.must(200, yamlPut("/Client/codeapp", strings.Replace(codeAppYAML, codeRedirect, redirect, 1)))

	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Generous: the machines that run the suite are shared.
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)

	verifier, challenge := pkcePair(t)
	q := url.Values{"response_type": {"code"}, "client_id": {"codeapp"}, "redirect_uri": {redirect}, "state": {"st-b"},
		"scope": {"openid fhirUser launch/patient patient/*.read"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	shots := os.Getenv("FHIRBOX_TEST_SCREENSHOTS")
	shot := func(name string) {
		if shots == "" || ce.backend != testdb.SQLite {
			return
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ce.base+"/auth/authorize?"+q.Encode()),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "user1@example.com"),
		chromedp.SendKeys(`#password`, "password1"),
	); err != nil {
		t.Fatalf("login page: %v", err)
	}
	shot("login.png")
	if err := chromedp.Do(ctx,
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`button[value=allow]`),
	); err != nil {
		t.Fatalf("consent page: %v", err)
	}
	shot("consent.png")
	if err := chromedp.Do(ctx,
		chromedp.Click(`button[value=allow]`),
		chromedp.WaitVisible(`#patient-p2`),
	); err != nil {
		t.Fatalf("picker page: %v", err)
	}
	shot("picker.png")
	if err := chromedp.Do(ctx,
		chromedp.Click(`#patient-p2`),
		chromedp.Click(`button[value=allow]`),
		chromedp.WaitVisible(`#done`),
	); err != nil {
		t.Fatalf("redirect: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasPrefix(loc, redirect+"?") {
		t.Fatalf("landed on %q (%v)", loc, err)
	}
	var params url.Values
	select {
	case params = <-got:
	case <-ctx.Done():
		t.Fatal("the redirect URI was not reached")
	}
	if params.Get("state") != "st-b" || params.Get("iss") != ce.base {
		t.Errorf("redirect parameters %v", params)
	}
	r := ce.exchange(params.Get("code"), verifier, "redirect_uri", redirect)
	checkTokenResponse(t, r)
	if r.doc["id_token"] == nil || r.doc["patient"] != "p2" {
		t.Errorf("no id_token, or not patient p2: %s", r.raw)
	}
	// The token reads the patient picked, and not the other one the user may read.
	access, _ := r.doc["access_token"].(string)
	ce.must(200, bearer(access, get("/fhir/Patient/p2")))
	ce.must(403, bearer(access, get("/fhir/Patient/p1")))

	// An unknown client gets the error page, never a redirect.
	bad := url.Values{"response_type": {"code"}, "client_id": {"nope"}, "redirect_uri": {redirect}, "state": {"st-x"}}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ce.base+"/auth/authorize?"+bad.Encode()),
		chromedp.WaitVisible(`p.error`),
	); err != nil {
		t.Fatalf("error page: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(`p.error`))
	if err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, ce.base+"/auth/authorize") || !strings.Contains(msg, "unknown client") {
		t.Errorf("an unknown client: at %q, %q", loc, msg)
	}
	shot("error.png")

	// Signing out ends the browser's sign-in: the next authorization asks for the
	// password again.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ce.base+"/auth/logout"),
		chromedp.WaitVisible(`form button[type=submit]`),
	); err != nil {
		t.Fatalf("signed-in page: %v", err)
	}
	if who, err := chromedp.Run(ctx, chromedp.Text(`strong`)); err != nil || who != "uone" {
		t.Errorf("the signed-in page names %q (%v)", who, err)
	}
	shot("signed-in.png")
	if err := chromedp.Do(ctx,
		chromedp.Click(`form button[type=submit]`),
		chromedp.WaitVisible(`//p[contains(., "signed out")]`),
	); err != nil {
		t.Fatalf("signed-out page: %v", err)
	}
	shot("signed-out.png")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(ce.base+"/auth/authorize?"+q.Encode()),
		chromedp.WaitVisible(`#username`),
	); err != nil {
		t.Fatalf("after signing out, no login page: %v", err)
	}
}
