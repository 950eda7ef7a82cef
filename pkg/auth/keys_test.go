package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources/postgres"
	"github.com/fhirbox/fhirbox/resources/sqlite"
)

// RSA key generation takes a good fraction of a second: the tests share a few keys.
var (
	testRSAKeys = sync.OnceValue(func() []*rsa.PrivateKey {
		out := make([]*rsa.PrivateKey, 3)
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() { out[i] = mustRSA(2048) })
		}
		wg.Wait()
		return out
	})
	testRSA1024 = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA(1024) })
)

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8PEM(t testing.TB, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func storedKeyOf(t testing.TB, k *rsa.PrivateKey, created time.Time) signingkey.Key {
	return signingkey.Key{KID: thumbprint(&k.PublicKey), PrivatePEM: pkcs8PEM(t, k), Created: created}
}

// keysOf returns Keys without a store over privs, the last one the newest (the signer).
func keysOf(t testing.TB, privs ...*rsa.PrivateKey) *Keys {
	t.Helper()
	var sks []*signingKey
	for i, p := range privs {
		sks = append(sks, &signingKey{kid: thumbprint(&p.PublicKey), priv: p, created: time.Unix(int64(i), 0)})
	}
	set, err := newKeySet(sks)
	if err != nil {
		t.Fatal(err)
	}
	k := &Keys{now: time.Now, clock: time.Now}
	k.set.Store(set)
	return k
}

// memStore is a KeyStore in memory that counts reads.
type memStore struct {
	mu    sync.Mutex
	keys  []signingkey.Key
	reads int
	err   error
}

func (m *memStore) SigningKeys(context.Context) ([]signingkey.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	return append([]signingkey.Key(nil), m.keys...), m.err
}

func (m *memStore) AddSigningKeyIfNone(_ context.Context, k signingkey.Key) ([]signingkey.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.keys) == 0 {
		m.keys = append(m.keys, k)
	}
	return append([]signingkey.Key(nil), m.keys...), m.err
}

func (m *memStore) ReplaceSigningKeyPEM(_ context.Context, kid string, old, new []byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range m.keys {
		if k.KID == kid && bytes.Equal(k.PrivatePEM, old) {
			m.keys[i].PrivatePEM = new
			return true, m.err
		}
	}
	return false, m.err
}

func (m *memStore) add(k signingkey.Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
}

func (m *memStore) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// keyTable is the signing-key table of a store, for the tests to read and write.
type keyTable struct {
	SigningKeys func(ctx context.Context) ([]signingkey.Key, error)
	SQL         *sql.DB
	// Time is an instant as the database stores it.
	Time func(time.Time) any
}

// keyStoreOn opens a store of backend b on a fresh database, the KeyStore the wiring
// passes to LoadKeys.
func keyStoreOn(t testing.TB, b testdb.Backend) (KeyStore, keyTable) {
	t.Helper()
	type store interface {
		SigningKeys(ctx context.Context) ([]signingkey.Key, error)
		AddSigningKeyIfNone(ctx context.Context, k signingkey.Key) ([]signingkey.Key, error)
		ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error)
		SQL() *sql.DB
		Close() error
	}
	var st store
	table := keyTable{Time: func(t time.Time) any { return t }}
	switch b {
	case testdb.Postgres:
		pg, err := postgres.Open(context.Background(), testdb.URL(t), postgres.WithMaxConns(4))
		if err != nil {
			t.Fatal(err)
		}
		st = pg
	case testdb.SQLite:
		lite, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fhirbox.db"))
		if err != nil {
			t.Fatal(err)
		}
		st, table.Time = lite, func(t time.Time) any { return t.UnixMicro() }
	}
	t.Cleanup(func() { st.Close() })
	table.SigningKeys, table.SQL = st.SigningKeys, st.SQL()
	return st, table
}

// onEachBackend runs test once per backend, as subtests named after them.
func onEachBackend(t *testing.T, test func(t *testing.T, b testdb.Backend)) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) { test(t, b) })
	}
}

// RFC 7638 §3.1's example key and thumbprint.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	const want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	if got := thumbprint(pub); got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
	if !isThumbprint(want) {
		t.Error("isThumbprint rejects a thumbprint")
	}
}

func TestLoadKeysPEMFile(t *testing.T) {
	priv := testRSAKeys()[0]
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"pkcs1.pem": pkcs1PEM(priv),
		"pkcs8.pem": pkcs8PEM(t, priv),
		// A certificate bundle style file: the key is found after other blocks.
		"chain.pem": append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), pkcs8PEM(t, priv)...),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			// A store that fails proves it is not used when a PEM file is given.
			store := &memStore{err: errors.New("the store must not be used")}
			k, err := LoadKeys(context.Background(), KeyOptions{PEMPath: path, Store: store})
			if err != nil {
				t.Fatal(err)
			}
			if k.KID() != thumbprint(&priv.PublicKey) {
				t.Errorf("kid %s, want the thumbprint", k.KID())
			}
			tok, err := k.Sign(jwt.MapClaims{"iss": "i", "exp": time.Now().Add(time.Minute).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.Verify(context.Background(), tok, VerifyOptions{Issuer: "i"}); err != nil {
				t.Fatal(err)
			}
			if err := k.Reload(context.Background()); err != nil || store.readCount() != 0 {
				t.Errorf("Reload with a PEM file: %v, %d store reads", err, store.readCount())
			}
		})
	}
}

func TestLoadKeysPEMFileErrors(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})
	cases := []struct {
		name string
		data []byte // nil: no file
		want string
	}{
		{"missing file", nil, "no such file"},
		{"garbage", []byte("not a key at all\n"), "no PEM private key"},
		{"empty", []byte{}, "no PEM private key"},
		{"public key only", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), "no PEM private key"},
		{"EC key PKCS#8", pkcs8PEM(t, ec), "not an RSA key"},
		{"EC key SEC 1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), "not an RSA key"},
		{"1024-bit RSA", pkcs1PEM(testRSA1024()), "1024 bits"},
		{"corrupt PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("junk")}), "invalid RSA PRIVATE KEY"},
		{"encrypted", encrypted, "encrypted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".pem")
			if c.data != nil {
				if err := os.WriteFile(path, c.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadKeys(context.Background(), KeyOptions{PEMPath: path})
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, path, c.want)
			}
			if strings.Count(msg, path) != 1 {
				t.Errorf("error %q names the path more than once", msg)
			}
		})
	}
}

func TestLoadKeysNoSource(t *testing.T) {
	if _, err := LoadKeys(context.Background(), KeyOptions{}); err == nil {
		t.Fatal("LoadKeys without PEM file or store succeeded")
	}
}

// conformance C5, J10: public RSA members only, with use and alg, newest first.
func TestJWKS(t *testing.T) {
	ks := testRSAKeys()
	k := keysOf(t, ks[0], ks[1])
	var doc map[string][]map[string]any
	if err := json.Unmarshal(k.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 1 || len(doc["keys"]) != 2 {
		t.Fatalf("JWKS %s", k.JWKS())
	}
	for i, want := range []*rsa.PrivateKey{ks[1], ks[0]} {
		m := doc["keys"][i]
		if len(m) != 6 {
			t.Errorf("J10 key %d has members %v, want exactly kty use alg kid n e", i, m)
		}
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := m[priv]; ok {
				t.Errorf("J10 key %d has %s", i, priv)
			}
		}
		if m["kty"] != "RSA" || m["use"] != "sig" || m["alg"] != "RS256" || m["kid"] != thumbprint(&want.PublicKey) {
			t.Errorf("C5 key %d: %v", i, m)
		}
		if m["n"] != b64(want.N.Bytes()) || m["e"] != "AQAB" {
			t.Errorf("key %d has the wrong n or e", i)
		}
	}
	// The result is the caller's to keep.
	b := k.JWKS()
	b[0] = 'x'
	if k.JWKS()[0] != '{' {
		t.Error("JWKS returns a shared slice")
	}
}

func TestLoadKeysGeneratesOnce(t *testing.T) { onEachBackend(t, testLoadKeysGeneratesOnce) }

func testLoadKeysGeneratesOnce(t *testing.T, b testdb.Backend) {
	ctx := context.Background()
	store, st := keyStoreOn(t, b)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	k1, err := LoadKeys(ctx, KeyOptions{Store: store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].KID != k1.KID() || !stored[0].Created.Equal(now) {
		t.Fatalf("stored %+v, want one key %s", stored, k1.KID())
	}
	priv, err := parsePrivatePEM(stored[0].PrivatePEM)
	if err != nil || priv.N.BitLen() != 2048 {
		t.Fatalf("stored key: %v", err)
	}
	k2, err := LoadKeys(ctx, KeyOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if k2.KID() != k1.KID() {
		t.Fatalf("second LoadKeys uses %s, want the stored %s", k2.KID(), k1.KID())
	}
	if stored, _ := st.SigningKeys(ctx); len(stored) != 1 {
		t.Fatalf("%d keys stored after two starts", len(stored))
	}
}

// Instances starting at once on an empty database all sign with the same key.
func TestLoadKeysConcurrentStart(t *testing.T) { onEachBackend(t, testLoadKeysConcurrentStart) }

func testLoadKeysConcurrentStart(t *testing.T, b testdb.Backend) {
	ctx := context.Background()
	store, st := keyStoreOn(t, b)
	const n = 4
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadKeys(ctx, KeyOptions{Store: store})
			if errs[i] = err; err == nil {
				kids[i] = k.KID()
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || kids[i] != kids[0] {
			t.Fatalf("instance %d: kid %q, %v; instance 0: %q", i, kids[i], errs[i], kids[0])
		}
	}
	if stored, _ := st.SigningKeys(ctx); len(stored) != 1 {
		t.Fatalf("%d keys stored", len(stored))
	}
}

func TestLoadKeysBadStoredKey(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := storedKeyOf(t, testRSAKeys()[0], time.Unix(1, 0))
	cases := map[string]signingkey.Key{
		"kid-not-thumbprint": {KID: "kid-not-thumbprint", PrivatePEM: good.PrivatePEM},
		"ec-key":             {KID: "ec-key", PrivatePEM: pkcs8PEM(t, ec)},
		"small-key":          {KID: "small-key", PrivatePEM: pkcs1PEM(testRSA1024())},
		"garbage":            {KID: "garbage", PrivatePEM: []byte("garbage")},
	}
	for kid, bad := range cases {
		t.Run(kid, func(t *testing.T) {
			store := &memStore{keys: []signingkey.Key{good, bad}}
			_, err := LoadKeys(context.Background(), KeyOptions{Store: store})
			if err == nil || !strings.Contains(err.Error(), `"`+kid+`"`) {
				t.Fatalf("error %v, want one naming %q", err, kid)
			}
		})
	}
}

// Two instances on one database: a key added later (a rotation) is picked up by
// Reload, and a token signed by the instance that has it verifies on the other.
func TestReloadTwoInstances(t *testing.T) { onEachBackend(t, testReloadTwoInstances) }

func testReloadTwoInstances(t *testing.T, backend testdb.Backend) {
	ctx := context.Background()
	store, st := keyStoreOn(t, backend)
	a, err := LoadKeys(ctx, KeyOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	oldKID := a.KID()
	oldToken, err := a.Sign(jwt.MapClaims{"iss": "i", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}

	// Rotation: a newer key goes into the table.
	rotated := storedKeyOf(t, testRSAKeys()[1], time.Now().Add(time.Minute))
	if _, err := st.SQL.ExecContext(ctx, `INSERT INTO signing_key (kid, private_pem, created_at) VALUES ($1, $2, $3)`,
		rotated.KID, string(rotated.PrivatePEM), st.Time(rotated.Created)); err != nil {
		t.Fatal(err)
	}
	b, err := LoadKeys(ctx, KeyOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if b.KID() != rotated.KID {
		t.Fatalf("instance b signs with %s, want the newest key %s", b.KID(), rotated.KID)
	}
	newToken, err := b.Sign(jwt.MapClaims{"iss": "i", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	// a has never seen the new key: Verify reloads by itself.
	if _, err := a.Verify(ctx, newToken, VerifyOptions{Issuer: "i"}); err != nil {
		t.Fatalf("a rejects b's token: %v", err)
	}
	if a.KID() != rotated.KID {
		t.Errorf("after reloading, a signs with %s, want %s", a.KID(), rotated.KID)
	}
	// The old key still verifies, on both.
	for name, k := range map[string]*Keys{"a": a, "b": b} {
		if _, err := k.Verify(ctx, oldToken, VerifyOptions{Issuer: "i"}); err != nil {
			t.Errorf("%s rejects a token of the old key: %v", name, err)
		}
	}
	var doc struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(a.JWKS(), &doc); err != nil || len(doc.Keys) != 2 || doc.Keys[0].Kid != rotated.KID || doc.Keys[1].Kid != oldKID {
		t.Errorf("JWKS after rotation: %s", a.JWKS())
	}

	// Retiring the old key: an explicit Reload drops it.
	if _, err := st.SQL.ExecContext(ctx, `DELETE FROM signing_key WHERE kid = $1`, oldKID); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, oldToken, VerifyOptions{Issuer: "i"}); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a retired key still verifies: %v", err)
	}
}

// Unknown kids make Verify read the store at most once per second, and kids that
// cannot be ours never.
func TestReloadRateLimited(t *testing.T) {
	ctx := context.Background()
	ks := testRSAKeys()
	store := &memStore{keys: []signingkey.Key{storedKeyOf(t, ks[0], time.Unix(1, 0))}}
	k, err := LoadKeys(ctx, KeyOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	k.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	stranger := keysOf(t, ks[2]) // a key the store never holds
	junk, err := stranger.Sign(jwt.MapClaims{"iss": "i", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	base := store.readCount()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := k.Verify(ctx, junk, VerifyOptions{Issuer: "i"}); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("unknown kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := store.readCount() - base; n != 1 {
		t.Fatalf("50 tokens with an unknown kid read the store %d times, want 1", n)
	}
	// Kids that are no thumbprint never reach the store.
	for _, kid := range []string{"", "../../etc/passwd", "' OR '1'='1", strings.Repeat("A", 44)} {
		tok := signRaw(t, ks[2], map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, map[string]any{"iss": "i", "exp": time.Now().Add(time.Hour).Unix()})
		advance(2 * time.Second)
		if _, err := k.Verify(ctx, tok, VerifyOptions{Issuer: "i"}); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("kid %q: %v", kid, err)
		}
	}
	if n := store.readCount() - base; n != 1 {
		t.Fatalf("malformed kids read the store (%d reads)", n-1)
	}

	// A key stored just after a reload is found once the second has passed.
	if _, err := k.Verify(ctx, junk, VerifyOptions{Issuer: "i"}); !errors.Is(err, ErrInvalidToken) {
		t.Fatal(err)
	}
	if n := store.readCount() - base; n != 2 {
		t.Fatalf("an unknown kid after the interval: %d reads in all, want 2", n)
	}
	store.add(storedKeyOf(t, ks[1], time.Unix(2, 0)))
	tok, err := keysOf(t, ks[1]).Sign(jwt.MapClaims{"iss": "i", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(ctx, tok, VerifyOptions{Issuer: "i"}); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("within the second after a reload, the new key was read already: %v", err)
	}
	advance(time.Second)
	if _, err := k.Verify(ctx, tok, VerifyOptions{Issuer: "i"}); err != nil {
		t.Fatalf("a second later, the stored key is still unknown: %v", err)
	}

	// A failing store keeps the keys in use.
	store.mu.Lock()
	store.err = errors.New("database down")
	store.mu.Unlock()
	if err := k.Reload(ctx); err == nil {
		t.Fatal("Reload hid the store's error")
	}
	if _, err := k.Verify(ctx, tok, VerifyOptions{Issuer: "i"}); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}
