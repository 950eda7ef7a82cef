package server_test

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirbox/fhirbox/resources"
)

// A token is accepted only in the form its Session issued (issue 12, item 2): whoever
// holds the signing key (read from the database, as an attacker with the key would) can
// sign JWTs, but a JWT naming an opaque Session (the root client's client-credentials
// Session) is refused, and so is an opaque token on a JWT Session.
func TestTokenOnlyInItsIssuedForm(t *testing.T) { forEachBackend(t, testTokenOnlyInItsIssuedForm) }

func testTokenOnlyInItsIssuedForm(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// The root client's opaque client-credentials token works.
	r := token(e, url.Values{"grant_type": {"client_credentials"}}, "Authorization", basicAuth(adminID, adminToken))
	opaque, _ := r.doc["access_token"].(string)
	if opaque == "" {
		t.Fatalf("no token: %s", r.raw)
	}
	e.must(200, bearer(opaque, get("/AccessPolicy")))
	ss := e.must(200, get("/Session?client=Client/"+adminID))
	ids := entryIDs(ss)
	if len(ids) != 1 {
		t.Fatalf("sessions of %s: %v", adminID, ids)
	}
	rootSession := ids[0]

	// The private key, as stored.
	var kid, pemText string
	if err := e.store.SQL().QueryRowContext(ctx, `SELECT kid, private_pem FROM signing_key`).Scan(&kid, &pemText); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		t.Fatalf("the stored key is no PEM: %.40q", pemText)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv := k.(*rsa.PrivateKey)
	forge := func(jti, sub string) string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": testBase, "sub": sub, "aud": adminID, "client_id": adminID, "jti": jti,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.must(401, bearer(forge(rootSession, adminID), get("/AccessPolicy")))
	e.must(401, bearer(forge(rootSession, adminID), put("/AccessPolicy/pwn", `{"engine":"allow"}`)))
	e.must(404, get("/AccessPolicy/pwn"))

	// A JWT Session still works with its JWT.
	setupMyapp(t, e)
	r = token(e, `{"grant_type":"password","client_id":"myapp","client_secret":"verysecret","username":"user1","password":"password1"}`)
	access, _ := r.doc["access_token"].(string)
	e.must(200, bearer(access, get("/auth/userinfo")))
	_, claims := jwtParts(t, access)
	jti, _ := claims["jti"].(string)

	// An opaque token on that JWT Session is refused: give the Session the hash of one,
	// as only the server could.
	res, err := e.store.Read(ctx, "Session", jti)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(res.Content, &doc); err != nil {
		t.Fatal(err)
	}
	const planted = "an-opaque-token-that-the-jwt-session-never-issued"
	sum := sha256.Sum256([]byte(planted))
	doc["access_token_hash"] = hex.EncodeToString(sum[:])
	if _, _, err := e.svc.Update(resources.WithTrusted(ctx), "Session", jti, doc, ""); err != nil {
		t.Fatal(err)
	}
	e.must(401, bearer(planted, get("/auth/userinfo")))
}
