package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// The authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636): /auth/authorize
// validates the request (ParseAuthorizeRequest), the browser signs in and consents
// (pkg/ui, pkg/server/signin.go), IssueCode stores a one-time code, and
// AuthorizationCodeGrant exchanges it at /auth/token.

// maxAuthorizeParam bounds each parameter of an authorization request: they travel
// through the login and consent forms and are stored with the code.
const maxAuthorizeParam = 2048

// AuthorizeRequest is a validated authorization request of the code flow.
type AuthorizeRequest struct {
	Client *ClientConfig
	// RedirectURI is where the answer goes: the one the request named, or the client's
	// only registered one; RedirectGiven says which (the token request must then repeat
	// it, RFC 6749 §4.1.3).
	RedirectURI   string
	RedirectGiven bool
	State, Nonce  string
	Scope         []string
	// Challenge is the PKCE code_challenge (S256), "" when the request had none.
	Challenge string
	// Prompt is OpenID Connect's prompt parameter; only "none" changes anything.
	Prompt string
	// Launch is SMART's launch parameter of an EHR launch, "" when there is none.
	Launch string
	// Context is the launch context the code will carry: the EHR launch's, once the
	// server has resolved Launch, or the patient picked in a standalone launch.
	Context LaunchContext
	// BrowserSession is the id of the browser Session that signed in, recorded by a
	// grant with online_access, whose refresh token lives only as long as it does.
	BrowserSession string
}

// NeedsPatient reports whether the user must still pick a patient: the scope asks for
// launch/patient and no launch context names one (conformance L1).
func (r *AuthorizeRequest) NeedsPatient() bool {
	return slices.Contains(r.Scope, "launch/patient") && r.Context.Patient == ""
}

// IsCodeFlow reports whether an /auth/authorize query is for the authorization code
// flow rather than the redirect-protected password flow (which names grant_type=password
// and no response_type).
func IsCodeFlow(q url.Values) bool {
	return q.Has("response_type") || q.Get("grant_type") != "password"
}

// ParseAuthorizeRequest validates the query of an authorization request for client.
// An error with Redirect false must be shown to the user, never sent to a redirect URI
// it cannot trust (conformance T12); with Redirect true it goes to req.RedirectURI
// (RedirectError), req being returned with it (conformance A3).
func ParseAuthorizeRequest(client *ClientConfig, q url.Values) (*AuthorizeRequest, *AuthorizeError) {
	page := func(format string, args ...any) *AuthorizeError {
		return &AuthorizeError{Code: ErrCodeInvalidRequest, Description: fmt.Sprintf(format, args...)}
	}
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(q[k]) > 1 {
			return nil, page("%s is repeated", k)
		}
	}
	registered := client.Grant("authorization_code").RedirectURIs
	if !client.Allows("authorization_code") || len(registered) == 0 {
		return nil, &AuthorizeError{Code: ErrCodeUnauthorizedClient, Description: "the client " + client.ID + " has no authorization_code grant with a registered redirect_uri"}
	}
	req := &AuthorizeRequest{Client: client}
	if u := q.Get("redirect_uri"); u != "" {
		// Exact string comparison (RFC 9700 §4.1.3, conformance S1).
		if !slices.Contains(registered, u) {
			return nil, page("redirect_uri is not one of the client's registered redirect URIs")
		}
		req.RedirectURI, req.RedirectGiven = u, true
	} else if len(registered) == 1 {
		req.RedirectURI = registered[0]
	} else {
		return nil, page("redirect_uri is required: the client has several registered redirect URIs")
	}
	// From here on errors go back to the client, with its state (RFC 6749 §4.1.2.1).
	req.State = q.Get("state")
	redirect := func(code, format string, args ...any) (*AuthorizeRequest, *AuthorizeError) {
		return req, &AuthorizeError{Code: code, Description: fmt.Sprintf(format, args...), Redirect: true}
	}
	if len(q["state"]) > 1 {
		req.State = ""
		return redirect(ErrCodeInvalidRequest, "state is repeated")
	}
	if len(req.State) > maxAuthorizeParam {
		req.State = ""
		return redirect(ErrCodeInvalidRequest, "state is longer than %d bytes", maxAuthorizeParam)
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return redirect(ErrCodeInvalidRequest, "parameter %s is repeated", k)
		}
		if len(vs[0]) > maxAuthorizeParam {
			return redirect(ErrCodeInvalidRequest, "parameter %s is longer than %d bytes", k, maxAuthorizeParam)
		}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return redirect(ErrCodeInvalidRequest, "response_type is required: fhirbox serves response_type=code")
	default:
		return redirect("unsupported_response_type", "response_type must be code (the implicit and hybrid flows are not served)")
	}
	scope, oe := parseScope(q.Get("scope"))
	if oe != nil {
		return redirect(ErrCodeInvalidScope, "%s", oe.Description)
	}
	if bad := client.AllowsScope(scope); bad != "" {
		return redirect(ErrCodeInvalidScope, "scope %q is not allowed for client %s", bad, client.ID)
	}
	req.Scope = scope
	req.Nonce = q.Get("nonce")
	req.Prompt = q.Get("prompt")
	// PKCE: S256 only; a challenge without a method is plain, refused as well
	// (RFC 7636 §4.3, conformance P5).
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return redirect(ErrCodeInvalidRequest, "code_challenge_method without code_challenge")
	case challenge == "" && client.needsPKCE():
		return redirect(ErrCodeInvalidRequest, "code_challenge is required: this client must use PKCE with code_challenge_method=S256")
	case challenge != "" && method != "S256":
		return redirect(ErrCodeInvalidRequest, "code_challenge_method must be S256 (plain is not accepted)")
	case challenge != "" && (len(challenge) != 43 || !pkceChars(challenge)):
		return redirect(ErrCodeInvalidRequest, "code_challenge must be the base64url SHA-256 of the code_verifier: 43 characters")
	}
	req.Challenge = challenge
	// SMART's EHR launch: the launch parameter goes with the launch scope, and the scope
	// with the parameter (conformance L4). The server resolves it (Codes.Launch).
	req.Launch = q.Get("launch")
	switch hasScope := slices.Contains(scope, "launch"); {
	case req.Launch != "" && !hasScope:
		return redirect(ErrCodeInvalidRequest, "the launch parameter needs the launch scope")
	case req.Launch == "" && hasScope:
		return redirect(ErrCodeInvalidRequest, "the launch scope needs the launch parameter of an EHR launch")
	}
	return req, nil
}

// needsPKCE reports whether the client must send a PKCE challenge: a public client
// always, a confidential one when its settings say pkce: true (conformance S3, A5).
func (c *ClientConfig) needsPKCE() bool {
	return !c.HasSecret || c.Grant("authorization_code").PKCE
}

// pkceChars reports whether s uses only the unreserved characters of RFC 7636 §4.1.
func pkceChars(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~') {
			return false
		}
	}
	return true
}

// S256 is the PKCE transformation of a code verifier (RFC 7636 §4.2, conformance P1).
func S256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// RedirectError is the URL that carries err back to the client (RFC 6749 §4.1.2.1),
// with the request's state and the issuer (RFC 9207).
func (r *AuthorizeRequest) RedirectError(err *AuthorizeError, issuer string) string {
	return r.redirect(url.Values{"error": {err.Code}, "error_description": {err.Description}}, issuer)
}

// redirect adds params, the state and iss to the redirect URI, keeping its own query.
func (r *AuthorizeRequest) redirect(params url.Values, issuer string) string {
	if r.State != "" {
		params.Set("state", r.State)
	}
	params.Set("iss", issuer)
	u := r.RedirectURI
	if strings.Contains(u, "?") {
		return u + "&" + params.Encode()
	}
	return u + "?" + params.Encode()
}

// SignedIn is the browser's signed-in user, as a code records it.
type SignedIn struct {
	UserID   string
	AuthTime time.Time
}

// IssueCode stores a one-time code for req and the signed-in user and returns the URL
// to send the browser to, redirect_uri?code=…&state=…&iss=…. addr is the caller's
// address, limited as for the password flow's codes. The code is kept only as its
// hash, for ten minutes (conformance T11).
func (c *Codes) IssueCode(ctx context.Context, req *AuthorizeRequest, who SignedIn, issuer, addr string) (string, error) {
	if err := c.limitIssue(addr); err != nil {
		return "", err
	}
	fields := map[string]any{
		"user":           map[string]any{"resourceType": "User", "id": who.UserID},
		"redirect_uri":   req.RedirectURI,
		"redirect_given": req.RedirectGiven,
		"auth_time":      who.AuthTime.Unix(),
	}
	for k, v := range map[string]string{"scope": strings.Join(req.Scope, " "), "nonce": req.Nonce, "code_challenge": req.Challenge} {
		if v != "" {
			fields[k] = v
		}
	}
	for k, v := range map[string]map[string]any{"patient": Ref("Patient", req.Context.Patient),
		"encounter": Ref("Encounter", req.Context.Encounter), "browser": Ref(SessionType, req.BrowserSession)} {
		if v != nil {
			fields[k] = v
		}
	}
	if req.Context.Patient != "" {
		fields["need_patient_banner"] = req.Context.Banner
	}
	code, err := c.store(ctx, req.Client.ID, "authorization_code", fields)
	if err != nil {
		return "", err
	}
	return req.redirect(url.Values{"code": {code}}, issuer), nil
}

// limitIssue counts one more code for addr, and refuses it while the address waits:
// anyone may ask for codes, and each is a row written until the sweeper removes it.
func (c *Codes) limitIssue(addr string) error {
	// Every code counts, as a failure would: checked and counted in one step, so that
	// parallel requests get no more codes than sequential ones.
	att, wait, ok := c.issued.Begin("addr:" + addr)
	if !ok {
		secs := (&LimitedError{Wait: wait}).Seconds()
		return &AuthorizeError{Code: "temporarily_unavailable", Status: http.StatusTooManyRequests, RetryAfter: secs, Redirect: true,
			Description: fmt.Sprintf("too many authorization requests from this address; try again in %d seconds", secs)}
	}
	att.Fail()
	return nil
}

// spentCode is an authorization code found by its hash and marked used.
type spentCode struct {
	doc map[string]any
	// reused is set when the code had been used before: the Session it issued, if any,
	// is closed by the caller.
	reused bool
}

// spend finds code and marks it used in one conditional write, recording the id of
// the Session it is about to issue: of two concurrent redeemers only one wins, and a
// later use finds the Session to close (RFC 6749 §4.1.2, conformance T11). nil: no
// such code.
func (c *Codes) spend(ctx context.Context, code, sessionID string) (*spentCode, error) {
	r, doc, err := c.find(ctx, code)
	if err != nil || r == nil {
		return nil, err
	}
	if g, _ := doc["grant_type"].(string); g != "authorization_code" {
		return nil, nil
	}
	if used, _ := doc["used"].(bool); used {
		return &spentCode{doc: doc, reused: true}, nil
	}
	doc["used"] = true
	doc["session"] = sessionID
	_, _, err = c.svc.Update(resources.WithTrusted(ctx), CodeType, r.ID, doc, resources.ETag(r.VersionID))
	if resources.ErrorCode(err) == resources.CodePreconditionFailed {
		return &spentCode{doc: doc, reused: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &spentCode{doc: doc}, nil
}

// verifierMatches checks a PKCE code_verifier against the challenge, in constant time.
func verifierMatches(verifier, challenge string) bool {
	return subtle.ConstantTimeCompare([]byte(S256(verifier)), []byte(challenge)) == 1
}

func sha256Sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
