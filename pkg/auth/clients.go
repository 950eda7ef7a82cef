package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/resources"
)

// ErrBadCredentials is the one answer for an unknown client and a wrong secret.
var ErrBadCredentials = errors.New("invalid client credentials")

// dummyHash is verified against when the client does not exist, so that an unknown
// client costs the same time as a wrong secret and the two cannot be told apart.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("fhirbox-no-such-client"), bcrypt.DefaultCost)

// ClientVerifier checks client_id/secret pairs against the stored Client resources.
// A verified pair is remembered in memory (keyed by client id, holding the SHA-256 of the
// secret) so repeated authentication does not pay bcrypt; a wrong secret always does.
// Entries are dropped when the Client is written (Forget).
type ClientVerifier struct {
	store resources.Store

	mu    sync.RWMutex
	cache map[string]verified
}

type verified struct {
	sum    [32]byte
	client map[string]any
}

// NewClientVerifier returns a verifier reading Clients from store.
func NewClientVerifier(store resources.Store) *ClientVerifier {
	return &ClientVerifier{store: store, cache: map[string]verified{}}
}

// Verify returns the Client (without its secret) when secret is the client's secret,
// ErrBadCredentials when the client is unknown, deleted, has no secret or the secret is
// wrong, and other errors only when the store fails.
func (v *ClientVerifier) Verify(ctx context.Context, clientID, secret string) (map[string]any, error) {
	sum := sha256.Sum256([]byte(secret))
	v.mu.RLock()
	e, ok := v.cache[clientID]
	v.mu.RUnlock()
	if ok && subtle.ConstantTimeCompare(e.sum[:], sum[:]) == 1 {
		return e.client, nil
	}
	hash, client, err := v.load(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(secret))
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(secret)) != nil {
		return nil, ErrBadCredentials
	}
	v.mu.Lock()
	v.cache[clientID] = verified{sum: sum, client: client}
	v.mu.Unlock()
	return client, nil
}

// Forget drops what is remembered of clientID; call it whenever the Client changes.
func (v *ClientVerifier) Forget(clientID string) {
	v.mu.Lock()
	delete(v.cache, clientID)
	v.mu.Unlock()
}

// load reads the Client's secret hash; a nil hash means "no usable client".
func (v *ClientVerifier) load(ctx context.Context, clientID string) ([]byte, map[string]any, error) {
	if !resources.ValidID(clientID) {
		return nil, nil, nil
	}
	res, err := v.store.Read(ctx, "Client", clientID)
	if resources.ErrorCode(err) == resources.CodeNotFound {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if res.Deleted {
		return nil, nil, nil
	}
	var doc map[string]any
	if err := json.Unmarshal(res.Content, &doc); err != nil {
		return nil, nil, resources.Internal(err)
	}
	secret, _ := doc["secret"].(string)
	delete(doc, "secret")
	if secret == "" {
		return nil, doc, nil
	}
	return []byte(secret), doc, nil
}

// ForgetAll drops everything remembered, when writes may have been missed.
func (v *ClientVerifier) ForgetAll() {
	v.mu.Lock()
	clear(v.cache)
	v.mu.Unlock()
}
