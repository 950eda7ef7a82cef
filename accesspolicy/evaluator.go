package accesspolicy

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/fhirbox/fhirbox/resources"
)

// ResourceType is the type of the resources this package evaluates.
const ResourceType = "AccessPolicy"

// Store is what the Engine reads policies from: resources.Store has it.
type Store interface {
	Read(ctx context.Context, typ, id string) (*resources.Resource, error)
	Search(ctx context.Context, q *resources.Query) (*resources.SearchResult, error)
}

// Decision is the outcome of evaluating a request.
type Decision struct {
	// Allowed is true when a policy allowed the request.
	Allowed bool
	// Policy is the id of the policy that allowed it.
	Policy string
	// Trace lists every candidate policy and its result, when asked for.
	Trace []TraceEntry
	// Deferred is true when a candidate policy was left out because it may read the
	// request's pending part (Info.Pending): when nothing else allowed, decide again
	// with that part read.
	Deferred bool
	// Compartments confine an allowed request when only policies with a compartment
	// allowed it: it reaches what is in one of them. Empty when a policy without one
	// allowed (nothing confines it) or when nothing allowed.
	Compartments []Compartment
}

// TraceEntry is one candidate policy's evaluation, for debugging.
type TraceEntry struct {
	Policy string `json:"policy"`
	Engine string `json:"engine"`
	// Via says why the policy was a candidate: global, user, client or role:<name>.
	Via    string `json:"via"`
	Result bool   `json:"result"`
	// Why names the part that did not match.
	Why   string `json:"why,omitempty"`
	Error string `json:"error,omitempty"`
}

// Engine holds the compiled policies of a store in memory and decides requests with
// them; it never reads the database while deciding (sql policies aside). Invalidate
// keeps it current. It is safe for concurrent use.
type Engine struct {
	compiler *Compiler
	store    Store
	log      *slog.Logger

	// loadMu orders reloads, so that an invalidation arriving during a full reload is
	// applied after it and not overwritten by it.
	loadMu sync.Mutex
	set    atomic.Pointer[policySet]
}

// NewEngine returns an Engine over store, empty until Load. log receives policies that
// no longer compile (they are skipped: a broken policy allows nothing).
func NewEngine(c *Compiler, store Store, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{compiler: c, store: store, log: log}
	e.set.Store(newPolicySet(nil))
	return e
}

// Compiler returns the engine's compiler.
func (e *Engine) Compiler() *Compiler { return e.compiler }

// policySet is an immutable snapshot of the compiled policies, indexed by whom they
// apply to.
type policySet struct {
	byID     map[string]*Policy
	global   []*Policy
	byUser   map[string][]*Policy
	byClient map[string][]*Policy
	byRole   map[string][]*Policy
}

func newPolicySet(byID map[string]*Policy) *policySet {
	s := &policySet{byID: byID, byUser: map[string][]*Policy{}, byClient: map[string][]*Policy{}, byRole: map[string][]*Policy{}}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids) // a stable order makes traces and first-allow reproducible
	for _, id := range ids {
		p := byID[id]
		if p.Global() {
			s.global = append(s.global, p)
		}
		for _, l := range p.Links {
			if l.Type == "User" {
				s.byUser[l.ID] = appendOnce(s.byUser[l.ID], p)
			} else {
				s.byClient[l.ID] = appendOnce(s.byClient[l.ID], p)
			}
		}
		if p.RoleName != "" {
			s.byRole[p.RoleName] = appendOnce(s.byRole[p.RoleName], p)
		}
	}
	return s
}

func appendOnce(list []*Policy, p *Policy) []*Policy {
	if slices.Contains(list, p) {
		return list
	}
	return append(list, p)
}

// Len is the number of policies in force.
func (e *Engine) Len() int { return len(e.set.Load().byID) }

// Policy returns the compiled policy id, if it is in force.
func (e *Engine) Policy(id string) (*Policy, bool) {
	p, ok := e.set.Load().byID[id]
	return p, ok
}

// Load replaces the engine's policies with every AccessPolicy in the store.
func (e *Engine) Load(ctx context.Context) error {
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	byID := map[string]*Policy{}
	const page = 500
	for off := 0; ; off += page {
		res, err := e.store.Search(ctx, &resources.Query{Type: ResourceType, Count: page, Offset: off, Total: resources.TotalNone})
		if err != nil {
			return err
		}
		for _, r := range res.Entries {
			if p := e.compileStored(ctx, r); p != nil {
				byID[r.ID] = p
			}
		}
		if len(res.Entries) < page {
			break
		}
	}
	e.set.Store(newPolicySet(byID))
	return nil
}

// Invalidate applies a committed write: an AccessPolicy that changed is read and
// compiled again; a reset reloads everything.
func (e *Engine) Invalidate(ctx context.Context, ev resources.WriteEvent) error {
	if ev.Reset {
		return e.Load(ctx)
	}
	if ev.Type != ResourceType {
		return nil
	}
	e.loadMu.Lock()
	defer e.loadMu.Unlock()
	var p *Policy
	r, err := e.store.Read(ctx, ResourceType, ev.ID)
	switch {
	case resources.ErrorCode(err) == resources.CodeNotFound:
	case err != nil:
		return err
	case !r.Deleted:
		p = e.compileStored(ctx, r)
	}
	old := e.set.Load().byID
	byID := make(map[string]*Policy, len(old)+1)
	for id, q := range old {
		byID[id] = q
	}
	if p != nil {
		byID[ev.ID] = p
	} else {
		delete(byID, ev.ID)
	}
	e.set.Store(newPolicySet(byID))
	return nil
}

func (e *Engine) compileStored(ctx context.Context, r *resources.Resource) *Policy {
	doc, err := Decode(r.Content)
	if err == nil {
		var p *Policy
		if p, err = e.compiler.Compile(ctx, doc); err == nil {
			p.ID = r.ID
			return p
		}
	}
	e.log.WarnContext(ctx, "access policy skipped: it does not compile", "policy", r.ID, "err", err)
	return nil
}

// Decide evaluates the candidate policies of req: those linked to its Client and User,
// those of the User's roles, and the global ones. The first that allows wins; with
// trace, every candidate is evaluated and reported. A policy with a compartment allows
// only within it: the request is then allowed confined to the compartments of every
// such policy that matched, unless a policy without one allows it whole.
func (e *Engine) Decide(ctx context.Context, req *Request, trace bool) (d Decision) {
	s := e.set.Load()
	var seen []*Policy // a policy linked twice (user and client) is evaluated once
	confinedBy := ""   // the first policy that allowed within a compartment
	defer func() {
		if !d.Allowed && len(d.Compartments) > 0 {
			d.Allowed, d.Policy = true, confinedBy
		}
	}()
	try := func(list []*Policy, via string) bool {
		for _, p := range list {
			if slices.Contains(seen, p) {
				continue
			}
			seen = append(seen, p)
			if req.pending != "" && p.Reads(req.pending) {
				d.Deferred = true
				if trace {
					d.Trace = append(d.Trace, TraceEntry{Policy: p.ID, Engine: p.Engine, Via: via,
						Why: "not evaluated: it may read " + req.pending + ", which is read only when no other policy allows"})
				}
				continue
			}
			ok, why, err := p.rule.eval(ctx, req, trace)
			if err != nil && !errors.Is(err, context.Canceled) {
				e.log.WarnContext(ctx, "access policy failed to evaluate", "policy", p.ID, "err", errDetail(err))
			}
			if trace {
				te := TraceEntry{Policy: p.ID, Engine: p.Engine, Via: via, Result: ok && err == nil, Why: why}
				if err != nil {
					te.Error = err.Error()
				}
				d.Trace = append(d.Trace, te)
			}
			if ok && err == nil && p.compartment != nil && !d.Allowed {
				// A policy with a compartment allows only within it: another policy may
				// still allow the request whole.
				comps := p.compartment.resolve(req.Object())
				if trace && len(comps) == 0 {
					d.Trace[len(d.Trace)-1].Result = false
					d.Trace[len(d.Trace)-1].Why = "it matches, but its compartment " + p.compartment.String() + " names no resource for this request"
				}
				if len(comps) > 0 && confinedBy == "" {
					confinedBy = p.ID
				}
				d.Compartments = append(d.Compartments, comps...)
				continue
			}
			if ok && err == nil && !d.Allowed {
				d.Allowed, d.Policy = true, p.ID
				d.Compartments = nil
				if !trace {
					return true
				}
			}
		}
		return false
	}
	if id := req.ClientID(); id != "" && try(s.byClient[id], "client") {
		return d
	}
	if id := req.UserID(); id != "" && try(s.byUser[id], "user") {
		return d
	}
	for _, role := range req.Roles() {
		if try(s.byRole[role], "role:"+role) {
			return d
		}
	}
	try(s.global, "global")
	return d
}

// DecideOne evaluates p alone against req, as POST /auth/test-policy does. A failure
// to evaluate is logged in full and traced without the database's text.
func (e *Engine) DecideOne(ctx context.Context, p *Policy, req *Request) Decision {
	ok, why, err := p.rule.eval(ctx, req, true)
	te := TraceEntry{Policy: p.ID, Engine: p.Engine, Via: "test", Result: ok && err == nil, Why: why}
	if err != nil {
		te.Error = err.Error()
		if !errors.Is(err, context.Canceled) {
			e.log.WarnContext(ctx, "access policy under test failed to evaluate", "policy", p.ID, "err", errDetail(err))
		}
	}
	d := Decision{Allowed: te.Result, Trace: []TraceEntry{te}}
	if d.Allowed && p.compartment != nil {
		if d.Compartments = p.compartment.resolve(req.Object()); len(d.Compartments) == 0 {
			d.Allowed = false
			d.Trace[0].Result = false
			d.Trace[0].Why = "it matches, but its compartment " + p.compartment.String() + " names no resource for this request"
		}
	}
	if d.Allowed {
		d.Policy = p.ID
	}
	return d
}

// errDetail is err for the server log: an EvalError's full text, which traces never show.
func errDetail(err error) string {
	var ee *EvalError
	if errors.As(err, &ee) {
		return ee.Detail()
	}
	return err.Error()
}
