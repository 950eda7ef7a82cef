package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// The Auth Sandbox in a real browser: headless Chromium signs in through the login
// page, creates a client on the sandbox page, and runs each flow — password, client
// credentials, authorization code + PKCE, SMART standalone — checking the token
// response, the decoded claims, GET /fhir/Patient with the token, introspection (active),
// revocation, and introspection again (inactive). Set FHIRBOX_TEST_SCREENSHOTS to a
// directory to keep screenshots of the sandbox (docs/img holds the ones in docs/smart.md).
func TestBrowserSandbox(t *testing.T) {
	browser := startChromium(t, 1100, 900)
	forEachBackend(t, func(t *testing.T) { testBrowserSandbox(t, browser) })
}

// startChromium starts the headless browser for t and its subtests, with a window of
// width × height (what the screenshots show). Both backends share it, each in a browser
// context of its own (cookies apart): starting the browser is most of a test's cost.
func startChromium(t *testing.T, width, height int) context.Context {
	t.Helper()
	exe := testdb.Browser(t)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(width, height),
		chromedp.Flag("disable-gpu", true))...)
	t.Cleanup(cancel)
	browser, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return browser
}

// sandboxStep is what the test reads of a step the sandbox shows.
type sandboxStep struct {
	Kind, Status, Note, Error string
}

// sandboxPage drives the sandbox page in one browser tab.
type sandboxPage struct {
	t   *testing.T
	ctx context.Context
}

func (sp *sandboxPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	sp.t.Helper()
	if err := chromedp.Do(sp.ctx, actions...); err != nil {
		sp.t.Fatalf("%s: %v", what, err)
	}
}

// value runs an action that returns a value.
func value[T any](sp *sandboxPage, what string, a chromedp.Action[T]) T {
	sp.t.Helper()
	v, err := chromedp.Run(sp.ctx, a)
	if err != nil {
		sp.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// steps waits until the page shows at least n steps, and returns them.
func (sp *sandboxPage) steps(n int) []sandboxStep {
	sp.t.Helper()
	sp.do(fmt.Sprintf("waiting for %d steps", n),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll('#steps > li').length >= %d`, n), chromedp.WithPollingTimeout(time.Minute)))
	return value(sp, "reading the steps", chromedp.Evaluate[[]sandboxStep](`[...document.querySelectorAll('#steps > li')].map(l => ({
			Kind: l.dataset.kind || '', Status: l.dataset.status || '',
			Note: [...l.querySelectorAll(':scope > .note')].map(e => e.textContent).join(' '),
			Error: [...l.querySelectorAll(':scope > .error')].map(e => e.textContent).join(' ')}))`))
}

// afterRedirects waits for the page to come back from the authorization endpoint with
// at least n steps shown, pressing decision (allow or deny) on the consent page on the
// way: polls do not survive a navigation, so each try that meets one is made again.
func (sp *sandboxPage) afterRedirects(n int, decision string) []sandboxStep {
	sp.t.Helper()
	deadline := time.Now().Add(time.Minute)
	consented, picked := false, false
	for {
		state, err := chromedp.Run(sp.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.readyState !== 'complete' ? 'loading' :
			location.pathname === '/ui/sandbox' && document.querySelectorAll('#steps > li').length >= %d ? 'back' :
			document.querySelector('input[name=patient]') ? 'picker' :
			document.querySelector('button[value=allow]') ? 'consent' : 'waiting'`, n)))
		switch {
		case err == nil && state == "back":
			return sp.steps(n)
		case err == nil && state == "picker" && !picked:
			sp.do("the first patient on the picker", chromedp.Click(`input[name=patient]`), chromedp.Click(`button[value=allow]`))
			picked = true
		case err == nil && state == "consent" && !consented:
			sp.do(decision+" on the consent page", chromedp.Click(`button[value=`+decision+`]`))
			consented = true
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(sp.ctx, chromedp.Location())
			sp.t.Fatalf("the sandbox did not come back with %d steps: at %s (%v)", n, loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// last is the last of n steps, which must be of kind and status.
func (sp *sandboxPage) last(n int, kind, status string) sandboxStep {
	sp.t.Helper()
	steps := sp.steps(n)
	s := steps[len(steps)-1]
	if s.Kind != kind || s.Status != status || s.Error != "" {
		sp.t.Fatalf("step %d: %+v, want kind %s status %s; all: %+v", len(steps), s, kind, status, steps)
	}
	return s
}

// claims are the decoded claims of the last token step's token name.
func (sp *sandboxPage) claims(name string) map[string]any {
	sp.t.Helper()
	return value(sp, "reading the decoded "+name, chromedp.Evaluate[map[string]any](fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll('#steps > li[data-kind=token]')].pop();
		const pre = li && li.querySelector('.jwt[data-token=%s] pre[data-part=payload]');
		return pre ? JSON.parse(pre.textContent) : null;
	})()`, name)))
}

func testBrowserSandbox(t *testing.T, browser context.Context) {
	ce := newCodeEnv(t)
	ce.must(201, yamlPut("/AccessPolicy/user1-all", "engine: allow\nlink: [{resourceType: User, id: user1}]\n"))
	ce.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient","id":"pt-1","name":[{"family":"Sandbox"}]}`))
	// user1 is patient pt-1: the SMART flow's picker offers it.
	ce.must(200, put("/User/user1", `{"email":"user1@example.com","userName":"uone","fhirUser":{"reference":"Patient/pt-1"}}`))

	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Generous: the machines that run the suite are shared.
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	sp := &sandboxPage{t: t, ctx: ctx}
	shots := os.Getenv("FHIRBOX_TEST_SCREENSHOTS")
	// shot keeps a screenshot of the window, or of the element sel at three quarters of
	// its size.
	shot := func(name, sel string) {
		if shots == "" || ce.backend != testdb.SQLite {
			return
		}
		a := chromedp.CaptureScreenshot()
		if sel != "" {
			a = chromedp.ScreenshotScale(sel, 0.75)
		}
		buf := value(sp, "screenshot", a)
		if err := os.WriteFile(filepath.Join(shots, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	sp.do("sign in on the way to the sandbox",
		chromedp.Navigate(ce.base+"/ui/sandbox"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "user1"),
		chromedp.SendKeys(`#password`, "password1"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#sandbox`),
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#client-pick option')].some(o => o.value === 'codeapp')`, chromedp.WithPollingTimeout(time.Minute)),
	)

	// codeapp does not list the sandbox's callback: the page says so instead of sending
	// the browser to an error page.
	sp.do("a client without the callback",
		chromedp.Evaluate[chromedp.Void](`(() => { const p = document.getElementById('client-pick'); p.value = 'codeapp'; p.dispatchEvent(new Event('change')); })()`),
		chromedp.Click(`input[name=flow][value=authorization_code]`),
		chromedp.Click(`#run`))
	if s := sp.steps(1)[0]; !strings.Contains(s.Error, "does not list") {
		t.Errorf("codeapp's code flow: %+v", s)
	}
	if loc := value(sp, "where the page is", chromedp.Location()); loc != ce.base+"/ui/sandbox" {
		t.Errorf("the page left for %s", loc)
	}
	sp.do("clear", chromedp.Click(`#clear`), chromedp.Click(`input[name=flow][value=password]`))

	if hidden := value(sp, "the origin warning", chromedp.Evaluate[bool](`document.getElementById('origin-warning').hidden`)); !hidden {
		t.Error("the page warns of another origin, at its own base URL")
	}

	// A confidential client for all four flows, created on the page; not first party, so
	// the code flows go through the consent page.
	sp.do("create a client",
		chromedp.Click(`#create summary`),
		chromedp.WaitVisible(`#new-id`),
		chromedp.SendKeys(`#new-id`, "sbx"),
		chromedp.SendKeys(`#new-name`, "Sandbox app"),
		chromedp.SendKeys(`#new-secret`, "sbx-secret-123"),
		chromedp.Click(`input[name=grant][value=refresh_token]`),
		chromedp.Click(`#create-submit`),
		chromedp.WaitVisible(`#create-result.done`),
	)
	created := value(sp, "the create result", chromedp.Text(`#create-result`))
	if !strings.Contains(created, "sbx") {
		t.Fatalf("create: %q", created)
	}
	id := value(sp, "client id", chromedp.Value(`#client-id`))
	secret := value(sp, "client secret", chromedp.Value(`#client-secret`))
	authMethod := value(sp, "client authentication", chromedp.Value(`#client-auth`))
	if id != "sbx" || secret != "sbx-secret-123" || authMethod != "basic" {
		t.Fatalf("chosen client %q %q %q", id, secret, authMethod)
	}
	sp.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	shot("sandbox.png", "")
	// Its client_credentials tokens may read Patients.
	ce.must(201, yamlPut("/AccessPolicy/sbx-read", `
engine: matcho
link: [{resourceType: Client, id: sbx}]
matcho: {request-method: get, uri: '#^/fhir/Patient'}
`))

	// tokenChecks calls the Patient search, introspects, revokes and introspects again
	// after the token step, which is step n.
	// A token confined to a patient's compartment may see no Patient, or be refused
	// (anyPatient): the test checks the call is made and answered.
	tokenChecks := func(n int, anyPatient bool) {
		t.Helper()
		sp.do("GET /fhir/Patient", chromedp.Click(`#call-patient`))
		if anyPatient {
			if s := sp.steps(n + 1)[n]; s.Kind != "patient-search" || s.Status == "" {
				t.Fatalf("Patient search: %+v", s)
			}
		} else {
			sp.last(n+1, "patient-search", "200")
			body := value(sp, "the Patient search's answer", chromedp.Text(fmt.Sprintf(`#step-%d pre.response`, n)))
			if !strings.Contains(body, `"pt-1"`) || !strings.Contains(body, `"searchset"`) {
				t.Errorf("Patient search answer: %s", body)
			}
		}
		sp.do("introspect", chromedp.Click(`#introspect`))
		if s := sp.last(n+2, "introspect", "200"); s.Note != "active: true" {
			t.Errorf("introspection of a live token: %+v", s)
		}
		sp.do("revoke", chromedp.Click(`#revoke`))
		sp.last(n+3, "revoke", "200")
		sp.do("introspect again", chromedp.Click(`#introspect`))
		if s := sp.last(n+4, "introspect", "200"); s.Note != "active: false" {
			t.Errorf("introspection of a revoked token: %+v", s)
		}
		sp.do("GET /fhir/Patient with the revoked token", chromedp.Click(`#call-patient`))
		sp.last(n+5, "patient-search", "401")
	}
	clear := func() {
		t.Helper()
		sp.do("clear", chromedp.Click(`#clear`), chromedp.Poll[chromedp.Void](`document.querySelectorAll('#steps > li').length === 0`))
	}

	// 1. Password.
	sp.do("password grant",
		chromedp.Click(`input[name=flow][value=password]`),
		chromedp.SendKeys(`#username`, "user1"),
		chromedp.SendKeys(`#password`, "password1"),
		chromedp.Click(`#run`),
	)
	sp.last(1, "token", "200")
	if c := sp.claims("access_token"); c["sub"] != "user1" || c["client_id"] != "sbx" {
		t.Errorf("password grant's claims: %v", c)
	}
	sp.do("GET /fhir/Patient", chromedp.Click(`#call-patient`))
	sp.last(2, "patient-search", "200")
	// The refresh token gets a new access token for the same user.
	first := sp.claims("access_token")
	sp.do("refresh", chromedp.Click(`#refresh`))
	sp.last(3, "token", "200")
	if c := sp.claims("access_token"); c["sub"] != "user1" || c["tid"] == first["tid"] {
		t.Errorf("refreshed token's claims: %v, before %v", c, first)
	}
	clear()
	sp.do("Patient search first, for the checks below", chromedp.Click(`#run`))
	sp.last(1, "token", "200")
	tokenChecks(1, false)
	clear()

	// 2. Client credentials.
	sp.do("client credentials grant", chromedp.Click(`input[name=flow][value=client_credentials]`), chromedp.Click(`#run`))
	sp.last(1, "token", "200")
	if c := sp.claims("access_token"); c["sub"] != "sbx" || c["client_id"] != "sbx" {
		t.Errorf("client credentials' claims: %v", c)
	}
	// The curl command shown is the request: run by a shell, it gets a token too.
	if out := runShown(t, value(sp, "the curl command", chromedp.Text(`#step-0 pre.curl`))); out != "" &&
		(!strings.HasPrefix(out, "HTTP/1.1 200") || !strings.Contains(out, `"access_token"`)) {
		t.Errorf("the shown curl command got:\n%s", out)
	}
	tokenChecks(1, false)
	clear()

	// 3. Authorization code + PKCE: to /auth/authorize, the consent page, and back.
	sp.do("authorization code", chromedp.Click(`input[name=flow][value=authorization_code]`), chromedp.Click(`#run`))
	steps := sp.afterRedirects(3, "allow")
	if steps[0].Kind != "authorize" || steps[1].Kind != "callback" || steps[2].Kind != "token" || steps[2].Status != "200" || steps[2].Error != "" {
		t.Fatalf("authorization code steps: %+v", steps)
	}
	loc := value(sp, "where the page is", chromedp.Location())
	if loc != ce.base+"/ui/sandbox" {
		t.Errorf("the code stays in the address bar: %s", loc)
	}
	if c := sp.claims("id_token"); c["sub"] != "user1" || c["aud"] != "sbx" || c["nonce"] == nil {
		t.Errorf("id_token claims: %v", c)
	}
	if c := sp.claims("access_token"); c["sub"] != "user1" || c["scope"] != "openid" {
		t.Errorf("authorization code's access token claims: %v", c)
	}
	shot("sandbox-code.png", `#steps`)
	tokenChecks(3, false)
	clear()

	// Deny on the consent page: the callback gets access_denied, and nothing is exchanged.
	sp.do("authorization code, denied", chromedp.Click(`#run`))
	steps = sp.afterRedirects(2, "deny")
	if steps[1].Kind != "callback" || !strings.Contains(steps[1].Error, "access_denied") {
		t.Errorf("denied: %+v", steps)
	}
	clear()

	// 4. SMART standalone launch: the same flow with SMART's scopes.
	sp.do("SMART standalone", chromedp.Click(`input[name=flow][value=smart]`), chromedp.Click(`#run`))
	steps = sp.afterRedirects(4, "allow")
	if steps[2].Kind != "token" || steps[2].Status != "200" || steps[2].Error != "" || steps[3].Kind != "patient" {
		t.Fatalf("SMART steps: %+v", steps)
	}
	t.Logf("SMART launch context: %s (%s)", steps[3].Kind, steps[3].Note)
	if c := sp.claims("access_token"); c["scope"] != "openid fhirUser launch/patient patient/*.rs" {
		t.Errorf("SMART access token's scope: %v", c["scope"])
	}
	if c := sp.claims("id_token"); c["sub"] != "user1" {
		t.Errorf("SMART id_token: %v", c)
	}
	tokenChecks(4, true)

	// Opened at another origin than the base URL's (localhost for 127.0.0.1), the page
	// warns that the code flows cannot come back to it.
	other, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	other, cancel = context.WithTimeout(other, time.Minute)
	defer cancel()
	op := &sandboxPage{t: t, ctx: other}
	op.do("the sandbox at localhost",
		chromedp.Navigate(strings.Replace(ce.base, "127.0.0.1", "localhost", 1)+"/ui/sandbox"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "user1"),
		chromedp.SendKeys(`#password`, "password1"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#origin-warning`))
	if w := value(op, "the warning", chromedp.Text(`#origin-warning`)); !strings.Contains(w, ce.base+"/ui/sandbox") {
		t.Errorf("warning: %q", w)
	}
}

// runShown runs a curl command as the sandbox shows it, in sh, and returns its output;
// "" (and a log line) when this machine has no curl.
func runShown(t *testing.T, command string) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("no curl in PATH: the shown command is not run")
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", command+" --silent --show-error").CombinedOutput()
	if err != nil {
		t.Fatalf("%s\n%v: %s", command, err, out)
	}
	return string(out)
}
