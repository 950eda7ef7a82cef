package auth

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// A browser's sign-in is a Session of its own kind (type and token_format "browser"),
// named by the random value of an HttpOnly cookie that is stored only as its hash, in the
// place of an access token. So deleting the Session, or the User changes that close a
// user's Sessions, sign the browser out on every instance at once, and the cookie's value
// is never a bearer token: Authenticate accepts a token only in the form its Session
// issued (conformance A6).

// BrowserSessionTTL is how long a browser stays signed in.
const BrowserSessionTTL = 12 * time.Hour

// browserFormat is the type and token_format of browser Sessions.
const browserFormat = "browser"

// Browser is a signed-in browser.
type Browser struct {
	// SessionID is the id of its Session resource.
	SessionID string
	UserID    string
	// User is the User without its password.
	User     map[string]any
	AuthTime time.Time
}

// OpenBrowser records a sign-in of user and returns the cookie value that names it.
func (s *Sessions) OpenBrowser(ctx context.Context, user map[string]any) (string, error) {
	now := s.clock()
	sid := resources.NewID()
	uid, _ := user["id"].(string)
	cookie := randomToken()
	exp := now.Add(BrowserSessionTTL).Unix()
	doc := map[string]any{
		"resourceType":      SessionType,
		"id":                sid,
		"type":              browserFormat,
		"token_format":      browserFormat,
		"user":              map[string]any{"resourceType": "User", "id": uid},
		"jti":               sid,
		"start":             resources.FormatInstant(now),
		"exp":               exp,
		"ends":              exp,
		"access_token_hash": hashToken(cookie),
	}
	if _, _, err := s.svc.Create(resources.WithFreshID(resources.WithTrusted(ctx)), SessionType, doc, resources.CreateOptions{KeepID: true}); err != nil {
		return "", err
	}
	return cookie, nil
}

// Browser returns the signed-in browser that cookie names; nil when it names no open,
// unexpired browser Session of an active User. It reads the store every time: browser
// requests are few, and so a closed Session is seen at once by every instance.
func (s *Sessions) Browser(ctx context.Context, cookie string) (*Browser, error) {
	if cookie == "" || len(cookie) > 256 {
		return nil, nil
	}
	r, err := s.svc.FindByToken(ctx, SessionType, "access-token", hashToken(cookie))
	if err != nil || r == nil || r.Deleted {
		return nil, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return nil, resources.Internal(err)
	}
	exp, _ := number(doc["exp"])
	if !issuedAs(doc, browserFormat) || s.now().Unix() >= exp {
		return nil, nil
	}
	uid := refID(doc["user"])
	user, err := s.dir.User(ctx, uid)
	if err != nil || user == nil {
		return nil, err
	}
	start, _ := doc["start"].(string)
	at, _ := time.Parse(time.RFC3339, start)
	return &Browser{SessionID: r.ID, UserID: uid, User: user, AuthTime: at}, nil
}

// browserOpen reports whether the browser Session id is still open and unexpired.
func (s *Sessions) browserOpen(ctx context.Context, id string) (bool, error) {
	r, err := s.svc.Current(ctx, SessionType, id)
	if err != nil || r == nil {
		return false, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return false, resources.Internal(err)
	}
	exp, _ := number(doc["exp"])
	return issuedAs(doc, browserFormat) && s.now().Unix() < exp, nil
}

// CSRFToken is the token the forms of a browser carry: derived from the value of its
// cookie (the sign-in cookie, or before sign-in the login cookie), which scripts and
// other sites cannot read, so a form posted from elsewhere cannot carry it. The hash
// gives nothing of the cookie away (conformance A6).
func CSRFToken(cookie string) string {
	return b64(sha256Sum("fhirbox-csrf\x00" + cookie))
}

// CheckCSRF reports whether token is the CSRF token of cookie, in constant time.
func CheckCSRF(cookie, token string) bool {
	if cookie == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(CSRFToken(cookie)), []byte(token)) == 1
}

// NewCookieValue is a fresh random value for a cookie of the login form.
func NewCookieValue() string { return randomToken() }
