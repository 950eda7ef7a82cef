package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

func TestParseKeyEncryptionKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, 32)
	for _, s := range []string{
		hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
		base64.StdEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
		" " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		got, err := ParseKeyEncryptionKey(s)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("ParseKeyEncryptionKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{
		"", "correct horse battery staple", hex.EncodeToString(key[:16]),
		base64.StdEncoding.EncodeToString(key[:31]), base64.StdEncoding.EncodeToString(append(key, 1)),
	} {
		if _, err := ParseKeyEncryptionKey(s); err == nil || !strings.Contains(err.Error(), "FHIRBOX_KEY_ENCRYPTION_KEY") {
			t.Errorf("ParseKeyEncryptionKey(%q): %v, want an error naming the setting", s, err)
		}
	}
}

// With FHIRBOX_KEY_ENCRYPTION_KEY the generated key is stored encrypted; it opens with
// that key only; without it or with another, LoadKeys stops and no key is generated in
// its place. A plaintext key found when the setting appears is encrypted in place.
func TestLoadKeysEncrypted(t *testing.T) { onEachBackend(t, testLoadKeysEncrypted) }

func testLoadKeysEncrypted(t *testing.T, b testdb.Backend) {
	ctx := context.Background()
	store, st := keyStoreOn(t, b)
	kek := bytes.Repeat([]byte{1}, 32)
	other := bytes.Repeat([]byte{2}, 32)

	k1, err := LoadKeys(ctx, KeyOptions{Store: store, EncryptionKey: kek})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.SigningKeys(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored %v, %v", stored, err)
	}
	if !strings.HasPrefix(string(stored[0].PrivatePEM), sealedPrefix) || bytes.Contains(stored[0].PrivatePEM, []byte("PRIVATE KEY")) {
		t.Fatalf("the stored key is not encrypted: %.60q", stored[0].PrivatePEM)
	}
	tok, err := k1.Sign(jwt.MapClaims{"iss": "i", "exp": time.Now().Add(time.Minute).Unix(), "iat": time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}

	// Another instance with the same key signs with it and accepts the first's tokens.
	k2, err := LoadKeys(ctx, KeyOptions{Store: store, EncryptionKey: kek})
	if err != nil || k2.KID() != k1.KID() {
		t.Fatalf("second start: %v, kid %v want %s", err, k2, k1.KID())
	}
	if _, err := k2.Verify(ctx, tok, VerifyOptions{Issuer: "i"}); err != nil {
		t.Fatal(err)
	}

	for name, key := range map[string][]byte{"no key": nil, "another key": other} {
		_, err := LoadKeys(ctx, KeyOptions{Store: store, EncryptionKey: key})
		if err == nil || !strings.Contains(err.Error(), "FHIRBOX_KEY_ENCRYPTION_KEY") || !strings.Contains(err.Error(), k1.KID()) {
			t.Errorf("%s: %v, want an error naming the setting and the key", name, err)
		}
	}
	if after, _ := st.SigningKeys(ctx); len(after) != 1 || !bytes.Equal(after[0].PrivatePEM, stored[0].PrivatePEM) {
		t.Fatalf("the keys changed after the refused starts: %v", after)
	}

	// The kid is bound to the ciphertext: the sealed key under another kid does not open.
	if _, err := st.SQL.ExecContext(ctx, `INSERT INTO signing_key (kid, private_pem, created_at) VALUES ($1, $2, $3)`,
		"moved", string(stored[0].PrivatePEM), st.Time(time.Now())); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(ctx, KeyOptions{Store: store, EncryptionKey: kek}); err == nil || !strings.Contains(err.Error(), `"moved"`) {
		t.Errorf("a sealed key moved to another kid: %v", err)
	}
}

func TestLoadKeysEncryptsPlaintext(t *testing.T) { onEachBackend(t, testLoadKeysEncryptsPlaintext) }

func testLoadKeysEncryptsPlaintext(t *testing.T, b testdb.Backend) {
	ctx := context.Background()
	store, st := keyStoreOn(t, b)
	kek := bytes.Repeat([]byte{3}, 32)
	plain, err := LoadKeys(ctx, KeyOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := st.SigningKeys(ctx)
	if len(before) != 1 || !bytes.Contains(before[0].PrivatePEM, []byte("PRIVATE KEY")) {
		t.Fatalf("without the setting the key is plain PEM: %+v", before)
	}
	// Two instances start with the setting at once: one encrypts, both use the key.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			k, err := LoadKeys(ctx, KeyOptions{Store: store, EncryptionKey: kek})
			if err == nil && k.KID() != plain.KID() {
				err = fmt.Errorf("kid %s, want %s", k.KID(), plain.KID())
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	after, _ := st.SigningKeys(ctx)
	if len(after) != 1 || after[0].KID != before[0].KID || !after[0].Created.Equal(before[0].Created) ||
		!strings.HasPrefix(string(after[0].PrivatePEM), sealedPrefix) {
		t.Fatalf("after the start with the setting: %+v", after)
	}
	// From now on the setting is needed.
	if _, err := LoadKeys(ctx, KeyOptions{Store: store}); err == nil {
		t.Error("the encrypted key was used without the setting")
	}
	// A running instance without the setting keeps its keys when it reloads.
	if err := plain.Reload(ctx); err == nil || plain.KID() != before[0].KID {
		t.Errorf("Reload without the setting: %v", err)
	}
}
