package auth

import (
	"context"
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
}

// NewCodes returns Codes stored through svc.
func NewCodes(svc *resources.Service, now func() time.Time) *Codes {
	if now == nil {
		now = time.Now
	}
	return &Codes{svc: svc, now: now}
}

// AuthorizeError is an /auth/authorize failure. Redirect is false when the client or
// its redirect URI cannot be trusted: the error is then shown, never redirected (T12).
type AuthorizeError struct {
	Code, Description string
	Redirect          bool
}

func (e *AuthorizeError) Error() string { return e.Code + ": " + e.Description }

// AuthorizePassword answers GET /auth/authorize?client_id=…&grant_type=password&state=…
// for a client whose password grant has a redirect_uri: it issues a code and returns the
// URL to redirect to, redirect_uri#code=…&state=….
func (c *Codes) AuthorizePassword(ctx context.Context, client *ClientConfig, q url.Values) (string, error) {
	cfg := client.Grant("password")
	if !client.Allows("password") || cfg.RedirectURI == "" {
		return "", &AuthorizeError{Code: "unauthorized_client", Description: "the client has no redirect-protected password grant"}
	}
	code := randomToken()
	now := c.now().UTC()
	doc := map[string]any{
		"resourceType": CodeType,
		"client":       map[string]any{"resourceType": "Client", "id": client.ID},
		"grant_type":   "password",
		"exp":          now.Add(codeTTL).Unix(),
		"issued":       resources.FormatInstant(now),
		"code_hash":    hashToken(code),
	}
	if _, _, err := c.svc.Create(resources.WithTrusted(ctx), CodeType, doc, resources.CreateOptions{}); err != nil {
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
	if code == "" || len(code) > 256 {
		return false, nil
	}
	r, err := c.svc.FindByToken(ctx, CodeType, "code", hashToken(code))
	if err != nil || r == nil {
		return false, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return false, resources.Internal(err)
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
