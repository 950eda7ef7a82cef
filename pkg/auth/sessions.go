package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirbox/fhirbox/resources"
)

// SessionType is the resource type that records issued tokens.
const SessionType = "Session"

// maxRotated bounds the refresh-token hashes a Session remembers for reuse detection.
const maxRotated = 20

// Sessions issues tokens, records one Session resource per grant, and authenticates
// bearer tokens through an in-process cache that writes of Sessions, Users and Clients
// invalidate (Forget).
type Sessions struct {
	log    *slog.Logger
	svc    *resources.Service
	keys   *Keys
	issuer string
	now    func() time.Time
	cache  *sessionCache
}

// NewSessions returns Sessions storing through svc, signing JWTs with keys and naming
// issuer (FHIRBOX_BASE_URL) in them. now nil is time.Now. It registers with svc what
// keeps Sessions sound: they are written by the server only (API writes get 422), and
// deleting a Client closes its Sessions.
func NewSessions(svc *resources.Service, keys *Keys, issuer string, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	s := &Sessions{log: slog.Default(), svc: svc, keys: keys, issuer: issuer, now: now, cache: newSessionCache()}
	svc.AddValidator(SessionType, serverWritten(SessionType))
	svc.AddValidator(CodeType, serverWritten(CodeType))
	svc.OnCommit("Client", s.closeSessionsOfDeletedClient)
	return s
}

// SetLogger sets where failures to close sessions are reported (default slog.Default).
func (s *Sessions) SetLogger(l *slog.Logger) { s.log = l }

// Grant is what a token pair is issued for.
type Grant struct {
	// Type is the grant: password or client_credentials.
	Type   string
	Client *ClientConfig
	// User is the User resource (password removed) for the password grant, nil else.
	User map[string]any
	// Audience is the requested audience; empty means the client id.
	Audience string
	// Scope is the granted scope, none when empty. fhirbox grants what the client asks
	// for and records it on the Session and in JWTs; AccessPolicies decide what it
	// allows.
	Scope []string
}

// TokenResponse is the token endpoint's answer (CONFORMANCE C1).
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the access token's scope, when it has one.
	Scope    string         `json:"scope,omitempty"`
	Userinfo map[string]any `json:"userinfo,omitempty"`
}

// hashToken is how tokens are kept at rest: only their SHA-256, hex encoded.
func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// randomToken is 32 random bytes, base64url: an opaque token.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue creates a Session for g and returns its tokens.
func (s *Sessions) Issue(ctx context.Context, g Grant) (*TokenResponse, error) {
	cfg := g.Client.Grant(g.Type)
	now := s.now().UTC().Truncate(time.Second)
	sid := resources.NewID()
	aud := g.Audience
	if aud == "" {
		aud = g.Client.ID
	}
	sub := g.Client.ID
	var userID string
	if g.User != nil {
		userID, _ = g.User["id"].(string)
		sub = userID
	}
	doc := map[string]any{
		"resourceType": SessionType,
		"id":           sid,
		"type":         g.Type,
		"client":       map[string]any{"resourceType": "Client", "id": g.Client.ID},
		"audience":     aud,
		"jti":          sid,
		"start":        resources.FormatInstant(now),
		"token_format": tokenFormat(cfg.JWT),
	}
	if userID != "" {
		doc["user"] = map[string]any{"resourceType": "User", "id": userID}
	}
	setScope(doc, strings.Join(g.Scope, " "), strings.Join(g.Scope, " "))
	resp, err := s.mint(doc, sub, cfg, g.Client, now)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.svc.Create(resources.WithFreshID(resources.WithTrusted(ctx)), SessionType, doc, resources.CreateOptions{KeepID: true}); err != nil {
		return nil, err
	}
	if g.User != nil && g.Type == "password" {
		resp.Userinfo = g.User
	}
	return resp, nil
}

func tokenFormat(jwt bool) string {
	if jwt {
		return "jwt"
	}
	return "opaque"
}

// setScope records on a Session the scope of its grant (what its refresh token may
// ask for again) and that of its current access token; no scope leaves both out.
func setScope(doc map[string]any, granted, access string) {
	delete(doc, "scope")
	delete(doc, "access_scope")
	if granted != "" {
		doc["scope"] = granted
	}
	if access != "" {
		doc["access_scope"] = access
	}
}

// mint makes a new token pair for the Session doc (whose id is the jti) and records
// their hashes and expiry in doc. The access token's scope is doc's access_scope.
func (s *Sessions) mint(doc map[string]any, sub string, cfg GrantConfig, client *ClientConfig, now time.Time) (*TokenResponse, error) {
	sid, _ := doc["id"].(string)
	aud, _ := doc["audience"].(string)
	scope, _ := doc["access_scope"].(string)
	exp := now.Add(cfg.AccessTokenTTL)
	resp := &TokenResponse{TokenType: "Bearer", ExpiresIn: int64(cfg.AccessTokenTTL / time.Second), Scope: scope}
	// A refresh mints in the client's current format, which may have changed since the
	// grant: the Session records the form of the tokens it holds now (see Authenticate).
	doc["token_format"] = tokenFormat(cfg.JWT)
	if cfg.JWT {
		// jti names the Session; tid tells apart the tokens a Session issues within one
		// second, whose other claims are all the same.
		claims := jwt.MapClaims{
			"iss": s.issuer, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": exp.Unix(),
			"jti": sid, "client_id": client.ID, "tid": randomToken()[:16],
		}
		if scope != "" {
			claims["scope"] = scope // RFC 9068 §2.2.3: space-separated, as in the response
		}
		t, err := s.keys.Sign(claims)
		if err != nil {
			return nil, resources.Internal(err)
		}
		resp.AccessToken = t
	} else {
		resp.AccessToken = randomToken()
	}
	doc["exp"] = exp.Unix()
	doc["access_token_hash"] = hashToken(resp.AccessToken)
	if cfg.RefreshToken && client.Allows("refresh_token") {
		var rexp time.Time
		if cfg.RefreshTokenTTL > 0 {
			rexp = now.Add(cfg.RefreshTokenTTL)
			doc["refresh_token_exp"] = rexp.Unix()
		} else {
			delete(doc, "refresh_token_exp")
		}
		if cfg.JWT {
			claims := jwt.MapClaims{"iss": s.issuer, "sub": sub, "aud": aud, "iat": now.Unix(), "jti": sid, "client_id": client.ID, "typ": "refresh", "tid": randomToken()[:16]}
			// A JWT needs an exp; the Session's sliding refresh_token_exp is what counts.
			claims["exp"] = now.Add(10 * 365 * 24 * time.Hour).Unix()
			if !rexp.IsZero() {
				claims["exp"] = rexp.Unix()
			}
			t, err := s.keys.Sign(claims)
			if err != nil {
				return nil, resources.Internal(err)
			}
			resp.RefreshToken = t
		} else {
			resp.RefreshToken = randomToken()
		}
		doc["refresh_token_hash"] = hashToken(resp.RefreshToken)
		if rexp.IsZero() {
			// A refresh token without expiry keeps the Session usable for as long as
			// the client keeps it: it never ends by itself.
			delete(doc, "ends")
		} else {
			doc["ends"] = max(exp.Unix(), rexp.Unix())
		}
	} else {
		doc["ends"] = exp.Unix()
	}
	return resp, nil
}

// Refresh rotates the refresh token rt of client: the Session gets a new token pair
// and remembers the old refresh token, whose reuse closes the Session (CONFORMANCE S2).
// scope, when given, narrows the new access token's scope; the Session keeps its
// grant's scope for later refreshes.
// authenticated says whether the client proved its secret; unauthenticated is the
// error to give when the Session's grant needs it.
func (s *Sessions) Refresh(ctx context.Context, client *ClientConfig, authenticated bool, rt string, scope []string, userOf func(ctx context.Context, id string) (map[string]any, error), unauthenticated func() error) (*TokenResponse, error) {
	bad := oauthErr(ErrCodeInvalidGrant, "the refresh token is invalid, expired or revoked")
	if rt == "" || len(rt) > 8192 {
		return nil, bad
	}
	h := hashToken(rt)
	res, err := s.svc.FindByToken(ctx, SessionType, "refresh-token", h)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, bad
	}
	doc, err := decode(res.Content)
	if err != nil {
		return nil, resources.Internal(err)
	}
	if cur, _ := doc["refresh_token_hash"].(string); cur != h {
		// An old refresh token came back: someone holds a copy. End the whole family.
		if _, err := s.svc.Delete(ctx, SessionType, res.ID); err != nil {
			return nil, err
		}
		return nil, oauthErr(ErrCodeInvalidGrant, "the refresh token was already used; the session is closed")
	}
	if refID(doc["client"]) != client.ID {
		return nil, bad
	}
	grant, _ := doc["type"].(string)
	if !authenticated && client.needsSecretToRefresh(grant) {
		return nil, unauthenticated()
	}
	cfg := client.Grant(grant)
	if !cfg.RefreshToken || !client.Allows("refresh_token") {
		return nil, oauthErr(ErrCodeUnauthorizedClient, "client %s may not refresh tokens", client.ID)
	}
	now := s.now().UTC().Truncate(time.Second)
	if rexp, ok := number(doc["refresh_token_exp"]); ok && now.Unix() >= rexp {
		return nil, bad
	}
	sub := client.ID
	if uid := refID(doc["user"]); uid != "" {
		user, err := userOf(ctx, uid)
		if err != nil {
			return nil, err
		}
		if user == nil {
			return nil, bad
		}
		sub = uid
	}
	granted, _ := doc["scope"].(string)
	access, oe := narrowScope(granted, scope)
	if oe != nil {
		return nil, oe
	}
	// A scope taken off the client's list since the grant is not issued again.
	if bad := client.AllowsScope(strings.Fields(access)); bad != "" {
		return nil, oauthErr(ErrCodeInvalidScope, "scope %q is no longer allowed for client %s: refresh with a narrower scope", bad, client.ID)
	}
	setScope(doc, granted, access)
	rotated, _ := doc["rotated_refresh_hashes"].([]any)
	rotated = append(rotated, h)
	if len(rotated) > maxRotated {
		rotated = rotated[len(rotated)-maxRotated:]
	}
	doc["rotated_refresh_hashes"] = rotated
	resp, err := s.mint(doc, sub, cfg, client, now)
	if err != nil {
		return nil, err
	}
	// If-Match makes two refreshes with one token race safely: the loser gets 412,
	// which is a reuse.
	_, _, err = s.svc.Update(resources.WithTrusted(ctx), SessionType, res.ID, doc, resources.ETag(res.VersionID))
	if resources.ErrorCode(err) == resources.CodePreconditionFailed {
		return nil, oauthErr(ErrCodeInvalidGrant, "the refresh token was already used")
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Close ends a Session: its tokens stop working at once, on every instance.
func (s *Sessions) Close(ctx context.Context, id string) error {
	_, err := s.svc.Delete(ctx, SessionType, id)
	if resources.ErrorCode(err) == resources.CodeNotFound {
		return nil
	}
	return err
}

// ErrInvalidBearer is the one answer for a bearer token that is malformed, unknown,
// expired or revoked (RFC 6750 invalid_token).
var ErrInvalidBearer = errors.New("invalid_token")

// Authenticate returns the identity behind a bearer token.
func (s *Sessions) Authenticate(ctx context.Context, token string, load Loader) (*Identity, error) {
	if token == "" || len(token) > 8192 {
		return nil, ErrInvalidBearer
	}
	now := s.now()
	var claims jwt.MapClaims
	var e *sessionEntry
	if strings.Count(token, ".") == 2 {
		c, err := s.keys.Verify(ctx, token, VerifyOptions{Issuer: s.issuer})
		if err != nil {
			return nil, ErrInvalidBearer
		}
		if typ, ok := c["typ"]; ok && typ != "access" {
			return nil, ErrInvalidBearer // refresh and ID tokens are no access tokens (J7)
		}
		jti, _ := c["jti"].(string)
		if jti == "" || !resources.ValidID(jti) {
			return nil, ErrInvalidBearer
		}
		if e, err = s.cache.get(ctx, "jti:"+jti, func(ctx context.Context) (*resources.Resource, error) {
			return s.svc.Current(ctx, SessionType, jti)
		}, load); err != nil || e == nil {
			return nil, orInvalid(err)
		}
		if aud, _ := e.session["audience"].(string); !audienceHas(c["aud"], aud) {
			return nil, ErrInvalidBearer
		}
		// A JWT names its Session by jti, which is no secret: anyone holding the signing
		// key could name an opaque Session (the root client's, say) in a JWT of their
		// own. Only a Session that issued JWTs is reachable that way.
		if !issuedAs(e.session, "jwt") {
			return nil, ErrInvalidBearer
		}
		claims = c
	} else {
		h := hashToken(token)
		var err error
		if e, err = s.cache.get(ctx, "hash:"+h, func(ctx context.Context) (*resources.Resource, error) {
			return s.svc.FindByToken(ctx, SessionType, "access-token", h)
		}, load); err != nil || e == nil {
			return nil, orInvalid(err)
		}
		if e.accessHash != h {
			return nil, ErrInvalidBearer // rotated away by a refresh
		}
		if !issuedAs(e.session, "opaque") {
			return nil, ErrInvalidBearer
		}
	}
	if !now.Before(e.exp) {
		return nil, ErrInvalidBearer
	}
	return &Identity{
		ClientID: e.clientID, Client: e.client, UserID: e.userID, User: e.user,
		SessionID: e.id, Session: e.session, JWT: claims,
	}, nil
}

// issuedAs reports whether the Session's current tokens are of format (jwt or
// opaque): a token is accepted only in the form its Session issued.
func issuedAs(session map[string]any, format string) bool {
	f, _ := session["token_format"].(string)
	return f == format
}

func orInvalid(err error) error {
	if err != nil {
		return err
	}
	return ErrInvalidBearer
}

// audienceHas reports whether a JWT aud claim (a string or a list) names aud.
func audienceHas(claim any, aud string) bool {
	switch v := claim.(type) {
	case string:
		return v == aud
	case []any:
		return slices.Contains(v, any(aud))
	}
	return false
}

// Forget drops cached sessions that a committed write may have changed.
func (s *Sessions) Forget(ev resources.WriteEvent) { s.cache.forget(ev) }

// refID reads the id of a reference in either form: {resourceType, id} or {reference}.
func refID(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	if id, ok := m["id"].(string); ok {
		return id
	}
	if ref, ok := m["reference"].(string); ok {
		if _, id, ok := strings.Cut(ref, "/"); ok {
			return id
		}
	}
	return ""
}

// number reads a JSON number (float64 or json.Number).
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func decode(content []byte) (map[string]any, error) {
	var doc map[string]any
	err := json.Unmarshal(content, &doc)
	return doc, err
}

// SessionOf finds the live Session a token belongs to, whether it is an access token
// (expired or not) or a refresh token, for DELETE /Session (RFC 7009 lets a client
// revoke either). A JWT access token is found only while it verifies. "" when none.
func (s *Sessions) SessionOf(ctx context.Context, token string) (string, error) {
	if token == "" || len(token) > 8192 {
		return "", nil
	}
	h := hashToken(token)
	for _, param := range []string{"access-token", "refresh-token"} {
		r, err := s.svc.FindByToken(ctx, SessionType, param, h)
		if err != nil || r != nil {
			if r == nil {
				return "", err
			}
			return r.ID, err
		}
	}
	return "", nil
}
