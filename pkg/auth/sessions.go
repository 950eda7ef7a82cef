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
	dir    Loader
	issuer string
	now    func() time.Time
	cache  *sessionCache
}

// NewSessions returns Sessions storing through svc, signing JWTs with keys and naming
// issuer (FHIRBOX_BASE_URL) in them, and reading through dir the User and Client a
// Session acts for. now nil is time.Now. It registers with svc what keeps Sessions
// sound: they are written by the server only (API writes get 422), and deleting a
// Client, or deleting, deactivating or giving a new password to a User, closes their
// Sessions.
func NewSessions(svc *resources.Service, keys *Keys, dir Loader, issuer string, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	s := &Sessions{log: slog.Default(), svc: svc, keys: keys, dir: dir, issuer: issuer, now: now, cache: newSessionCache()}
	svc.AddValidator(SessionType, serverWritten(SessionType))
	svc.AddValidator(CodeType, serverWritten(CodeType))
	svc.OnCommit("Client", s.closeSessionsOfDeletedClient)
	svc.OnCommit("User", s.closeSessionsOfChangedUser)
	return s
}

// clock is the time tokens are issued at: whole seconds, as JWT times are.
func (s *Sessions) clock() time.Time { return s.now().UTC().Truncate(time.Second) }

// SetLogger sets where failures to close sessions are reported (default slog.Default).
func (s *Sessions) SetLogger(l *slog.Logger) { s.log = l }

// Grant is what a token pair is issued for.
type Grant struct {
	// Type is the grant: password, client_credentials or authorization_code.
	Type   string
	Client *ClientConfig
	// User is the User resource (password removed) for the grants that act for a user,
	// nil else.
	User map[string]any
	// Audience is the requested audience; empty means the client id.
	Audience string
	// Scope is the granted scope, none when empty. fhirbox grants what the client asks
	// for and records it on the Session and in JWTs; AccessPolicies decide what it
	// allows.
	Scope []string
	// ID is the Session's id when the grant chose it beforehand (an authorization code
	// records the Session it issues); "" makes a new one.
	ID string
	// Patient and Encounter are the SMART launch context, by id ("" for none): recorded
	// on the Session as references, kept across refreshes, and returned in every token
	// response (conformance L6).
	Patient, Encounter string
	// Banner is SMART's need_patient_banner of the launch (LaunchContext.Banner), sent
	// with the patient in every token response.
	Banner bool
	// Browser is the browser Session a sign-in with online_access (and no
	// offline_access) depends on: its refresh token works only while that one is open
	// (conformance L8).
	Browser string
}

// TokenResponse is the token endpoint's answer (conformance C1).
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the access token's scope, when it has one.
	Scope    string         `json:"scope,omitempty"`
	Userinfo map[string]any `json:"userinfo,omitempty"`
	// IDToken is OpenID Connect's ID token, issued with the authorization code grant
	// when openid is in scope.
	IDToken string `json:"id_token,omitempty"`
	// Patient and Encounter are SMART's launch context, by id, when the Session has one.
	Patient   string `json:"patient,omitempty"`
	Encounter string `json:"encounter,omitempty"`
	// NeedPatientBanner is SMART's need_patient_banner, sent with a patient: whether the
	// app must show which patient it is about (conformance L10).
	NeedPatientBanner *bool `json:"need_patient_banner,omitempty"`
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
	now := s.clock()
	sid := g.ID
	if sid == "" {
		sid = resources.NewID()
	}
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
	for k, v := range map[string]map[string]any{"patient": Ref("Patient", g.Patient), "encounter": Ref("Encounter", g.Encounter),
		"browser": Ref(SessionType, g.Browser)} {
		if v != nil {
			doc[k] = v
		}
	}
	if g.Patient != "" {
		doc["need_patient_banner"] = g.Banner
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
	resp := &TokenResponse{TokenType: "Bearer", ExpiresIn: int64(cfg.AccessTokenTTL / time.Second), Scope: scope,
		Patient: refID(doc["patient"]), Encounter: refID(doc["encounter"])}
	if resp.Patient != "" {
		banner := doc["need_patient_banner"] == true
		resp.NeedPatientBanner = &banner
	}
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
	// When the current tokens were issued, for introspection (iat) of opaque tokens.
	doc["iat"] = now.Unix()
	doc["access_token_hash"] = hashToken(resp.AccessToken)
	if cfg.RefreshToken && client.Allows("refresh_token") && refreshGranted(doc) {
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

// refreshGranted reports whether the Session doc may hold a refresh token as far as its
// scope goes. A sign-in through the browser (the authorization_code grant) gets one only
// when it was granted offline_access or online_access, as SMART App Launch has apps ask
// for one (conformance L7); the other grants follow the client's settings alone, as they
// always have.
func refreshGranted(doc map[string]any) bool {
	if t, _ := doc["type"].(string); t != "authorization_code" {
		return true
	}
	granted, _ := doc["scope"].(string)
	scope := strings.Fields(granted)
	return slices.Contains(scope, "offline_access") || slices.Contains(scope, "online_access")
}

// refreshing is a Session found by one of its refresh tokens.
type refreshing struct {
	res *resources.Resource
	doc map[string]any
	// hash is that of the refresh token presented.
	hash string
}

// byRefreshToken finds the Session that issued refresh token rt, now or before a
// rotation; nil when there is none.
func (s *Sessions) byRefreshToken(ctx context.Context, rt string) (*refreshing, error) {
	h := hashToken(rt)
	res, err := s.svc.FindByToken(ctx, SessionType, "refresh-token", h)
	if err != nil || res == nil {
		return nil, err
	}
	doc, err := decode(res.Content)
	if err != nil {
		return nil, resources.Internal(err)
	}
	return &refreshing{res: res, doc: doc, hash: h}, nil
}

// current reports whether the token presented is the Session's current refresh token,
// not one that a refresh rotated away.
func (r *refreshing) current() bool {
	cur, _ := r.doc["refresh_token_hash"].(string)
	return cur == r.hash
}

// rotate gives the Session r a new token pair for sub, minted with cfg (the client's
// settings for the Session's grant) at now, and remembers the refresh token presented,
// whose reuse closes the Session. The access token's scope is r.doc's access_scope.
func (s *Sessions) rotate(ctx context.Context, r *refreshing, sub string, client *ClientConfig, cfg GrantConfig, now time.Time) (*TokenResponse, error) {
	rotated, _ := r.doc["rotated_refresh_hashes"].([]any)
	rotated = append(rotated, r.hash)
	if len(rotated) > maxRotated {
		rotated = rotated[len(rotated)-maxRotated:]
	}
	r.doc["rotated_refresh_hashes"] = rotated
	resp, err := s.mint(r.doc, sub, cfg, client, now)
	if err != nil {
		return nil, err
	}
	// If-Match makes two refreshes with one token race safely: the loser gets 412,
	// which is a reuse.
	_, _, err = s.svc.Update(resources.WithTrusted(ctx), SessionType, r.res.ID, r.doc, resources.ETag(r.res.VersionID))
	if resources.ErrorCode(err) == resources.CodePreconditionFailed {
		return nil, oauthErr(ErrCodeInvalidGrant, "the refresh token was already used")
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ErrInvalidBearer is the one answer for a bearer token that is malformed, unknown,
// expired or revoked (RFC 6750 invalid_token).
var ErrInvalidBearer = errors.New("invalid_token")

// Authenticate returns the identity behind a bearer token.
func (s *Sessions) Authenticate(ctx context.Context, token string) (*Identity, error) {
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
			return nil, ErrInvalidBearer // refresh and ID tokens are no access tokens (conformance J7)
		}
		jti, _ := c["jti"].(string)
		if jti == "" || !resources.ValidID(jti) {
			return nil, ErrInvalidBearer
		}
		if e, err = s.cache.get(ctx, "jti:"+jti, func(ctx context.Context) (*resources.Resource, error) {
			return s.svc.Current(ctx, SessionType, jti)
		}, s.dir); err != nil || e == nil {
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
		}, s.dir); err != nil || e == nil {
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
