package auth

import (
	"context"
	"maps"
	"net/url"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// CodeType is the resource type of one-time codes issued by /auth/authorize.
const CodeType = "AuthorizationCode"

// codeTTL is how long a code stays usable (RFC 6749 §4.1.2 recommends at most 10 min).
const codeTTL = 10 * time.Minute

// Codes issues and redeems one-time codes. A code is stored as an AuthorizationCode
// resource holding only its hash, so that it works on every instance, once.
type Codes struct {
	svc *resources.Service
	now func() time.Time
	// issued slows an address that asks for many codes: anyone may ask, and each code
	// is a row written until the sweeper removes it.
	issued *Limiter
}

// Code issuing limits per client address: the first codesFree within codesForget
// are free, then each waits twice as long as the last, up to codesMaxWait. A person
// signing in asks for one code a sign-in.
const (
	codesFree    = 30
	codesForget  = 10 * time.Minute
	codesMaxWait = time.Minute
)

// NewCodes returns Codes stored through svc. It registers with svc the checks of the
// LaunchContexts that EHR launches bind to codes (launch.go).
func NewCodes(svc *resources.Service, now func() time.Time) *Codes {
	if now == nil {
		now = time.Now
	}
	c := &Codes{svc: svc, now: now, issued: NewLimiter(LimiterOptions{
		// The codesFree-th code sets the first wait: the one after it waits.
		Free: codesFree - 1, Base: time.Second, Max: codesMaxWait, Forget: codesForget, Now: now,
	})}
	svc.AddValidator(LaunchType, c.validateLaunch)
	svc.AddAmender(LaunchType, c.amendLaunch)
	return c
}

// AuthorizeError is an /auth/authorize failure. Redirect is false when the client or
// its redirect URI cannot be trusted: the error is then shown, never redirected
// (conformance T12). Status is the HTTP status to answer with (400 when zero) and RetryAfter,
// in seconds, goes with a 429.
type AuthorizeError struct {
	Code, Description string
	Redirect          bool
	Status            int
	RetryAfter        int
}

func (e *AuthorizeError) Error() string { return e.Code + ": " + e.Description }

// AuthorizePassword answers GET /auth/authorize?client_id=…&grant_type=password&state=…
// for a client whose password grant has a redirect_uri: it issues a code and returns the
// URL to redirect to, redirect_uri#code=…&state=…. addr is the caller's address: one
// that asks for more than codesFree codes in a few minutes is told to wait (429).
func (c *Codes) AuthorizePassword(ctx context.Context, client *ClientConfig, q url.Values, addr string) (string, error) {
	cfg := client.Grant("password")
	if !client.Allows("password") || cfg.RedirectURI == "" {
		return "", &AuthorizeError{Code: "unauthorized_client", Description: "the client has no redirect-protected password grant"}
	}
	if err := c.limitIssue(addr); err != nil {
		return "", err
	}
	code, err := c.store(ctx, client.ID, "password", nil)
	if err != nil {
		return "", err
	}
	frag := url.Values{"code": {code}}
	if st := q.Get("state"); st != "" {
		frag.Set("state", st)
	}
	return cfg.RedirectURI + "#" + frag.Encode(), nil
}

// Redeem spends code for client and grant: true once, for a code issued to that client
// that has not expired; false for anything else, and the code is spent either way.
func (c *Codes) Redeem(ctx context.Context, client, grant, code string) (bool, error) {
	r, doc, err := c.find(ctx, code)
	if err != nil || r == nil {
		return false, err
	}
	// Deleting is the spending: of two concurrent redeemers only one deletes a live code.
	del, err := c.svc.Delete(ctx, CodeType, r.ID)
	if err != nil || del == nil {
		return false, err
	}
	exp, _ := number(doc["exp"])
	g, _ := doc["grant_type"].(string)
	return refID(doc["client"]) == client && g == grant && c.now().Unix() < exp, nil
}

// store keeps a new code for client and grant, with fields of its own beside the common
// ones, as an AuthorizationCode holding only its hash; it returns the code.
func (c *Codes) store(ctx context.Context, client, grant string, fields map[string]any) (string, error) {
	code := randomToken()
	now := c.now().UTC()
	doc := map[string]any{
		"resourceType": CodeType,
		"client":       map[string]any{"resourceType": "Client", "id": client},
		"grant_type":   grant,
		"exp":          now.Add(codeTTL).Unix(),
		"issued":       resources.FormatInstant(now),
		"code_hash":    hashToken(code),
	}
	maps.Copy(doc, fields)
	if _, _, err := c.svc.Create(resources.WithTrusted(ctx), CodeType, doc, resources.CreateOptions{}); err != nil {
		return "", err
	}
	return code, nil
}

// find returns the stored code, nil when there is none.
func (c *Codes) find(ctx context.Context, code string) (*resources.Resource, map[string]any, error) {
	if code == "" || len(code) > 256 {
		return nil, nil, nil
	}
	r, err := c.svc.FindByToken(ctx, CodeType, "code", hashToken(code))
	if err != nil || r == nil {
		return nil, nil, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return nil, nil, resources.Internal(err)
	}
	return r, doc, nil
}
