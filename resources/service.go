package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/resources/validate"
)

// ValidID reports whether id is a valid FHIR logical id (conformance F18):
// [A-Za-z0-9\-.]{1,64}, case-sensitive (validate.ValidID, which references use too).
func ValidID(id string) bool { return validate.ValidID(id) }

// NewID returns a server-assigned id: a UUIDv7 (RFC 9562), random but for its leading 48
// bits of Unix milliseconds, and increasing within the process. Ids made one after
// another sort together, so each create adds to the right-hand end of the indexes keyed
// by id (resource, history and the index tables' probes) instead of to a random page of
// each: with random (v4) UUIDs a token's Session dirtied pages all over those indexes,
// and the first change to a page after each checkpoint writes the whole page to the WAL
// (10–30 kB of WAL per token against 5–6 kB, measured on PostgreSQL). Such ids tell
// when they were made, to the millisecond, as meta.lastUpdated does anyway.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Options configures a Service. The zero value is usable.
type Options struct {
	// Now returns the current time; tests inject a fixed clock.
	Now func() time.Time
	// BcryptCost is the cost used to hash secret fields (default bcrypt.DefaultCost).
	BcryptCost int
	// NewID generates server-assigned ids (default: NewID).
	NewID func() string
	// DefaultCount and MaxCount bound search and history pages (default 20 and 1000).
	DefaultCount, MaxCount int
	// Limits caps the clauses, values and names one search may ask for (zero fields:
	// DefaultLimits); the server reads them from LimitsSetting.
	Limits Limits
	// ResultSets says how long stored result sets live and how many ids they hold
	// (zero fields: DefaultResultSets; see resultset.go).
	ResultSets ResultSetOptions
	// ConditionalDelete says whether a conditional delete may remove several
	// resources, and how many (conditional.go; zero: single).
	ConditionalDelete ConditionalDeleteOptions

	// Validation says whether writes of R4 types are validated (validation.go; zero
	// value: on).
	Validation ValidationMode
}

// WriteEvent describes a committed write, for caches that must forget what changed.
type WriteEvent struct {
	Type    string
	ID      string
	Deleted bool
	// Reset says that writes may have been missed (the change feed was interrupted):
	// caches must reload everything. Type and ID are empty.
	Reset bool
}

// CommitHook runs after a local write of its type has committed: prev is the version
// it replaced (nil for a creation), next the version written (Deleted for a deletion).
type CommitHook func(ctx context.Context, prev, next *Resource)

type trustedKey struct{}

// WithTrusted marks ctx as the server's own: writes under it may set the type's Hidden
// fields (a Session's token hashes), which writes through the API never can.
func WithTrusted(ctx context.Context) context.Context {
	return context.WithValue(ctx, trustedKey{}, true)
}

func trusted(ctx context.Context) bool { v, _ := ctx.Value(trustedKey{}).(bool); return v }

// IsTrusted reports whether ctx carries WithTrusted: the write is the server's own.
func IsTrusted(ctx context.Context) bool { return trusted(ctx) }

type freshKey struct{}

// WithFreshID tells the store that the id of the write under ctx was just generated
// at random, so no row can exist for it: the store may skip looking for one.
func WithFreshID(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// FreshID reports whether ctx carries WithFreshID.
func FreshID(ctx context.Context) bool { v, _ := ctx.Value(freshKey{}).(bool); return v }

// Validator checks a document of one type before it is written; an error (normally a
// CodeUnprocessable *Error naming the field) aborts the write.
type Validator func(ctx context.Context, doc map[string]any) error

// Service is the resource engine: it validates, versions, hashes secrets and indexes
// resources, and delegates persistence to a Store. It is safe for concurrent use.
type Service struct {
	reg   *Registry
	store Store
	opts  Options

	mu         sync.RWMutex
	onWrite    []func(WriteEvent)
	validators map[string][]Validator
	amenders   map[string][]Amender
	commits    map[string][]CommitHook
	// jobs are the reindex jobs of this process (reindex.go).
	jobs jobList
	// reloading is set while a failed reload of the SearchParameters is retried.
	reloading atomic.Bool
}

// NewService returns a Service over store with the types of reg.
func NewService(reg *Registry, store Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BcryptCost == 0 {
		opts.BcryptCost = bcrypt.DefaultCost
	}
	if opts.NewID == nil {
		opts.NewID = NewID
	}
	if opts.DefaultCount <= 0 {
		opts.DefaultCount = 20
	}
	if opts.MaxCount <= 0 {
		opts.MaxCount = 1000
	}
	opts.Limits = opts.Limits.withDefaults()
	opts.ResultSets = opts.ResultSets.withDefaults()
	return &Service{reg: reg, store: store, opts: opts}
}

// Registry returns the service's type registry.
func (s *Service) Registry() *Registry { return s.reg }

// OnWrite registers fn to be called after every committed write (create, update,
// delete). Callbacks run synchronously on the writing goroutine and must be quick.
func (s *Service) OnWrite(fn func(WriteEvent)) {
	s.mu.Lock()
	s.onWrite = append(s.onWrite, fn)
	s.mu.Unlock()
}

// Dispatch delivers ev to the OnWrite callbacks as if it had been written here: the
// change feed uses it for writes made by other server processes.
func (s *Service) Dispatch(ev WriteEvent) { s.notify(ev) }

// AddValidator registers fn to check every document of typ before create and update.
func (s *Service) AddValidator(typ string, fn Validator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.validators == nil {
		s.validators = map[string][]Validator{}
	}
	s.validators[typ] = append(s.validators[typ], fn)
}

// Amender adjusts a document of its type inside the write transaction, seeing the
// version it replaces (cur, nil when there is none): what it sets depends on what is
// stored, which a Validator, running before the transaction, cannot know for sure.
// Write may call it more than once for one write.
type Amender func(ctx context.Context, cur *Resource, doc map[string]any) error

// AddAmender registers fn to adjust every document of typ that is created or updated.
func (s *Service) AddAmender(typ string, fn Amender) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.amenders == nil {
		s.amenders = map[string][]Amender{}
	}
	s.amenders[typ] = append(s.amenders[typ], fn)
}

func (s *Service) amend(ctx context.Context, typ string, cur *Resource, doc map[string]any) error {
	s.mu.RLock()
	fns := s.amenders[typ]
	s.mu.RUnlock()
	for _, fn := range fns {
		if err := fn(ctx, cur, doc); err != nil {
			return err
		}
	}
	return nil
}

// OnCommit registers fn to run after every local write of typ has committed.
func (s *Service) OnCommit(typ string, fn CommitHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commits == nil {
		s.commits = map[string][]CommitHook{}
	}
	s.commits[typ] = append(s.commits[typ], fn)
}

func (s *Service) committed(ctx context.Context, prev, next *Resource) {
	s.mu.RLock()
	fns := s.commits[next.Type]
	s.mu.RUnlock()
	for _, fn := range fns {
		fn(ctx, prev, next)
	}
}

func (s *Service) validate(ctx context.Context, typ string, doc map[string]any) error {
	s.mu.RLock()
	fns := s.validators[typ]
	s.mu.RUnlock()
	for _, fn := range fns {
		if err := fn(ctx, doc); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) notify(ev WriteEvent) {
	s.mu.RLock()
	fns := s.onWrite
	s.mu.RUnlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// TypeDef returns the definition of typ or a CodeNotFound error naming it.
func (s *Service) TypeDef(typ string) (*TypeDef, error) {
	td, ok := s.reg.Type(typ)
	if !ok {
		return nil, Errorf(CodeNotFound, "unknown resource type %q", typ)
	}
	return td, nil
}

// CreateOptions modifies Create.
type CreateOptions struct {
	// KeepID honours an id in the body (fhirbox's /{Type} API, as Aidbox does): an
	// existing live resource with that id is a conflict. Otherwise the server assigns one.
	KeepID bool
	// IfNoneExist is a search query (conformance F6): with one match the match is returned and
	// nothing is created; with more than one the create fails with 412.
	IfNoneExist string
	// ID, when not empty, is the id to create under instead of a new one: an id of
	// NewResourceID that the caller needed before the write (a transaction rewrites the
	// references to an entry's urn:uuid to it first, conformance F43).
	ID string
}

// Create stores a new resource. created is false when IfNoneExist found the resource.
func (s *Service) Create(ctx context.Context, typ string, doc map[string]any, opt CreateOptions) (res *Resource, created bool, err error) {
	td, err := s.TypeDef(typ)
	if err != nil {
		return nil, false, err
	}
	if err := checkResourceType(typ, doc); err != nil {
		return nil, false, err
	}
	if err := s.validate(ctx, typ, doc); err != nil {
		return nil, false, err
	}
	if !opt.KeepID {
		delete(doc, "id") // the server assigns one: what the body says is not kept, nor checked
	}
	if err := s.checkR4(ctx, td, doc); err != nil {
		return nil, false, err
	}
	if opt.IfNoneExist != "" {
		existing, err := s.conditionalMatch(ctx, typ, opt.IfNoneExist)
		if err != nil {
			return nil, false, err
		}
		if existing != nil {
			return existing, false, nil
		}
	}
	id := opt.ID
	if id == "" {
		id = s.opts.NewID()
	}
	fresh := true
	if opt.KeepID {
		if bid, ok := doc["id"]; ok && bid != nil {
			sid, ok := bid.(string)
			if !ok || !ValidID(sid) {
				return nil, false, &Error{Code: CodeInvalid, Message: fmt.Sprintf("invalid id %v: ids match [A-Za-z0-9-.]{1,64}", bid), Expression: "id"}
			}
			id, fresh = sid, false
		}
	}
	if fresh {
		ctx = WithFreshID(ctx)
	}
	if err := s.hashSecrets(td, doc); err != nil {
		return nil, false, err
	}
	dropHidden(ctx, td, doc)
	var prev *Resource
	res, err = s.store.Write(ctx, typ, id, func(cur *Resource) (*Resource, *Index, error) {
		if cur != nil && !cur.Deleted {
			return nil, nil, Errorf(CodeConflict, "%s/%s already exists", typ, id)
		}
		prev = cur
		if err := s.amend(ctx, typ, cur, doc); err != nil {
			return nil, nil, err
		}
		return s.reachedVersion(ctx, typ, id, cur, doc)
	})
	if err != nil {
		return nil, false, err
	}
	s.afterWrite(ctx, prev, res)
	return res, true, nil
}

// NewResourceID returns an id for a create, as Create assigns them (Options.NewID).
func (s *Service) NewResourceID() string { return s.opts.NewID() }

// written tells the commit hooks and the caches about a committed write.
func (s *Service) written(ctx context.Context, prev, next *Resource) {
	s.committed(ctx, prev, next)
	s.notify(WriteEvent{Type: next.Type, ID: next.ID, Deleted: next.Deleted})
}

// dropHidden removes the Hidden fields from a document written through the API: only
// the server's own (trusted) writes set them.
func dropHidden(ctx context.Context, td *TypeDef, doc map[string]any) {
	if trusted(ctx) {
		return
	}
	for _, f := range td.Hidden {
		delete(doc, f)
	}
}

func (s *Service) conditionalMatch(ctx context.Context, typ, query string) (*Resource, error) {
	params, err := url.ParseQuery(strings.TrimPrefix(query, "?"))
	if err != nil {
		return nil, Errorf(CodeInvalid, "If-None-Exist is not a valid query: %v", err)
	}
	matches, err := s.matchCriteria(ctx, typ, params, "If-None-Exist", 1)
	if err != nil {
		return nil, err
	}
	switch len(matches) {
	case 0:
		return nil, nil
	case 1:
		return matches[0], nil
	default:
		return nil, Errorf(CodePreconditionFailed, "If-None-Exist matches more than one %s", typ)
	}
}

// Update replaces (or creates) the resource typ/id. ifMatch, when not empty, is the
// version the client expects to replace (an ETag such as W/"3"); a different current
// version is a CodePreconditionFailed error. created reports update-as-create.
func (s *Service) Update(ctx context.Context, typ, id string, doc map[string]any, ifMatch string) (res *Resource, created bool, err error) {
	td, err := s.checkPut(ctx, typ, id, doc)
	if err != nil {
		return nil, false, err
	}
	want := int64(0)
	if ifMatch != "" {
		if want, err = ParseETag(ifMatch); err != nil {
			return nil, false, err
		}
	}
	if err := s.seal(ctx, td, doc); err != nil {
		return nil, false, err
	}
	var prevRes *Resource
	res, err = s.store.Write(ctx, typ, id, func(cur *Resource) (*Resource, *Index, error) {
		if ifMatch != "" && (cur == nil || cur.VersionID != want) {
			return nil, nil, Errorf(CodePreconditionFailed, "If-Match %s does not match the current version of %s/%s", ifMatch, typ, id)
		}
		created = cur == nil || cur.Deleted
		prevRes = cur
		if cur != nil && !cur.Deleted && len(td.Secret)+len(td.Hidden) > 0 {
			var prev map[string]any
			if err := json.Unmarshal(cur.Content, &prev); err != nil {
				return nil, nil, Internal(err)
			}
			// A body without the secret keeps the stored one, so read-modify-write of a
			// Client (whose secret is never returned) works; hidden fields likewise.
			keepFields(td.Secret, doc, prev)
			if !trusted(ctx) {
				keepFields(td.Hidden, doc, prev)
			}
		}
		if err := s.amend(ctx, typ, cur, doc); err != nil {
			return nil, nil, err
		}
		if cur != nil && !cur.Deleted {
			// What an update replaces must be reached as much as what it stores: else
			// a confined caller could take a resource into its reach.
			if err := s.checkReach(ctx, typ, id, nil, cur.Content); err != nil {
				return nil, nil, err
			}
		}
		return s.reachedVersion(ctx, typ, id, cur, doc)
	})
	if err != nil {
		return nil, false, err
	}
	s.afterWrite(ctx, prevRes, res)
	return res, created, nil
}

// checkPut checks doc as the body of a PUT of typ/id, before any transaction.
func (s *Service) checkPut(ctx context.Context, typ, id string, doc map[string]any) (*TypeDef, error) {
	td, err := s.TypeDef(typ)
	if err != nil {
		return nil, err
	}
	if !ValidID(id) {
		return nil, Errorf(CodeInvalid, "invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	if err := checkResourceType(typ, doc); err != nil {
		return nil, err
	}
	if bid, ok := doc["id"]; ok && bid != nil && bid != id {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("body id %v does not match the URL id %q", bid, id), Expression: "id"}
	}
	if err := s.validate(ctx, typ, doc); err != nil {
		return nil, err
	}
	if err := s.checkR4(ctx, td, doc); err != nil {
		return nil, err
	}
	return td, nil
}

// seal hashes doc's secret fields and drops the hidden ones a caller may not set.
// Hashed once, outside the transaction: Write may run its function twice.
func (s *Service) seal(ctx context.Context, td *TypeDef, doc map[string]any) error {
	if err := s.hashSecrets(td, doc); err != nil {
		return err
	}
	dropHidden(ctx, td, doc)
	return nil
}

// keepFields copies each of fields that doc lacks from prev.
func keepFields(fields []string, doc, prev map[string]any) {
	for _, f := range fields {
		if v, ok := doc[f]; ok && v != nil {
			continue
		}
		if pv, ok := prev[f]; ok {
			doc[f] = pv
		}
	}
}

// Delete marks typ/id deleted with a new version. Deleting what is already deleted or
// never existed changes nothing and returns (nil, nil).
func (s *Service) Delete(ctx context.Context, typ, id string) (*Resource, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, err
	}
	if !ValidID(id) {
		return nil, Errorf(CodeInvalid, "invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	changed := false
	var prev *Resource
	res, err := s.store.Write(ctx, typ, id, func(cur *Resource) (*Resource, *Index, error) {
		if cur == nil || cur.Deleted {
			return nil, nil, nil
		}
		if err := s.checkReach(ctx, typ, id, nil, cur.Content); err != nil {
			return nil, nil, err
		}
		changed, prev = true, cur
		return &Resource{
			Type: typ, ID: id, VersionID: cur.VersionID + 1,
			LastUpdated: s.now(), Deleted: true, Content: cur.Content,
		}, &Index{}, nil
	})
	if err != nil || !changed {
		return nil, err
	}
	s.afterWrite(ctx, prev, res)
	return res, nil
}

// Read returns the current version of typ/id: CodeNotFound if it never existed,
// CodeGone (with the deletion as the resource) if it is deleted.
func (s *Service) Read(ctx context.Context, typ, id string) (*Resource, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, err
	}
	if !ValidID(id) {
		return nil, Errorf(CodeInvalid, "invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	res, err := s.store.Read(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkReach(ctx, typ, id, nil, res.Content); err != nil {
		return nil, err
	}
	if res.Deleted {
		return res, Errorf(CodeGone, "%s/%s was deleted", typ, id)
	}
	return res, nil
}

// Current returns the current version of typ/id for the server's own reads (a
// credential check, a token's Session, a resource written at start): nil when there is
// none, whether it was never written, was deleted, or id is no valid id. Unlike Read it
// answers no client, so absence is no error. Content is as stored, secret and hidden
// fields included: the caller must not pass it on as it is.
func (s *Service) Current(ctx context.Context, typ, id string) (*Resource, error) {
	if !ValidID(id) {
		return nil, nil
	}
	res, err := s.store.Read(ctx, typ, id)
	if ErrorCode(err) == CodeNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if res.Deleted {
		return nil, nil
	}
	return res, nil
}

// VRead returns one version of typ/id; a version that is a deletion is CodeGone.
func (s *Service) VRead(ctx context.Context, typ, id, vid string) (*Resource, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, err
	}
	if !ValidID(id) {
		return nil, Errorf(CodeInvalid, "invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	v, err := strconv.ParseInt(vid, 10, 64)
	if err != nil || v < 1 {
		return nil, Errorf(CodeNotFound, "%s/%s has no version %q", typ, id, vid)
	}
	res, err := s.store.VRead(ctx, typ, id, v)
	if err != nil {
		return nil, err
	}
	// A version is reached as the resource is now: a resource moved out of a
	// compartment takes its history with it.
	if err := s.reachCurrent(ctx, typ, id); err != nil {
		return nil, err
	}
	if res.Deleted {
		return res, Errorf(CodeGone, "version %d of %s/%s is a deletion", v, typ, id)
	}
	return res, nil
}

// Search parses params as a search on typ and runs it.
func (s *Service) Search(ctx context.Context, typ string, params url.Values, strict bool) (*SearchResult, *Query, error) {
	q, err := s.parseSearch(ctx, typ, params, strict)
	if err != nil {
		return nil, nil, err
	}
	res, err := s.run(ctx, q)
	if err != nil {
		return nil, q, err
	}
	return res, q, nil
}

// parseSearch parses params as a search on typ with the service's options and prepares
// it for a store.
func (s *Service) parseSearch(ctx context.Context, typ string, params url.Values, strict bool) (*Query, error) {
	q, err := ParseSearch(s.reg, typ, params, s.parseOptions(strict))
	if err != nil {
		return nil, err
	}
	return q, s.prepare(ctx, q)
}

// parseOptions are the ParseOptions of the service's searches.
func (s *Service) parseOptions(strict bool) ParseOptions {
	return ParseOptions{Strict: strict, DefaultCount: s.opts.DefaultCount, MaxCount: s.opts.MaxCount, Limits: s.opts.Limits}
}

// prepare completes a parsed search before a store runs it: the caller must be allowed
// to search every type its chains and _has lead to, _summary=count asks for the total
// only, and a _list is read.
func (s *Service) prepare(ctx context.Context, q *Query) error {
	if err := checkChains(ctx, q); err != nil {
		return err
	}
	if err := s.confine(ctx, q); err != nil {
		return err
	}
	if q.Summary == "count" {
		if q.Total == TotalNone {
			return invalid("_total", "_summary=count asks for the total that _total=none leaves out: drop one of them")
		}
		q.Count = 0
	}
	if q.List != nil {
		return s.resolveList(ctx, q)
	}
	return nil
}

// reachedVersion is newVersion for a write that the confinements of ctx must reach:
// what it would store is checked against the index it would store.
func (s *Service) reachedVersion(ctx context.Context, typ, id string, cur *Resource, doc map[string]any) (*Resource, *Index, error) {
	res, idx, err := s.newVersion(typ, id, cur, doc)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkReach(ctx, typ, id, idx, nil); err != nil {
		return nil, nil, err
	}
	return res, idx, nil
}

// reachCurrent refuses typ/id when a confinement of ctx does not reach its current
// version (deleted or not); a resource that was never written is left to the caller's
// own not-found answer.
func (s *Service) reachCurrent(ctx context.Context, typ, id string) error {
	if len(confinementsOf(ctx)) == 0 {
		return nil
	}
	cur, err := s.store.Read(ctx, typ, id)
	if ErrorCode(err) == CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	return s.checkReach(ctx, typ, id, nil, cur.Content)
}

// newVersion builds the next version of typ/id from doc: it sets resourceType, id and
// meta (versionId, lastUpdated; a client's own are ignored, conformance F1) and extracts the
// index.
func (s *Service) newVersion(typ, id string, cur *Resource, doc map[string]any) (*Resource, *Index, error) {
	vid := int64(1)
	if cur != nil {
		vid = cur.VersionID + 1
	}
	now := s.now()
	meta, _ := doc["meta"].(map[string]any)
	if meta == nil {
		if m, ok := doc["meta"]; ok && m != nil {
			return nil, nil, &Error{Code: CodeInvalid, Message: "meta must be an object", Expression: "meta"}
		}
		meta = map[string]any{}
	}
	meta["versionId"] = strconv.FormatInt(vid, 10)
	meta["lastUpdated"] = FormatInstant(now)
	doc["meta"] = meta
	doc["resourceType"] = typ
	doc["id"] = id
	idx, err := s.reg.Extract(typ, doc)
	if err != nil {
		return nil, nil, err
	}
	if td, ok := s.reg.Type(typ); ok {
		// Secret and hidden fields are never searchable: their words would tell them.
		idx.Text = ExtractFullText(doc, append(append([]string(nil), td.Secret...), td.Hidden...))
	}
	content, err := marshal(doc)
	if err != nil {
		return nil, nil, Internal(err)
	}
	return &Resource{Type: typ, ID: id, VersionID: vid, LastUpdated: now, Content: content}, idx, nil
}

// now returns the clock at the precision that is stored and shown (milliseconds), so
// that Last-Modified, meta.lastUpdated and _lastUpdated searches agree.
func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// hashSecrets replaces each secret field present in doc with its bcrypt hash.
func (s *Service) hashSecrets(td *TypeDef, doc map[string]any) error {
	for _, f := range td.Secret {
		v, ok := doc[f]
		if !ok || v == nil {
			continue
		}
		str, ok := v.(string)
		if !ok || str == "" {
			return &Error{Code: CodeUnprocessable, Message: fmt.Sprintf("%s.%s must be a non-empty string", td.Name, f), Expression: f}
		}
		if len(str) > 72 {
			// bcrypt only reads 72 bytes; a longer secret would silently be truncated.
			return &Error{Code: CodeUnprocessable, Message: fmt.Sprintf("%s.%s must be at most 72 bytes", td.Name, f), Expression: f}
		}
		h, err := bcrypt.GenerateFromPassword([]byte(str), s.opts.BcryptCost)
		if err != nil {
			return Internal(err)
		}
		doc[f] = string(h)
	}
	return nil
}

// checkResourceType rejects a body whose resourceType differs from the URL's (conformance F2).
func checkResourceType(typ string, doc map[string]any) error {
	rt, ok := doc["resourceType"]
	if !ok || rt == nil {
		return nil
	}
	if rt != typ {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("resourceType %v does not match the URL type %s", rt, typ), Expression: "resourceType"}
	}
	return nil
}

// ETag is the entity tag of a resource version: W/"3" for version 3. It is weak
// because two renderings of one version (JSON, XML, YAML) are no byte-for-byte match.
func ETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ParseETag reads a version id from an ETag or If-Match value: W/"3", "3" or 3.
func ParseETag(tag string) (int64, error) {
	t := strings.TrimSpace(tag)
	t = strings.TrimPrefix(t, "W/")
	t = strings.Trim(t, `"`)
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 1 {
		return 0, Errorf(CodeInvalid, "malformed version tag %q: expected W/\"<version>\"", tag)
	}
	return v, nil
}

// FormatInstant formats t as a FHIR instant in UTC with millisecond precision.
func FormatInstant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// marshal encodes v as compact JSON without escaping <, > and & (FHIR narratives are
// XHTML; escaping them is valid but makes stored documents unreadable).
func marshal(v any) ([]byte, error) {
	if b, ok := encodeJSON(v); ok { // encode.go
		return b, nil
	}
	return marshalStd(v)
}

// FindByToken returns the live resource of typ whose token parameter param (internal
// ones included) has the value code, nil when there is none, and a CodeConflict error
// when several have it. The server finds a Session by its token's hash this way.
func (s *Service) FindByToken(ctx context.Context, typ, param, code string) (*Resource, error) {
	td, err := s.TypeDef(typ)
	if err != nil {
		return nil, err
	}
	p := td.InternalParam(param)
	if p == nil || (p.Type != TypeToken && p.Type != TypeURI) {
		return nil, Internal(fmt.Errorf("%s has no token parameter %s", typ, param))
	}
	q := &Query{Type: typ, Count: 2, Total: TotalNone, Clauses: []Clause{{
		Param: p, Values: []Value{{Raw: code, Code: code, MatchCode: true, Str: code}},
	}}}
	r, err := s.store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	switch len(r.Entries) {
	case 0:
		return nil, nil
	case 1:
		return r.Entries[0], nil
	}
	return nil, Errorf(CodeConflict, "more than one %s has this %s", typ, param)
}
