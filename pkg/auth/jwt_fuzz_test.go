package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify: whatever the input, Verify does not panic, and it accepts nothing but the
// one token signed here (a forgery the fuzzer finds would be a conformance J1–J4 hole).
func FuzzVerify(f *testing.F) {
	k, priv := jwtKeys(f)
	signed, err := k.Sign(jwt.MapClaims(goodClaims()))
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(signed, ".")
	f.Add(signed)
	f.Add(signed[:len(signed)/2])
	f.Add(signed[:len(signed)-1])
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("")
	f.Add("..")
	f.Add("garbage")
	f.Add("\x00\xff.\x80.")
	f.Add(seg(f, map[string]any{"alg": "none", "kid": k.KID()}) + "." + parts[1] + ".")
	f.Add(macRaw(f, priv.N.Bytes(), map[string]any{"alg": "HS256", "kid": k.KID()}, goodClaims()))
	f.Add(signRaw(f, priv, map[string]any{"alg": "RS256", "kid": k.KID(), "crit": []string{"x"}}, goodClaims()))
	f.Add(seg(f, map[string]any{"alg": "RS256", "kid": k.KID()}) + "." + seg(f, map[string]any{"exp": 1e308, "iat": -1e308, "nbf": "x", "aud": []any{1, nil}}) + "." + parts[2])
	ctx := context.Background()
	opt := VerifyOptions{Issuer: testIssuer, Audience: "client-1"}
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := k.Verify(ctx, token, opt)
		if token == signed {
			if err != nil {
				t.Fatalf("the signed token is rejected: %v", err)
			}
			return
		}
		if err == nil || !errors.Is(err, ErrInvalidToken) || claims != nil {
			t.Fatalf("Verify(%q) = %v, %v; want ErrInvalidToken", token, claims, err)
		}
	})
}
