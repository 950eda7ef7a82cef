package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// launchFixture gives a codeEnv what the SMART launches need: Patients p1 (named, with a
// birth date), p2 and p3, a policy letting user1 read p1 and p2 only, user1 tied to p1
// (fhirUser) and to p2, p3, a Patient that does not exist and a Practitioner (data.patients),
// and user2, tied to none.
func launchFixture(t *testing.T, ce *codeEnv) {
	t.Helper()
	ce.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient","name":[{"given":["Amy","Jo"],"family":"Shaw"}],"birthDate":"1987-02-20"}`))
	ce.must(201, put("/fhir/Patient/p2", `{"resourceType":"Patient","name":[{"text":"Bo Lind"}]}`))
	ce.must(201, put("/fhir/Patient/p3", `{"resourceType":"Patient","name":[{"text":"Cy Hidden"}]}`))
	ce.must(201, put("/fhir/Encounter/e1", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"}}`))
	ce.must(201, yamlPut("/AccessPolicy/user1-patients", "engine: matcho\nlink: [{resourceType: User, id: user1}]\n"+
		"matcho:\n  request-method: get\n  uri: '#^/fhir/Patient/(p1|p2)$'\n"))
	ce.must(200, yamlPut("/User/user1", `
email: user1@example.com
userName: uone
password: password1
fhirUser: {reference: Patient/p1}
data:
  patients:
    - {reference: Patient/p2}
    - Patient/p3
    - {resourceType: Patient, id: gone}
    - {reference: Practitioner/dr1}
    - {reference: Patient/p1}
`))
	ce.must(201, put("/User/user2", `{"userName":"utwo","password":"password2"}`))
	ce.must(200, yamlPut("/Client/codeapp", codeAppYAML))
}

// pickerPatients lists the patient ids a picker page offers, in order.
func pickerPatients(p *page) []string {
	var ids []string
	for _, part := range strings.Split(p.body, `name="patient" value="`)[1:] {
		id, _, _ := strings.Cut(part, `"`)
		ids = append(ids, id)
	}
	return ids
}

// Standalone launch with launch/patient: after consent the picker lists the Patients
// that user1's record names, exist and policies let them read; the choice is bound to
// the code, the token response and the Session carry it, a refresh keeps it; a choice
// off the list is refused; a user with no patient, and Cancel, get access_denied
// (conformance L1–L3, L6, L9).
func TestStandaloneLaunch(t *testing.T) { forEachBackend(t, testStandaloneLaunch) }

func testStandaloneLaunch(t *testing.T) {
	ce := newCodeEnv(t)
	launchFixture(t, ce)
	b := ce.browser(t)
	verifier, challenge := pkcePair(t)
	query := authorizeQuery(challenge, "scope", "openid fhirUser launch/patient patient/*.read offline_access")

	p := b.login(b.get(query), "user1", "password1")
	f := p.fields()
	f.Set("decision", "allow")
	p = b.post("/auth/consent", f)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Choose a patient") {
		t.Fatalf("picker: %d %s", p.status, p.body)
	}
	checkPageHeaders(t, p)
	if got := strings.Join(pickerPatients(p), ","); got != "p1,p2" {
		t.Errorf("picker lists %s, want p1,p2 (p3 is not readable, gone does not exist, dr1 is no Patient)", got)
	}
	for _, want := range []string{"Amy Jo Shaw", "born 1987-02-20", "Bo Lind", `action="/auth/consent"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("picker page has no %q", want)
		}
	}
	if strings.Contains(p.body, "Cy Hidden") {
		t.Error("the picker shows a patient the user may not read")
	}
	picker := p.fields()

	// A patient off the list: the picker again, with an error, and no code.
	for _, bad := range []string{"p3", "gone", "nope/../x"} {
		f = url.Values{"csrf": {picker.Get("csrf")}, "request": {picker.Get("request")}, "decision": {"allow"}, "patient": {bad}}
		if p := b.post("/auth/consent", f); p.status != http.StatusBadRequest || !strings.Contains(p.body, `id="picker-error"`) {
			t.Errorf("patient %s: %d %s", bad, p.status, p.body)
		}
	}
	// Without the session's CSRF token, nothing.
	f = url.Values{"csrf": {"forged"}, "request": {picker.Get("request")}, "decision": {"allow"}, "patient": {"p2"}}
	if p := b.post("/auth/consent", f); p.status != http.StatusForbidden {
		t.Errorf("forged picker form: %d", p.status)
	}

	f = url.Values{"csrf": {picker.Get("csrf")}, "request": {picker.Get("request")}, "decision": {"allow"}, "patient": {"p2"}}
	p = b.post("/auth/consent", f)
	to := p.redirect(t)
	if p.status != http.StatusSeeOther || to == nil || to.Query().Get("code") == "" || to.Query().Get("state") != "st-1" {
		t.Fatalf("after the pick: %d %v %s", p.status, p.header, p.body)
	}
	r := ce.exchange(to.Query().Get("code"), verifier)
	checkTokenResponse(t, r)
	if r.doc["patient"] != "p2" || r.doc["encounter"] != nil || r.doc["need_patient_banner"] != true {
		t.Errorf("token response: patient %v encounter %v need_patient_banner %v", r.doc["patient"], r.doc["encounter"], r.doc["need_patient_banner"])
	}
	// The ID token names the user's fhirUser as an absolute URL; userinfo has sub.
	idt, _ := r.doc["id_token"].(string)
	if _, claims := jwtParts(t, idt); claims["fhirUser"] != ce.base+"/fhir/Patient/p1" {
		t.Errorf("id_token fhirUser %v", claims["fhirUser"])
	}
	access, _ := r.doc["access_token"].(string)
	if ui := ce.must(200, bearer(access, get("/auth/userinfo"))); ui.doc["sub"] != "user1" || ui.doc["id"] != "user1" {
		t.Errorf("userinfo %s", ui.raw)
	}
	// The token reads that patient's data only: the policy lets user1 read p1 too, the
	// patient/ scope confines the token to p2's compartment.
	ce.must(200, bearer(access, get("/fhir/Patient/p2")))
	ce.must(403, bearer(access, get("/fhir/Patient/p1")))
	// The Session records the context as a reference (the contract enforcement reads).
	ss := ce.must(200, get("/Session?type=authorization_code&user=User/user1"))
	if at(ss.doc, "entry", 0, "resource", "patient", "resourceType") != "Patient" || at(ss.doc, "entry", 0, "resource", "patient", "id") != "p2" {
		t.Errorf("Session: %s", ss.raw)
	}
	// Introspection names the patient and the fhirUser too.
	in := ce.must(200, post("/auth/introspect", "token="+url.QueryEscape(access), "Content-Type", "application/x-www-form-urlencoded"))
	if in.doc["active"] != true || in.doc["patient"] != "p2" || in.doc["fhirUser"] != ce.base+"/fhir/Patient/p1" {
		t.Errorf("introspection %s", in.raw)
	}
	// A refresh keeps the context.
	refresh, _ := r.doc["refresh_token"].(string)
	rr := token(ce.env, url.Values{"grant_type": {"refresh_token"}, "client_id": {"codeapp"}, "refresh_token": {refresh}})
	checkTokenResponse(t, rr)
	if rr.doc["patient"] != "p2" || rr.doc["need_patient_banner"] != true {
		t.Errorf("refresh lost the patient or its banner: %s", rr.raw)
	}

	// Cancel on the picker: access_denied, with the state.
	p = b.get(query)
	f = p.fields()
	f.Set("decision", "allow")
	picker = b.post("/auth/consent", f).fields()
	picker.Set("decision", "deny")
	if to := b.post("/auth/consent", picker).redirect(t); to == nil || to.Query().Get("error") != "access_denied" || to.Query().Get("state") != "st-1" {
		t.Errorf("cancel: %v", to)
	}

	// A user whose record names no patient: access_denied saying so.
	b2 := ce.browser(t)
	p = b2.login(b2.get(query), "utwo", "password2")
	f = p.fields()
	f.Set("decision", "allow")
	to = b2.post("/auth/consent", f).redirect(t)
	if to == nil || to.Query().Get("error") != "access_denied" || !strings.Contains(to.Query().Get("error_description"), "no patient") {
		t.Errorf("no candidates: %v", to)
	}

	// A policy that allows within the compartment of the user's fhirUser (the shipped
	// template's shape): of user3's patients only that one, p3, is listed, though the
	// policy's pattern matches a read of p1 too.
	ce.must(201, put("/User/user3", `{"userName":"uthree","password":"password3","fhirUser":{"reference":"Patient/p3"},"data":{"patients":[{"reference":"Patient/p1"}]}}`))
	ce.must(201, yamlPut("/AccessPolicy/user3-compartment", "engine: matcho\nlink: [{resourceType: User, id: user3}]\n"+
		"matcho:\n  request-method: get\n  uri: '#^/fhir/'\ncompartment: {type: Patient, id: .user.fhirUser}\n"))
	b3 := ce.browser(t)
	p = b3.login(b3.get(query), "uthree", "password3")
	f = p.fields()
	f.Set("decision", "allow")
	if p := b3.post("/auth/consent", f); strings.Join(pickerPatients(p), ",") != "p3" {
		t.Errorf("compartment policy: picker lists %v: %d %s", pickerPatients(p), p.status, p.body)
	}

	// A first-party client skips consent, not the picker; prompt=none cannot pick.
	ce.must(200, yamlPut("/Client/codeapp", codeAppYAML+"first_party: true\n"))
	if p := b.get(query); p.status != http.StatusOK || strings.Join(pickerPatients(p), ",") != "p1,p2" {
		t.Errorf("first-party picker: %d %s", p.status, p.body)
	}
	if to := b.get(authorizeQuery(challenge, "scope", "launch/patient", "prompt", "none")).redirect(t); to == nil || to.Query().Get("error") != "interaction_required" {
		t.Errorf("prompt=none with a patient to pick: %v", to)
	}
}

// EHR launch: the EHR creates a LaunchContext (checked, given an expiry, creatable only
// as policies allow); /auth/authorize with scope launch binds it, and the tokens carry
// its patient and encounter. Unknown, expired and other clients' launches, a launch
// parameter without the launch scope and the reverse are errors sent to the client; a
// launch whose patient the user may not read is access_denied (conformance L4–L6).
func TestEHRLaunch(t *testing.T) { forEachBackend(t, testEHRLaunch) }

func testEHRLaunch(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	ce := newCodeEnv(t, withClock(clk))
	launchFixture(t, ce)
	ce.must(201, yamlPut("/Client/other", codeAppYAML))

	// Creating launch contexts: checked, and an expiry of an hour by default.
	lc := ce.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"encounter":{"resourceType":"Encounter","id":"e1"},"client":{"resourceType":"Client","id":"codeapp"}}`))
	launch, _ := lc.doc["id"].(string)
	exp, err := time.Parse(time.RFC3339, lc.doc["expires"].(string))
	if err != nil || !exp.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("expires %v (%v), want an hour on", lc.doc["expires"], err)
	}
	for name, body := range map[string]string{
		"no patient":           `{"resourceType":"LaunchContext"}`,
		"patient not Patient":  `{"resourceType":"LaunchContext","patient":{"reference":"Observation/o1"}}`,
		"bad encounter":        `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"encounter":"e1"}`,
		"far expiry":           `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"expires":"2999-01-01T00:00:00Z"}`,
		"bad expiry":           `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"expires":"soon"}`,
		"banner not a boolean": `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"need_patient_banner":"yes"}`,
	} {
		if r := ce.do(post("/LaunchContext", body)); r.status != 422 {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	// Only callers the policies allow; never under /fhir.
	ce.must(201, put("/Client/ehr", `{"secret":"ehr-secret","grant_types":["basic"]}`))
	ce.must(403, as("ehr", "ehr-secret", post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"}}`)))
	ce.must(201, yamlPut("/AccessPolicy/ehr-launch", "engine: matcho\nlink: [{resourceType: Client, id: ehr}]\nmatcho:\n  request-method: post\n  uri: /LaunchContext\n"))
	ce.must(201, as("ehr", "ehr-secret", post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p2"}}`)))
	ce.must(404, post("/fhir/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"}}`))
	// Updates keep the expiry.
	up := ce.must(200, put("/LaunchContext/"+launch, `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"encounter":{"resourceType":"Encounter","id":"e1"},"client":{"resourceType":"Client","id":"codeapp"},"expires":"`+clk.Now().Add(30*time.Minute).UTC().Format(time.RFC3339)+`"}`))
	if up.doc["expires"] != lc.doc["expires"] {
		t.Errorf("an update moved the expiry: %v", up.doc["expires"])
	}

	b := ce.browser(t)
	verifier, challenge := pkcePair(t)
	ehrQuery := func(launch string, extra ...string) string {
		return authorizeQuery(challenge, append([]string{"scope", "launch openid patient/*.read", "launch", launch}, extra...)...)
	}
	code := b.signInForCode(ehrQuery(launch))
	r := ce.exchange(code, verifier)
	checkTokenResponse(t, r)
	// The EHR frames the app with its own banner unless its LaunchContext says otherwise.
	if r.doc["patient"] != "p1" || r.doc["encounter"] != "e1" || r.doc["need_patient_banner"] != false {
		t.Errorf("token response: %s", r.raw)
	}
	if r.doc["refresh_token"] != nil {
		t.Errorf("a refresh token without offline_access or online_access: %s", r.raw)
	}
	ss := ce.must(200, get("/Session?type=authorization_code&user=User/user1"))
	if at(ss.doc, "entry", 0, "resource", "encounter", "id") != "e1" || at(ss.doc, "entry", 0, "resource", "patient", "id") != "p1" {
		t.Errorf("Session: %s", ss.raw)
	}
	banner := ce.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"need_patient_banner":true}`)).doc["id"].(string)
	if r := ce.exchange(b.signInForCode(ehrQuery(banner)), verifier); r.doc["need_patient_banner"] != true {
		t.Errorf("a LaunchContext asking for the banner: %s", r.raw)
	}
	// The EHR's context names the patient: launch/patient shows no picker.
	if code := b.signInForCode(ehrQuery(launch, "scope", "launch launch/patient")); ce.exchange(code, verifier).doc["patient"] != "p1" {
		t.Error("EHR launch with launch/patient")
	}

	// A launch whose patient the user may not read.
	hidden := ce.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p3"}}`)).doc["id"].(string)
	missing := ce.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/nobody"}}`)).doc["id"].(string)
	for name, l := range map[string]string{"unreadable patient": hidden, "missing patient": missing} {
		p := b.get(ehrQuery(l))
		f := p.fields()
		f.Set("decision", "allow")
		if to := b.post("/auth/consent", f).redirect(t); to == nil || to.Query().Get("error") != "access_denied" || to.Query().Get("state") != "st-1" {
			t.Errorf("%s: %v", name, to)
		}
	}

	otherClient := ce.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p1"},"client":{"reference":"Client/other"}}`)).doc["id"].(string)
	cases := []struct{ name, query, code string }{
		{"unknown launch", ehrQuery("nope"), "invalid_request"},
		{"malformed launch", ehrQuery("../x"), "invalid_request"},
		{"another client's launch", ehrQuery(otherClient), "invalid_request"},
		{"launch without the launch scope", ehrQuery(launch, "scope", "openid"), "invalid_request"},
		{"launch scope without launch", authorizeQuery(challenge, "scope", "launch"), "invalid_request"},
	}
	check := func(name, query, code string) {
		p := b.get(query)
		to := p.redirect(t)
		if p.status != http.StatusFound || to == nil || to.Query().Get("error") != code || to.Query().Get("error_description") == "" || to.Query().Get("state") != "st-1" {
			t.Errorf("%s: %d %v %s", name, p.status, to, p.body)
		}
	}
	for _, tc := range cases {
		check(tc.name, tc.query, tc.code)
	}
	// An hour on, the launch has expired.
	clk.Advance(time.Hour)
	check("expired launch", ehrQuery(launch), "invalid_request")
}

// offline_access and online_access: a sign-in gets a refresh token only when it asks
// for one of them; offline_access's outlives the sign-in, online_access's dies with it
// (conformance L7, L8). The password grant keeps following the client's settings
// (TestPasswordGrantFlow).
func TestLaunchRefreshAccess(t *testing.T) { forEachBackend(t, testLaunchRefreshAccess) }

func testLaunchRefreshAccess(t *testing.T) {
	ce := newCodeEnv(t)
	ce.must(200, yamlPut("/Client/codeapp", codeAppYAML+"first_party: true\n"))
	b := ce.browser(t)
	verifier, challenge := pkcePair(t)
	tokens := func(scope string) *resp {
		r := ce.exchange(b.signInForCode(authorizeQuery(challenge, "scope", scope)), verifier)
		checkTokenResponse(t, r)
		return r
	}
	refresh := func(r *resp) *resp {
		rt, _ := r.doc["refresh_token"].(string)
		return token(ce.env, url.Values{"grant_type": {"refresh_token"}, "client_id": {"codeapp"}, "refresh_token": {rt}})
	}
	if r := tokens("openid"); r.doc["refresh_token"] != nil {
		t.Errorf("no offline_access, no online_access, yet a refresh token: %s", r.raw)
	}
	offline, online := tokens("offline_access"), tokens("online_access")
	for _, r := range []*resp{offline, online} {
		if r.doc["refresh_token"] == nil {
			t.Fatalf("no refresh token: %s", r.raw)
		}
	}
	online = refresh(online)
	checkTokenResponse(t, online)

	// Sign out: offline_access refreshes still, online_access no more.
	p := b.get("/auth/logout")
	b.post("/auth/logout", p.fields())
	checkTokenResponse(t, refresh(offline))
	if got := oauthErrorOf(t, refresh(online), 400); got != "invalid_grant" {
		t.Errorf("online_access after sign-out: %s", got)
	}
}

// An EHR launch driven by real client libraries: golang.org/x/oauth2 sends the launch
// parameter and reads patient and encounter from the token response; coreos/go-oidc
// verifies the ID token and reads its fhirUser claim (conformance L4, L6, L9).
func TestLaunchClientLibraries(t *testing.T) { forEachBackend(t, testLaunchClientLibraries) }

func testLaunchClientLibraries(t *testing.T) {
	ce := newCodeEnv(t)
	launchFixture(t, ce)
	launch := ce.must(201, post("/LaunchContext", `{"resourceType":"LaunchContext","patient":{"reference":"Patient/p2"},"encounter":{"reference":"Encounter/e1"}}`)).doc["id"].(string)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, ce.base)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: "codeapp", Endpoint: provider.Endpoint(), RedirectURL: codeRedirect,
		Scopes: []string{"launch", oidc.ScopeOpenID, "fhirUser", "patient/*.read", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("launch", launch))
	code := ce.browser(t).signInForCode(strings.TrimPrefix(authURL, ce.base))
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.Extra("patient") != "p2" || tok.Extra("encounter") != "e1" || tok.RefreshToken == "" {
		t.Errorf("token: patient %v encounter %v refresh %q", tok.Extra("patient"), tok.Extra("encounter"), tok.RefreshToken)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "codeapp"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		FHIRUser string `json:"fhirUser"`
	}
	if err := idt.Claims(&claims); err != nil || claims.FHIRUser != ce.base+"/fhir/Patient/p1" {
		t.Errorf("fhirUser %q (%v)", claims.FHIRUser, err)
	}
	// A refresh through the library keeps the context.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.Extra("patient") != "p2" {
		t.Errorf("refresh: patient %v", fresh.Extra("patient"))
	}
}
