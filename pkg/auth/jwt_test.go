package auth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtNow is the clock of the JWT tests.
var jwtNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const testIssuer = "https://fhirbox.example"

// seg is one base64url JSON segment, built by hand so that tokens can be anything.
func seg(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// signRaw signs header.claims with priv, RS256, whatever the header says.
func signRaw(t testing.TB, priv *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	in := seg(t, header) + "." + seg(t, claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64(sig)
}

// macRaw MACs header.claims with key, HS256: the algorithm-confusion attack.
func macRaw(t testing.TB, key []byte, header, claims map[string]any) string {
	t.Helper()
	in := seg(t, header) + "." + seg(t, claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// goodClaims are an access token's claims (conformance C5), valid at jwtNow.
func goodClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": "client-1", "client_id": "client-1",
		"jti": "session-1", "iat": jwtNow.Unix(), "exp": jwtNow.Add(5 * time.Minute).Unix(),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// jwtKeys returns Keys over the first test key, on the test clock.
func jwtKeys(t testing.TB) (*Keys, *rsa.PrivateKey) {
	t.Helper()
	priv := testRSAKeys()[0]
	k := keysOf(t, priv)
	k.now = func() time.Time { return jwtNow }
	return k, priv
}

func TestVerifyRoundTrip(t *testing.T) {
	k, _ := jwtKeys(t)
	tok, err := k.Sign(jwt.MapClaims(goodClaims()))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	var h map[string]any
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("header %s: %v", parts[0], err)
	}
	if len(h) != 3 || h["alg"] != "RS256" || h["typ"] != "JWT" || h["kid"] != k.KID() {
		t.Errorf("C5 header %v", h)
	}
	claims, err := k.Verify(context.Background(), tok, VerifyOptions{Issuer: testIssuer, Audience: "client-1"})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range goodClaims() {
		got := claims[key]
		if n, ok := want.(int64); ok {
			want = float64(n)
		}
		if got != want {
			t.Errorf("claim %s = %v, want %v", key, got, want)
		}
	}
}

// conformance J1–J9 (the parts that are Verify's): every attack is ErrInvalidToken.
func TestVerifyAttacks(t *testing.T) {
	k, priv := jwtKeys(t)
	ctx := context.Background()
	kid := k.KID()
	other := testRSAKeys()[1]
	otherKID := thumbprint(&other.PublicKey)
	rs := map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}
	good := signRaw(t, priv, rs, goodClaims())
	parts := strings.Split(good, ".")

	// Key bytes an attacker can get from the JWKS, for conformance J2.
	pkix, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1PubPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)})
	hs := map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}

	// A signature whose last character differs only in bits base64 does not use.
	sigChars := []byte(parts[2])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sigChars[len(sigChars)-1])
	sigChars[len(sigChars)-1] = alphabet[last^1]
	if a, b := base64.RawURLEncoding.EncodeToString(mustDecode(t, parts[2])), string(sigChars); a == b {
		t.Fatal("the malleable signature is the same string")
	}
	if string(mustDecode(t, string(sigChars))) != string(mustDecode(t, parts[2])) {
		t.Fatal("test premise: the changed character should decode to the same bytes")
	}
	flipped := mustDecode(t, parts[2])
	flipped[10] ^= 1

	// jku/x5u would point here; nothing may fetch it.
	var fetched atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	attackerJWK := map[string]any{"kty": "RSA", "kid": otherKID, "n": b64(other.N.Bytes()), "e": "AQAB"}

	rs512 := func() string {
		h := map[string]any{"alg": "RS512", "typ": "JWT", "kid": kid}
		in := seg(t, h) + "." + seg(t, goodClaims())
		sum := sha512.Sum512([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA512, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return in + "." + b64(sig)
	}()

	long := signRaw(t, priv, rs, with(goodClaims(), "pad", strings.Repeat("x", MaxTokenLen)))

	cases := []struct {
		name  string
		token string
		opt   VerifyOptions // Issuer defaults to testIssuer
		valid bool
	}{
		{name: "control: valid token", token: good, valid: true},
		{name: "control: exp within the leeway", token: signRaw(t, priv, rs, with(goodClaims(), "exp", jwtNow.Add(-10*time.Second).Unix())), valid: true},
		{name: "control: aud array holding the audience", token: signRaw(t, priv, rs, with(goodClaims(), "aud", []string{"x", "api"})), opt: VerifyOptions{Audience: "api"}, valid: true},

		{name: "J1 alg none, empty signature", token: seg(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."},
		{name: "J1 alg none with our kid", token: seg(t, map[string]any{"alg": "none", "kid": kid}) + "." + parts[1] + "."},
		{name: "J1 alg None", token: seg(t, map[string]any{"alg": "None", "kid": kid}) + "." + parts[1] + "."},
		{name: "J1 alg NONE", token: seg(t, map[string]any{"alg": "NONE", "kid": kid}) + "." + parts[1] + "."},
		{name: "J1 alg none keeping a real signature", token: seg(t, map[string]any{"alg": "none", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{name: "J1 no alg", token: seg(t, map[string]any{"typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2]},
		{name: "J1 alg empty", token: seg(t, map[string]any{"alg": "", "kid": kid}) + "." + parts[1] + "." + parts[2]},

		{name: "J2 HS256 with the public key PEM (PKIX)", token: macRaw(t, pkixPEM, hs, goodClaims())},
		{name: "J2 HS256 with the public key PEM (PKCS#1)", token: macRaw(t, pkcs1PubPEM, hs, goodClaims())},
		{name: "J2 HS256 with the public key DER", token: macRaw(t, pkix, hs, goodClaims())},
		{name: "J2 HS256 with the raw modulus", token: macRaw(t, priv.N.Bytes(), hs, goodClaims())},
		{name: "J2 HS256 with the JWKS n string", token: macRaw(t, []byte(b64(priv.N.Bytes())), hs, goodClaims())},
		{name: "J2 HS512 with the public key PEM", token: func() string {
			h := map[string]any{"alg": "HS512", "kid": kid}
			in := seg(t, h) + "." + seg(t, goodClaims())
			m := hmac.New(sha512.New, pkixPEM)
			m.Write([]byte(in))
			return in + "." + b64(m.Sum(nil))
		}()},

		{name: "J3 stripped signature", token: parts[0] + "." + parts[1] + "."},
		{name: "J3 signature segment missing", token: parts[0] + "." + parts[1]},
		{name: "J3 altered signature", token: parts[0] + "." + parts[1] + "." + b64(flipped)},
		{name: "J3 signature respelled in unused base64 bits", token: parts[0] + "." + parts[1] + "." + string(sigChars)},
		{name: "J3 truncated signature", token: good[:len(good)-4]},
		{name: "J3 signature with padding", token: good + "=="},
		{name: "J3 different key under our kid", token: signRaw(t, other, rs, goodClaims())},
		{name: "J3 altered payload", token: parts[0] + "." + seg(t, with(goodClaims(), "sub", "admin")) + "." + parts[2]},
		{name: "J3 signature of another token", token: parts[0] + "." + parts[1] + "." + strings.Split(signRaw(t, priv, rs, with(goodClaims(), "sub", "x")), ".")[2]},
		{name: "J3 RS512 by our key", token: rs512},
		{name: "J3 PS256 header on an RS256 signature", token: seg(t, map[string]any{"alg": "PS256", "kid": kid}) + "." + parts[1] + "." + parts[2]},

		{name: "J4 unknown kid (a stranger's key)", token: signRaw(t, other, map[string]any{"alg": "RS256", "kid": otherKID}, goodClaims())},
		{name: "J4 no kid, signed by our key", token: signRaw(t, priv, map[string]any{"alg": "RS256", "typ": "JWT"}, goodClaims())},
		{name: "J4 kid path traversal", token: signRaw(t, priv, with(rs, "kid", "../../../../dev/null"), goodClaims())},
		{name: "J4 kid SQL injection", token: signRaw(t, priv, with(rs, "kid", "x' UNION SELECT 'k' --"), goodClaims())},
		{name: "J4 kid URL", token: signRaw(t, priv, with(rs, "kid", srv.URL), goodClaims())},
		{name: "J4 kid with a NUL after ours", token: signRaw(t, priv, with(rs, "kid", kid+"\x00"), goodClaims())},
		{name: "J4 kid ours plus a space", token: signRaw(t, priv, with(rs, "kid", kid+" "), goodClaims())},
		{name: "J4 kid a number", token: signRaw(t, priv, with(rs, "kid", 7), goodClaims())},
		{name: "J4 kid a list", token: signRaw(t, priv, with(rs, "kid", []string{kid}), goodClaims())},
		{name: "J4 kid empty", token: signRaw(t, priv, with(rs, "kid", ""), goodClaims())},
		{name: "J4 jku to the attacker's keys", token: signRaw(t, other, map[string]any{"alg": "RS256", "kid": otherKID, "jku": srv.URL}, goodClaims())},
		{name: "J4 x5u to the attacker's keys", token: signRaw(t, other, map[string]any{"alg": "RS256", "kid": otherKID, "x5u": srv.URL}, goodClaims())},
		{name: "J4 embedded jwk", token: signRaw(t, other, map[string]any{"alg": "RS256", "kid": otherKID, "jwk": attackerJWK}, goodClaims())},
		{name: "J4 embedded jwk, no kid", token: signRaw(t, other, map[string]any{"alg": "RS256", "jwk": attackerJWK}, goodClaims())},
		{name: "J4 embedded jwk under our kid", token: signRaw(t, other, map[string]any{"alg": "RS256", "kid": kid, "jwk": attackerJWK}, goodClaims())},
		{name: "J4 x5c", token: signRaw(t, other, map[string]any{"alg": "RS256", "kid": otherKID, "x5c": []string{"MIIB"}}, goodClaims())},
		{name: "J4 jku, x5u, jwk ignored on our own token", token: signRaw(t, priv, with(rs, "jku", srv.URL, "x5u", srv.URL, "jwk", attackerJWK), goodClaims()), valid: true},

		{name: "J5 expired", token: signRaw(t, priv, rs, with(goodClaims(), "exp", jwtNow.Add(-time.Hour).Unix()))},
		{name: "J5 expired beyond the leeway", token: signRaw(t, priv, rs, with(goodClaims(), "exp", jwtNow.Add(-31*time.Second).Unix()))},
		{name: "J5 nbf in the future", token: signRaw(t, priv, rs, with(goodClaims(), "nbf", jwtNow.Add(time.Hour).Unix()))},
		{name: "J5 no exp", token: signRaw(t, priv, rs, with(goodClaims(), "exp", nil))},
		{name: "J5 exp a string", token: signRaw(t, priv, rs, with(goodClaims(), "exp", "9999999999"))},
		{name: "J5 exp null", token: signRaw(t, priv, rs, with(goodClaims(), "exp", json.RawMessage("null")))},
		{name: "J5 iat in the future", token: signRaw(t, priv, rs, with(goodClaims(), "iat", jwtNow.Add(time.Hour).Unix()))},
		{name: "J5 expired by the caller's clock", token: good, opt: VerifyOptions{Now: func() time.Time { return jwtNow.Add(time.Hour) }}},

		{name: "J6 wrong iss", token: signRaw(t, priv, rs, with(goodClaims(), "iss", "https://evil.example"))},
		{name: "J6 iss with a trailing slash", token: signRaw(t, priv, rs, with(goodClaims(), "iss", testIssuer+"/"))},
		{name: "J6 no iss", token: signRaw(t, priv, rs, with(goodClaims(), "iss", nil))},
		{name: "J6 iss a list", token: signRaw(t, priv, rs, with(goodClaims(), "iss", []string{testIssuer}))},
		{name: "J6 no issuer to check", token: good, opt: VerifyOptions{Issuer: "-"}},
		{name: "J6 wrong aud", token: good, opt: VerifyOptions{Audience: "other-api"}},
		{name: "J6 no aud", token: signRaw(t, priv, rs, with(goodClaims(), "aud", nil)), opt: VerifyOptions{Audience: "client-1"}},

		{name: "J9 crit exp", token: signRaw(t, priv, with(rs, "crit", []string{"exp"}, "exp", 1), goodClaims())},
		{name: "J9 crit b64", token: signRaw(t, priv, with(rs, "crit", []string{"b64"}, "b64", false), goodClaims())},
		{name: "J9 crit empty", token: signRaw(t, priv, with(rs, "crit", []string{}), goodClaims())},

		{name: "typ header not JWT", token: signRaw(t, priv, with(rs, "typ", "at+jwt"), goodClaims())},
		{name: "longer than 8 KiB, validly signed", token: long},
		{name: "empty", token: ""},
		{name: "one segment", token: "abc"},
		{name: "four segments", token: good + ".x"},
		{name: "not base64", token: "!!!.???.***"},
		{name: "header not an object", token: b64([]byte(`[1]`)) + "." + parts[1] + "." + parts[2]},
		{name: "claims not an object", token: parts[0] + "." + b64([]byte(`"x"`)) + "." + parts[2]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt := c.opt
			switch opt.Issuer {
			case "":
				opt.Issuer = testIssuer
			case "-":
				opt.Issuer = ""
			}
			claims, err := k.Verify(ctx, c.token, opt)
			if c.valid {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) || claims != nil {
				t.Fatalf("Verify = %v, %v; want ErrInvalidToken", claims, err)
			}
			t.Log(err)
			if strings.ContainsAny(err.Error(), "\n\r") || len(err.Error()) > 250 {
				t.Errorf("reason is not one short line: %q", err)
			}
		})
	}
	if long := len(long); long <= MaxTokenLen {
		t.Fatalf("the long token has only %d bytes", long)
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("J4: the jku/x5u URL was fetched %d times", n)
	}
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkSign(b *testing.B) {
	k, _ := jwtKeys(b)
	claims := jwt.MapClaims(goodClaims())
	for b.Loop() {
		if _, err := k.Sign(claims); err != nil {
			b.Fatal(err)
		}
	}
}

// benchToken returns keys, a token they signed and the options that accept it.
func benchToken(b *testing.B) (*Keys, string, VerifyOptions) {
	k, _ := jwtKeys(b)
	tok, err := k.Sign(jwt.MapClaims(goodClaims()))
	if err != nil {
		b.Fatal(err)
	}
	return k, tok, VerifyOptions{Issuer: testIssuer, Audience: "client-1"}
}

// BenchmarkVerify is the full verification of a token not seen before (the RSA
// signature check); BenchmarkVerifyCached the same token again.
func BenchmarkVerify(b *testing.B) {
	k, tok, opt := benchToken(b)
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := k.parse(ctx, tok, opt, k.now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	k, tok, opt := benchToken(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := k.Verify(ctx, tok, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// A token verified once is remembered, but a later call still checks what can change
// or differ: the clock against exp, the expected issuer and audience; and each caller
// gets claims of its own.
func TestVerifyRemembersOnlyWhatStillHolds(t *testing.T) {
	k, _ := jwtKeys(t)
	ctx := context.Background()
	tok, err := k.Sign(jwt.MapClaims(goodClaims())) // exp: jwtNow + 5 min
	if err != nil {
		t.Fatal(err)
	}
	opt := VerifyOptions{Issuer: testIssuer, Audience: "client-1"}
	c1, err := k.Verify(ctx, tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	c1["sub"] = "someone-else"
	if c2, err := k.Verify(ctx, tok, opt); err != nil || c2["sub"] == "someone-else" {
		t.Errorf("second Verify: %v, %v: a caller's change reached the cache", c2, err)
	}
	for _, bad := range []VerifyOptions{
		{Issuer: "https://other.example"},
		{Issuer: testIssuer, Audience: "client-2"},
	} {
		if _, err := k.Verify(ctx, tok, bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Verify with %+v after a good one: %v, want ErrInvalidToken", bad, err)
		}
	}
	later := func(d time.Duration) VerifyOptions {
		o := opt
		o.Now = func() time.Time { return jwtNow.Add(d) }
		return o
	}
	if _, err := k.Verify(ctx, tok, later(5*time.Minute+verifyLeeway-time.Second)); err != nil {
		t.Errorf("within the leeway after exp: %v", err)
	}
	if _, err := k.Verify(ctx, tok, later(5*time.Minute+verifyLeeway)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("past exp and leeway: %v, want ErrInvalidToken", err)
	}
	if _, err := k.Verify(ctx, tok, later(-verifyLeeway-time.Second)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("before iat minus leeway: %v, want ErrInvalidToken", err)
	}
	// The cached answer and the full verification agree at every instant around exp.
	for d := 5*time.Minute + verifyLeeway - 2*time.Second; d <= 5*time.Minute+verifyLeeway+time.Second; d += time.Second {
		_, cached := k.Verify(ctx, tok, later(d))
		n := jwtNow.Add(d)
		_, _, full := k.parse(ctx, tok, later(d), func() time.Time { return n })
		if (cached == nil) != (full == nil) {
			t.Errorf("at exp%+v: cached %v, full %v", d-5*time.Minute, cached, full)
		}
	}
}
