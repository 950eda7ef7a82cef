package auth

import (
	"context"
	"sync"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// Loader reads what a Session refers to when it is put in the cache.
type Loader interface {
	// User returns the User (password removed), nil when it is missing, deleted or
	// inactive.
	User(ctx context.Context, id string) (map[string]any, error)
	// Client returns the Client (secret removed), nil when it is missing or deleted.
	Client(ctx context.Context, id string) (map[string]any, error)
}

// maxCached bounds the cache; past it, the cache starts over.
const maxCached = 100_000

// eventLog is how many invalidations the cache remembers to settle races between a
// look-up in flight and an invalidation that overtook it.
const eventLog = 1024

// sessionEntry is a Session as bearer authentication needs it.
type sessionEntry struct {
	key                  string
	id, userID, clientID string
	accessHash           string
	exp                  time.Time
	session, user        map[string]any
	client               map[string]any
}

type cacheEvent struct {
	gen   uint64
	ev    resources.WriteEvent
	reset bool
}

// sessionCache keeps authenticated sessions in memory so that a bearer request costs
// no database round trip. Every write of a Session, User or Client (here or, through
// the change feed, on another instance) drops the entries it concerns.
type sessionCache struct {
	mu       sync.Mutex
	entries  map[string]*sessionEntry
	bySessID map[string][]*sessionEntry
	byUser   map[string]map[*sessionEntry]bool
	byClient map[string]map[*sessionEntry]bool
	gen      uint64
	log      []cacheEvent // the last eventLog invalidations, oldest first
}

func newSessionCache() *sessionCache {
	c := &sessionCache{}
	c.clear()
	return c
}

func (c *sessionCache) clear() {
	c.entries = map[string]*sessionEntry{}
	c.bySessID = map[string][]*sessionEntry{}
	c.byUser = map[string]map[*sessionEntry]bool{}
	c.byClient = map[string]map[*sessionEntry]bool{}
}

// get returns the entry under key, fetching the Session and what it refers to on a
// miss. nil means no usable session; misses are not remembered.
func (c *sessionCache) get(ctx context.Context, key string, fetch func(context.Context) (*resources.Resource, error), load Loader) (*sessionEntry, error) {
	c.mu.Lock()
	e, g := c.entries[key], c.gen
	c.mu.Unlock()
	if e != nil {
		return e, nil
	}
	r, err := fetch(ctx)
	if err != nil || r == nil || r.Deleted {
		return nil, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return nil, resources.Internal(err)
	}
	e = &sessionEntry{key: key, id: r.ID, userID: refID(doc["user"]), clientID: refID(doc["client"])}
	e.accessHash, _ = doc["access_token_hash"].(string)
	exp, ok := number(doc["exp"])
	if !ok {
		return nil, nil
	}
	e.exp = time.Unix(exp, 0)
	for _, f := range []string{"access_token_hash", "refresh_token_hash", "rotated_refresh_hashes"} {
		delete(doc, f)
	}
	e.session = doc
	if e.client, err = load.Client(ctx, e.clientID); err != nil || e.client == nil {
		return nil, err
	}
	if e.userID != "" {
		if e.user, err = load.User(ctx, e.userID); err != nil || e.user == nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != g && c.overtaken(g, e) {
		return e, nil // good for this request, stale for the next
	}
	if len(c.entries) >= maxCached {
		c.clear()
	}
	c.entries[key] = e
	c.bySessID[e.id] = append(c.bySessID[e.id], e)
	addTo(c.byClient, e.clientID, e)
	if e.userID != "" {
		addTo(c.byUser, e.userID, e)
	}
	return e, nil
}

// overtaken reports whether an invalidation after generation g concerns e (or the log
// no longer reaches back to g, so nobody can tell).
func (c *sessionCache) overtaken(g uint64, e *sessionEntry) bool {
	if len(c.log) == 0 || c.log[0].gen > g+1 {
		return true
	}
	for _, ce := range c.log {
		if ce.gen <= g {
			continue
		}
		if ce.reset || concerns(ce.ev, e) {
			return true
		}
	}
	return false
}

func concerns(ev resources.WriteEvent, e *sessionEntry) bool {
	switch ev.Type {
	case SessionType:
		return ev.ID == e.id
	case "User":
		return ev.ID == e.userID
	case "Client":
		return ev.ID == e.clientID
	}
	return false
}

func addTo(m map[string]map[*sessionEntry]bool, k string, e *sessionEntry) {
	if m[k] == nil {
		m[k] = map[*sessionEntry]bool{}
	}
	m[k][e] = true
}

// forget drops the entries a write may have changed.
func (c *sessionCache) forget(ev resources.WriteEvent) {
	if !ev.Reset && ev.Type != SessionType && ev.Type != "User" && ev.Type != "Client" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.log = append(c.log, cacheEvent{gen: c.gen, ev: ev, reset: ev.Reset})
	if len(c.log) > eventLog {
		c.log = c.log[len(c.log)-eventLog:]
	}
	switch {
	case ev.Reset:
		c.clear()
	case ev.Type == SessionType:
		for _, e := range c.bySessID[ev.ID] {
			c.drop(e)
		}
	case ev.Type == "User":
		for e := range c.byUser[ev.ID] {
			c.drop(e)
		}
	case ev.Type == "Client":
		for e := range c.byClient[ev.ID] {
			c.drop(e)
		}
	}
}

func (c *sessionCache) drop(e *sessionEntry) {
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	list := c.bySessID[e.id]
	for i, x := range list {
		if x == e {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.bySessID, e.id)
	} else {
		c.bySessID[e.id] = list
	}
	delete(c.byUser[e.userID], e)
	if len(c.byUser[e.userID]) == 0 {
		delete(c.byUser, e.userID)
	}
	delete(c.byClient[e.clientID], e)
	if len(c.byClient[e.clientID]) == 0 {
		delete(c.byClient, e.clientID)
	}
}
