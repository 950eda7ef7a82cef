package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// its own key (CONFORMANCE J1–J6, J9). A well-formed kid it does not know makes it
// re-read the key store, at most once a second. Whether the token is an access token
// (typ claim) and whether its Session is open are the caller's checks.
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
	_, err := jwt.NewParser(popts...).ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return k.keyFor(ctx, t.Header)
	})
	if err != nil {
		return nil, invalid("%s", err)
	}
	return claims, nil
}

// keyFor returns the public key named by a token's header, which the parser has
// already checked asks for RS256.
func (k *Keys) keyFor(ctx context.Context, h map[string]any) (any, error) {
	if _, ok := h["crit"]; ok {
		// RFC 7515 §4.1.11: we understand no extension, so any crit is unknown (J9).
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
		return &sk.priv.PublicKey, nil
	}
	sk, err := k.reloadFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	if sk == nil {
		return nil, errors.New("unknown kid")
	}
	return &sk.priv.PublicKey, nil
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
