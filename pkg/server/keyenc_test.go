package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
)

// With FHIRBOX_KEY_ENCRYPTION_KEY the signing key in the database is encrypted, JWTs
// are issued and accepted as before, and a start with another key (or none) fails
// rather than make a new key.
func TestKeyEncryption(t *testing.T) { forEachBackend(t, testKeyEncryption) }

func testKeyEncryption(t *testing.T) {
	kek := bytes.Repeat([]byte{9}, 32)
	e := newEnv(t, func(c *app.Config) { c.KeyEncryptionKey = kek })
	ctx := context.Background()
	var stored string
	if err := e.store.SQL().QueryRowContext(ctx, `SELECT private_pem FROM signing_key`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "PRIVATE KEY") {
		t.Fatalf("the signing key is stored in plain: %.40q", stored)
	}
	setupMyapp(t, e)
	r := token(e, `{"grant_type":"password","client_id":"myapp","client_secret":"verysecret","username":"user1","password":"password1"}`)
	access, _ := r.doc["access_token"].(string)
	if strings.Count(access, ".") != 2 {
		t.Fatalf("no JWT: %s", r.raw)
	}
	e.must(200, bearer(access, get("/auth/userinfo")))

	for name, key := range map[string][]byte{"no key": nil, "another key": bytes.Repeat([]byte{8}, 32)} {
		_, err := app.New(ctx, e.store, app.Config{Server: server.Config{BaseURL: testBase, AdminClientID: adminID}, AdminSecret: adminToken, KeyEncryptionKey: key})
		if err == nil || !strings.Contains(err.Error(), "FHIRBOX_KEY_ENCRYPTION_KEY") {
			t.Errorf("%s: %v", name, err)
		}
	}
	var n int
	if err := e.store.SQL().QueryRowContext(ctx, `SELECT count(*) FROM signing_key`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d keys after the refused starts, %v", n, err)
	}
}
