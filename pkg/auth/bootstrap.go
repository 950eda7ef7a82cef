package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/resources"
)

// SecretAlphabet is RFC 6749's unreserved set, so a generated secret reads the same
// whether a client form-encodes the Basic credentials or not (conformance C3).
const SecretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// RandomSecret returns n random characters from the unreserved set.
func RandomSecret(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = SecretAlphabet[randIndex(len(SecretAlphabet))]
	}
	return string(b)
}

// randIndex draws uniformly from [0, n) by rejecting bytes past the largest multiple of n.
func randIndex(n int) int {
	max := 256 - 256%n
	var c [1]byte
	for {
		if _, err := rand.Read(c[:]); err != nil {
			panic("auth: crypto/rand failed: " + err.Error())
		}
		if int(c[0]) < max {
			return int(c[0]) % n
		}
	}
}

// EnsureAdmin makes sure the root Client id exists with the given secret. With an empty
// secret it keeps an existing client as it is, or creates one with a random secret and
// returns that secret so the caller can print it once. With a secret it (re)writes the
// client only when the stored hash does not match, so restarts do not add versions.
func EnsureAdmin(ctx context.Context, svc *resources.Service, id, secret string) (generated string, err error) {
	if !resources.ValidID(id) {
		return "", fmt.Errorf("admin client id %q is not a valid id ([A-Za-z0-9-.]{1,64})", id)
	}
	cur, err := svc.Current(ctx, "Client", id)
	if err != nil {
		return "", err
	}
	if cur != nil {
		if secret == "" {
			return "", nil
		}
		var doc map[string]any
		if err := json.Unmarshal(cur.Content, &doc); err == nil {
			if h, _ := doc["secret"].(string); h != "" && bcrypt.CompareHashAndPassword([]byte(h), []byte(secret)) == nil {
				return "", nil
			}
		}
	}
	if secret == "" {
		secret = RandomSecret(32)
		generated = secret
	}
	doc := map[string]any{
		"resourceType": "Client",
		"id":           id,
		"secret":       secret,
		"grant_types":  []any{"basic", "client_credentials"},
		"description":  "fhirbox root client (FHIRBOX_ADMIN_CLIENT_ID): may do everything",
	}
	if _, _, err := svc.Update(ctx, "Client", id, doc, ""); err != nil {
		return "", fmt.Errorf("bootstrap admin client: %w", err)
	}
	return generated, nil
}
