package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen bounds the tokens Verify parses: ours are well under 2 KiB, and a larger
// one would only cost base64 and JSON work before failing.
const MaxTokenLen = 8 << 10

// verifyLeeway absorbs clock skew between the instances that sign and verify.
const verifyLeeway = 30 * time.Second

// ErrInvalidToken is the one error of Verify: whatever is wrong with a token, the
// client learns no more than that (RFC 6750 invalid_token). The wrapped reason is for
// logs only.
var ErrInvalidToken = errors.New("invalid token")

// VerifyOptions says what Verify expects of a token beyond its signature.
type VerifyOptions struct {
	// Issuer must equal the iss claim. It is required: a token of another issuer that
	// happens to share our key (a copied PEM file) must not pass.
	Issuer string
	// Audience, when not empty, must be one of the aud claim's values.
	Audience string
	// Now replaces the Keys' clock for this call; nil uses KeyOptions.Now.
	Now func() time.Time
}

// Sign returns a compact RS256 JWT of claims with the current key's kid in the header
// and typ "JWT". The caller sets every claim (iss, exp, …): Sign adds none.
func (k *Keys) Sign(claims jwt.MapClaims) (string, error) {
	sk := k.set.Load().signer
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = sk.kid
	t.Header["typ"] = "JWT"
	s, err := t.SignedString(sk.priv)
	if err != nil {
		return "", fmt.Errorf("auth: signing a JWT: %w", err)
	}
	return s, nil
}

// Verify checks a JWT issued by Sign and returns its claims. Every failure is
// ErrInvalidToken (wrapped with a short reason for logs), never a panic. It picks the
// key by the kid header alone and ignores jku, x5u, jwk and x5c, so a token cannot bring
// its own key (conformance J1–J6, J9). A well-formed kid it does not know makes it
// re-read the key store, at most once a second. Whether the token is an access token
// (typ claim) and whether its Session is open are the caller's checks.
//
// A token that verified once is remembered by its SHA-256 (the whole token, signature
// included), so that a client sending the same bearer token with every request pays the
// RSA verification (about 50 µs) once: a later call checks only what can change, the
// time claims against the clock and that the key is still in the set. The claims
// returned are the caller's own copy.
func (k *Keys) Verify(ctx context.Context, token string, opt VerifyOptions) (jwt.MapClaims, error) {
	if len(token) > MaxTokenLen {
		return nil, invalid("longer than %d bytes", MaxTokenLen)
	}
	if opt.Issuer == "" {
		// golang-jwt skips the iss check for an empty issuer; refuse rather than accept
		// every issuer because of a missing setting.
		return nil, invalid("no issuer to check against")
	}
	now := opt.Now
	if now == nil {
		now = k.now
	}
	sum := sha256.Sum256([]byte(token))
	if v, ok := k.verified.get(sum); ok && v.issuer == opt.Issuer && v.audience == opt.Audience &&
		k.set.Load().byKID[v.kid] == v.key && v.timely(now()) {
		return maps.Clone(v.claims), nil
	}
	claims, key, err := k.parse(ctx, token, opt, now)
	if err != nil {
		return nil, err
	}
	v := &verifiedToken{claims: claims, kid: key.kid, key: key, issuer: opt.Issuer, audience: opt.Audience}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		v.exp = exp.Time
	}
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		v.iat = iat.Time
	}
	if nbf, err := claims.GetNotBefore(); err == nil && nbf != nil {
		v.nbf = nbf.Time
	}
	k.verified.put(sum, v)
	return maps.Clone(claims), nil
}

// parse verifies token in full: signature, algorithm, header and claims.
func (k *Keys) parse(ctx context.Context, token string, opt VerifyOptions, now func() time.Time) (jwt.MapClaims, *signingKey, error) {
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(opt.Issuer),
		jwt.WithTimeFunc(now),
		jwt.WithLeeway(verifyLeeway),
		// Without it, a signature's last character can change within its unused low
		// bits and still verify: one token, several spellings.
		jwt.WithStrictDecoding(),
	}
	if opt.Audience != "" {
		popts = append(popts, jwt.WithAudience(opt.Audience))
	}
	claims := jwt.MapClaims{}
	var key *signingKey
	_, err := jwt.NewParser(popts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		sk, err := k.keyFor(ctx, t.Header)
		if err != nil {
			return nil, err
		}
		key = sk
		return &sk.priv.PublicKey, nil
	})
	if err != nil {
		return nil, nil, invalid("%s", err)
	}
	return claims, key, nil
}

// verifiedToken is a token that Verify accepted, with what a later call checks again.
type verifiedToken struct {
	claims           jwt.MapClaims // never handed out: Verify returns copies
	kid              string
	key              *signingKey
	issuer, audience string
	exp, iat, nbf    time.Time // zero when absent
}

// timely reports whether the time claims still hold at t, as the parser checks them
// (verifyLeeway either way): not expired, not issued or valid only in the future.
func (v *verifiedToken) timely(t time.Time) bool {
	if v.exp.IsZero() || !t.Add(-verifyLeeway).Before(v.exp) {
		return false
	}
	if !v.iat.IsZero() && t.Add(verifyLeeway).Before(v.iat) {
		return false
	}
	return v.nbf.IsZero() || !t.Add(verifyLeeway).Before(v.nbf)
}

// verifiedMax bounds the tokens remembered: a few MB. When it is reached the cache
// starts again empty, which costs each live token one more full verification.
const verifiedMax = 20_000

// verifiedCache remembers verified tokens by their SHA-256. It is safe for concurrent
// use; the zero value is ready.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]*verifiedToken
}

func (c *verifiedCache) get(sum [sha256.Size]byte) (*verifiedToken, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[sum]
	return v, ok
}

func (c *verifiedCache) put(sum [sha256.Size]byte, v *verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= verifiedMax {
		c.m = make(map[[sha256.Size]byte]*verifiedToken)
	}
	c.m[sum] = v
}

// keyFor returns the key named by a token's header, which the parser has already
// checked asks for RS256.
func (k *Keys) keyFor(ctx context.Context, h map[string]any) (*signingKey, error) {
	if _, ok := h["crit"]; ok {
		// RFC 7515 §4.1.11: we understand no extension, so any crit is unknown
		// (conformance J9).
		return nil, errors.New("crit header")
	}
	if typ, ok := h["typ"]; ok && typ != "JWT" {
		return nil, errors.New("typ header is not JWT")
	}
	kid, _ := h["kid"].(string)
	if !isThumbprint(kid) {
		// Every kid of ours is a thumbprint; anything else (absent, a path, SQL, a URL)
		// is refused without touching the store.
		return nil, errors.New("kid header missing or not a key thumbprint")
	}
	if sk := k.set.Load().byKID[kid]; sk != nil {
		return sk, nil
	}
	sk, err := k.reloadFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	if sk == nil {
		return nil, errors.New("unknown kid")
	}
	return sk, nil
}

// isThumbprint reports whether kid has the shape of an RFC 7638 SHA-256 thumbprint:
// 43 base64url characters.
func isThumbprint(kid string) bool {
	if len(kid) != 43 {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// invalid wraps ErrInvalidToken with a reason for logs. Reasons can quote the token
// (an alg name, a JSON error), so they are cut short and kept to one printable line.
func invalid(format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	reason = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, reason)
	if len(reason) > 200 {
		reason = strings.ToValidUTF8(reason[:200], "") + "…"
	}
	return fmt.Errorf("%w: %s", ErrInvalidToken, reason)
}
