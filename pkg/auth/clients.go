package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"sync"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"

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
//
// Every check goes through a Limiter, per client id and per address, so that a secret
// cannot be guessed at request speed: past the free failures each wrong secret makes both
// wait, and while either waits every attempt, the right secret included, gets a
// *LimitedError without being checked.
type ClientVerifier struct {
	store   resources.Store
	limiter *Limiter
	// flight runs one bcrypt check for the same client and secret presented in parallel
	// (a client's first requests after a start): the others share its answer instead of
	// each reserving an attempt, which past the free allowance would be refused.
	flight singleflight.Group

	// OnSecretCheck, when set, is called before each bcrypt comparison, the dummy one for
	// an unknown client included: tests count the checks a burst of guesses costs. Set it
	// before the verifier is used.
	OnSecretCheck func()

	mu    sync.RWMutex
	cache map[string]verified
}

type verified struct {
	sum    [32]byte
	client map[string]any
}

// NewClientVerifier returns a verifier reading Clients from store, its guessing limits
// kept by limiter (nil: a Limiter of its own with the defaults).
func NewClientVerifier(store resources.Store, limiter *Limiter) *ClientVerifier {
	if limiter == nil {
		limiter = NewLimiter(LimiterOptions{})
	}
	return &ClientVerifier{store: store, limiter: limiter, cache: map[string]verified{}}
}

// ClientKeys are the limiter keys of a client secret check: the client id, and the
// caller's address in a space of its own, so that users mistyping passwords behind a
// shared proxy address do not hold up the API clients behind it, nor the other way round.
func ClientKeys(clientID, addr string) []string {
	return []string{"client:" + clientID, "client-addr:" + addr}
}

// Verify returns the Client (without its secret) when secret is the client's secret,
// ErrBadCredentials when the client is unknown, deleted, has no secret or the secret is
// wrong, a *LimitedError while the client id or addr (the caller's address) must wait,
// and other errors only when the store fails.
func (v *ClientVerifier) Verify(ctx context.Context, clientID, secret, addr string) (map[string]any, error) {
	sum := sha256.Sum256([]byte(secret))
	v.mu.RLock()
	e, cached := v.cache[clientID]
	v.mu.RUnlock()
	keys := ClientKeys(clientID, addr)
	if cached && subtle.ConstantTimeCompare(e.sum[:], sum[:]) == 1 {
		// The remembered secret answers without bcrypt and counts nothing, but only while
		// neither key waits. A secret that does not match it goes through Begin below: no
		// guess is ever answered without being counted first.
		if wait, ok := v.limiter.Check(keys...); !ok {
			return nil, &LimitedError{Wait: wait}
		}
		return e.client, nil
	}
	// Parallel checks of one secret for one client share a bcrypt run and an attempt;
	// different secrets, a guesser's, are each reserved, checked and counted.
	res, err, _ := v.flight.Do(clientID+"\x00"+string(sum[:]), func() (any, error) {
		// Detached: the requests sharing this check must not fail because the first
		// one went away.
		return v.check(context.WithoutCancel(ctx), clientID, secret, sum, keys)
	})
	if err != nil {
		return nil, err
	}
	return res.(map[string]any), nil
}

// check is the slow path of Verify: reserve an attempt, pay bcrypt, count the outcome.
func (v *ClientVerifier) check(ctx context.Context, clientID, secret string, sum [32]byte, keys []string) (map[string]any, error) {
	att, wait, ok := v.limiter.Begin(keys...)
	if !ok {
		return nil, &LimitedError{Wait: wait}
	}
	defer att.Cancel() // a store failure was no guess
	hash, client, err := v.load(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if v.OnSecretCheck != nil {
		v.OnSecretCheck()
	}
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(secret))
		att.Fail()
		return nil, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(secret)) != nil {
		att.Fail()
		return nil, ErrBadCredentials
	}
	att.Succeed(keys[0])
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
