package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
)

// MinRSABits is the smallest signing key accepted, from a PEM file or the database:
// RFC 7518 §3.3 requires 2048 bits for RS256.
const MinRSABits = 2048

// reloadInterval bounds how often Verify re-reads the key store because of a kid it
// does not know: each such token costs a query, and anyone can send one.
const reloadInterval = time.Second

// KeyStore persists signing keys, so that every instance on one database signs with
// the same keys and accepts each other's tokens. Both stores (resources/postgres,
// resources/sqlite) implement it as they are: the key type is shared (signingkey.Key).
type KeyStore interface {
	// SigningKeys returns every stored key, oldest first.
	SigningKeys(ctx context.Context) ([]signingkey.Key, error)
	// AddSigningKeyIfNone stores k unless a key exists already, atomically across
	// processes, and returns the keys stored afterwards, oldest first.
	AddSigningKeyIfNone(ctx context.Context, k signingkey.Key) ([]signingkey.Key, error)
	// ReplaceSigningKeyPEM sets the private key of kid to new if it is still old, and
	// reports whether it did: LoadKeys encrypts a plaintext key in place with it.
	ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error)
}

// KeyOptions configures LoadKeys.
type KeyOptions struct {
	// PEMPath (FHIRBOX_JWT_PRIVATE_KEY) names a PEM file holding an RSA private key,
	// PKCS#1 or PKCS#8. When set, Store is not used: the operator manages the key.
	PEMPath string
	// Store holds the keys otherwise; the first instance to start generates one.
	Store KeyStore
	// EncryptionKey (FHIRBOX_KEY_ENCRYPTION_KEY, see ParseKeyEncryptionKey) is the
	// AES-256 key that private keys in Store are encrypted with; nil keeps them as
	// plain PEM. With it, LoadKeys encrypts a plaintext key it finds; without it (or
	// with another), an encrypted key stops LoadKeys.
	EncryptionKey []byte
	// Now is the clock Verify checks exp, nbf and iat against and generated keys are
	// dated with; nil is time.Now.
	Now func() time.Time
}

// Keys holds the RSA signing keys: the newest signs, all verify and are published.
// It is safe for concurrent use.
type Keys struct {
	opt  KeyOptions
	aead cipher.AEAD // from opt.EncryptionKey; nil when keys are stored in plain
	now  func() time.Time
	set  atomic.Pointer[keySet]

	// mu serialises reloads, so that a burst of tokens with a new kid costs one query.
	mu         sync.Mutex
	lastReload time.Time // when the store was last read, by the wall clock
	// verified remembers the tokens Verify accepted (see Verify).
	verified verifiedCache

	// clock rate-limits reloads. It is the real clock even when Now is a fake one: the
	// limit protects the database in real time, and a frozen test clock would otherwise
	// stop reloads for good.
	clock func() time.Time
}

// keySet is one immutable generation of keys, swapped whole on reload so that Sign and
// Verify never lock.
type keySet struct {
	signer *signingKey            // the newest key
	byKID  map[string]*signingKey // every key, the signer included
	jwks   []byte
}

type signingKey struct {
	kid     string
	priv    *rsa.PrivateKey
	created time.Time
}

// LoadKeys reads the signing key from opt.PEMPath, or else the keys in opt.Store,
// generating and storing an RSA-2048 key when there is none. Its errors are one line
// meant for the operator: the server prints them and exits.
func LoadKeys(ctx context.Context, opt KeyOptions) (*Keys, error) {
	k := &Keys{opt: opt, now: opt.Now, clock: time.Now}
	if k.now == nil {
		k.now = time.Now
	}
	if opt.PEMPath != "" {
		sk, err := readPEMFile(opt.PEMPath)
		if err != nil {
			return nil, err
		}
		set, err := newKeySet([]*signingKey{sk})
		if err != nil {
			return nil, err
		}
		k.set.Store(set)
		return k, nil
	}
	if opt.Store == nil {
		return nil, errors.New("auth: no signing key: set FHIRBOX_JWT_PRIVATE_KEY or give LoadKeys a key store")
	}
	if opt.EncryptionKey != nil {
		var err error
		if k.aead, err = newKeyAEAD(opt.EncryptionKey); err != nil {
			return nil, err
		}
	}
	stored, err := opt.Store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: reading the signing keys: %w", err)
	}
	if len(stored) == 0 {
		gen, err := generateKey(k.now())
		if err != nil {
			return nil, err
		}
		if gen.PrivatePEM, err = k.seal(gen.KID, gen.PrivatePEM); err != nil {
			return nil, err
		}
		// Another instance starting at the same time may have stored its key first: use
		// whatever the store holds now, so both sign with the same key.
		if stored, err = opt.Store.AddSigningKeyIfNone(ctx, gen); err != nil {
			return nil, fmt.Errorf("auth: storing the signing key: %w", err)
		}
	}
	// Check every key before changing any: a key that does not open (encrypted, and no
	// or another encryption key) stops the start here, and nothing is generated.
	set, err := k.parseStored(stored)
	if err != nil {
		return nil, err
	}
	if k.aead != nil {
		if stored, err = k.sealPlaintext(ctx, stored); err != nil {
			return nil, err
		}
		if set, err = k.parseStored(stored); err != nil {
			return nil, err
		}
	}
	k.set.Store(set)
	return k, nil
}

// sealedPrefix starts a private key that LoadKeys encrypted: what follows is base64 of
// the GCM nonce and the sealed PEM. A PEM never starts so.
const sealedPrefix = "fhirbox-aes-256-gcm:"

// ParseKeyEncryptionKey reads FHIRBOX_KEY_ENCRYPTION_KEY: 32 random bytes, written as
// 64 hex digits or in base64 (standard or URL alphabet, padded or not), as
// `openssl rand -base64 32` prints them. A passphrase is refused: a key derived from
// one is only as strong as the passphrase, and whoever reads the database could try
// passphrases offline.
func ParseKeyEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("FHIRBOX_KEY_ENCRYPTION_KEY must be 32 random bytes in base64 (openssl rand -base64 32) or 64 hex digits")
}

func newKeyAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("auth: the key encryption key has %d bytes; AES-256 needs 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("auth: the key encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal encrypts the private key of kid for the store, or returns it as it is when
// keys are stored in plain. The kid is the additional data: a sealed key copied onto
// another key's row does not open.
func (k *Keys) seal(kid string, pemData []byte) ([]byte, error) {
	if k.aead == nil {
		return pemData, nil
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("auth: encrypting the signing key: %w", err)
	}
	sealed := k.aead.Seal(nonce, nonce, pemData, []byte(kid))
	return []byte(sealedPrefix + base64.StdEncoding.EncodeToString(sealed)), nil
}

// open returns the PEM of a stored private key, decrypting it if it was sealed. Its
// errors are short phrases that callers prefix with the key's kid.
func (k *Keys) open(kid string, stored []byte) ([]byte, error) {
	rest, sealed := bytes.CutPrefix(stored, []byte(sealedPrefix))
	if !sealed {
		return stored, nil
	}
	if k.aead == nil {
		return nil, errors.New("it is encrypted: set FHIRBOX_KEY_ENCRYPTION_KEY to the key it was encrypted with")
	}
	raw, err := base64.StdEncoding.DecodeString(string(rest))
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, errors.New("it is encrypted but malformed")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(kid))
	if err != nil {
		return nil, errors.New("FHIRBOX_KEY_ENCRYPTION_KEY does not decrypt it: another key was used, or the row was altered")
	}
	return plain, nil
}

// sealPlaintext encrypts in the store each key still kept in plain, and returns the
// keys stored afterwards.
func (k *Keys) sealPlaintext(ctx context.Context, stored []signingkey.Key) ([]signingkey.Key, error) {
	changed := false
	for _, s := range stored {
		if bytes.HasPrefix(s.PrivatePEM, []byte(sealedPrefix)) {
			continue
		}
		sealed, err := k.seal(s.KID, s.PrivatePEM)
		if err != nil {
			return nil, err
		}
		// Another instance may have sealed it first; then this changes nothing.
		if _, err := k.opt.Store.ReplaceSigningKeyPEM(ctx, s.KID, s.PrivatePEM, sealed); err != nil {
			return nil, fmt.Errorf("auth: encrypting signing key %q in the database: %w", s.KID, err)
		}
		changed = true
	}
	if !changed {
		return stored, nil
	}
	stored, err := k.opt.Store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: reading the signing keys: %w", err)
	}
	return stored, nil
}

// Reload re-reads the key store, to pick up keys that other instances stored (after a
// rotation, say). The newest key then signs. With a PEM file it does nothing. On error
// the keys in use stay.
func (k *Keys) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked(ctx)
}

func (k *Keys) reloadLocked(ctx context.Context) error {
	if k.opt.PEMPath != "" || k.opt.Store == nil {
		return nil
	}
	// Even a failed read counts: a database in trouble is not to be hammered either.
	k.lastReload = k.clock()
	stored, err := k.opt.Store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("auth: reading the signing keys: %w", err)
	}
	if len(stored) == 0 {
		return errors.New("auth: the database holds no signing key any more; keeping the keys in use")
	}
	set, err := k.parseStored(stored)
	if err != nil {
		return err
	}
	k.set.Store(set)
	return nil
}

// reloadFor reloads the store for a token whose kid is unknown, at most once per
// reloadInterval, and reports the key for kid afterwards. Callers that queue up behind
// a reload in progress see its result without reading the store again.
func (k *Keys) reloadFor(ctx context.Context, kid string) (*signingKey, error) {
	if k.opt.PEMPath != "" || k.opt.Store == nil {
		return nil, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if sk := k.set.Load().byKID[kid]; sk != nil {
		return sk, nil
	}
	if !k.lastReload.IsZero() && k.clock().Sub(k.lastReload) < reloadInterval {
		return nil, nil
	}
	if err := k.reloadLocked(ctx); err != nil {
		return nil, err
	}
	return k.set.Load().byKID[kid], nil
}

// JWKS returns the JSON Web Key Set of the public keys, newest first (RFC 7517 §5),
// as served at /.well-known/jwks.json. It holds no private member (conformance J10).
func (k *Keys) JWKS() []byte {
	// A copy, since the handler's caller could write into a shared slice.
	return bytes.Clone(k.set.Load().jwks)
}

// KID returns the kid of the key that signs.
func (k *Keys) KID() string { return k.set.Load().signer.kid }

func generateKey(now time.Time) (signingkey.Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, MinRSABits)
	if err != nil {
		return signingkey.Key{}, fmt.Errorf("auth: generating the signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return signingkey.Key{}, fmt.Errorf("auth: encoding the signing key: %w", err)
	}
	return signingkey.Key{
		KID:        thumbprint(&priv.PublicKey),
		PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		Created:    now.UTC(),
	}, nil
}

// parseStored turns the store's keys into a key set. One bad key fails the whole set:
// a database that holds a key we cannot use is a configuration error to fix, not to
// skip silently.
func (k *Keys) parseStored(stored []signingkey.Key) (*keySet, error) {
	keys := make([]*signingKey, 0, len(stored))
	for _, s := range stored {
		pemData, err := k.open(s.KID, s.PrivatePEM)
		if err != nil {
			return nil, fmt.Errorf("auth: signing key %q in the database: %s", s.KID, err)
		}
		priv, err := parsePrivatePEM(pemData)
		if err != nil {
			return nil, fmt.Errorf("auth: signing key %q in the database: %s", s.KID, err)
		}
		kid := thumbprint(&priv.PublicKey)
		if s.KID != kid {
			return nil, fmt.Errorf("auth: signing key %q in the database: its kid is not the key's RFC 7638 thumbprint %s", s.KID, kid)
		}
		keys = append(keys, &signingKey{kid: kid, priv: priv, created: s.Created})
	}
	return newKeySet(keys)
}

func readPEMFile(path string) (*signingKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// The path is in the message already; the PathError would repeat it.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("auth: signing key file %s (FHIRBOX_JWT_PRIVATE_KEY): %s", path, err)
	}
	priv, err := parsePrivatePEM(data)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key file %s (FHIRBOX_JWT_PRIVATE_KEY): %s", path, err)
	}
	return &signingKey{kid: thumbprint(&priv.PublicKey), priv: priv}, nil
}

// parsePrivatePEM reads the first private key block of data, PKCS#1 or PKCS#8, and
// checks that it is an RSA key of at least MinRSABits. Its errors are short phrases
// that callers prefix with where the key came from.
func parsePrivatePEM(data []byte) (*rsa.PrivateKey, error) {
	var block *pem.Block
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		// A file may start with a certificate or EC parameters: look for the key.
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			block = b
			break
		}
	}
	if block == nil {
		return nil, errors.New("no PEM private key found (expected a BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY block)")
	}
	if _, ok := block.Headers["DEK-Info"]; ok || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the private key is encrypted; give it unencrypted")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a %s is not an RSA key (RS256 needs one)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid %s: %s", block.Type, err)
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key is not an RSA key (RS256 needs one)", key)
	}
	if bits := priv.N.BitLen(); bits < MinRSABits {
		return nil, fmt.Errorf("the RSA key has %d bits, fewer than the %d RS256 requires", bits, MinRSABits)
	}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("invalid RSA key: %s", err)
	}
	priv.Precompute()
	return priv, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of pub (SHA-256, base64url): a kid that
// any holder of the public key can recompute, so it cannot name a different key.
func thumbprint(pub *rsa.PublicKey) string {
	// RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
	// Base64url strings need no JSON escaping.
	j := `{"e":"` + b64(big.NewInt(int64(pub.E)).Bytes()) + `","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(j))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// newKeySet orders keys newest first, so the signer is the first one and the JWKS
// lists the key in use before the older ones still accepted.
func newKeySet(keys []*signingKey) (*keySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: no signing key")
	}
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b *signingKey) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(b.kid, a.kid)
	})
	set := &keySet{signer: keys[0], byKID: make(map[string]*signingKey, len(keys))}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	for _, sk := range keys {
		if _, dup := set.byKID[sk.kid]; dup {
			continue
		}
		set.byKID[sk.kid] = sk
		pub := &sk.priv.PublicKey
		doc.Keys = append(doc.Keys, jwk{
			Kty: "RSA", Use: "sig", Alg: "RS256", Kid: sk.kid,
			N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	var err error
	if set.jwks, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("auth: encoding the JWKS: %w", err)
	}
	return set, nil
}
