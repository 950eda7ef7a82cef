package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/pkg/format"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/resources"
)

// handleBundle answers POST [base] with a batch or transaction Bundle
// (conformance F40): a batch-response or transaction-response Bundle with one entry per entry sent,
// in the same order. The authorize middleware has let the POST to the base through
// (decided without its body); each entry is then decided as its own request would be.
func (s *Server) handleBundle(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	doc, err := s.readBody(c)
	if err != nil {
		return err
	}
	b, err := resources.ParseBundle(doc, s.base(c), s.cfg.BundleMaxEntries)
	if err != nil {
		return err
	}
	r := &bundleRun{s: s, c: c, b: b, prefer: preferReturn(c.Request()), prefix: "",
		caller: auth.FromContext(c.Request().Context()), fhirBase: isFHIRBase(c)}
	if r.fhirBase {
		r.prefix = "/fhir"
	}
	var out []fhir.BundleEntry
	typ := "batch-response"
	if b.Type == resources.BundleTransaction {
		typ = "transaction-response"
		out, err = r.transaction()
	} else {
		out = r.batch()
	}
	if err != nil {
		return err
	}
	return s.writeValue(c, http.StatusOK, f, &fhir.Bundle{ResourceType: "Bundle", Type: typ,
		Meta: &fhir.Meta{LastUpdated: resources.FormatInstant(time.Now())}, Entry: out})
}

// bundleRun is the processing of one batch or transaction.
type bundleRun struct {
	s        *Server
	c        echo.Context
	b        *resources.Bundle
	caller   *auth.Identity
	fhirBase bool
	prefix   string // the base's path: "" or "/fhir"
	prefer   string // Prefer: return=, applied to every entry
	// ids maps the fullUrls of a transaction's creates and updates to the references
	// that replace them (Type/id); creates holds the id each create is made under, or
	// the resource its ifNoneExist found.
	ids     map[string]string
	creates map[int]plannedCreate
	// conditional caches the conditional references resolved so far.
	conditional map[string]string
}

// plannedCreate is what a transaction's create will do: create under id, or answer
// with found (ifNoneExist matched).
type plannedCreate struct {
	id    string
	found *resources.Resource
}

// transaction runs every entry in one database transaction (conformance F41), in the
// order of the spec (conformance F42), with urn:uuid and urn:oid fullUrls and
// conditional references resolved first (conformance F43). The first entry that fails
// fails the whole: its error, naming it, is the answer, and nothing is stored.
func (r *bundleRun) transaction() ([]fhir.BundleEntry, error) {
	ctx := r.c.Request().Context()
	// Every entry is decided before the database is touched, on its body as sent; the
	// writes are decided once more on their bodies as written, references resolved.
	for _, e := range r.b.Entries {
		if err := r.authorize(ctx, e); err != nil {
			return nil, entryFailure(e, err)
		}
	}
	out := make([]fhir.BundleEntry, len(r.b.Entries))
	err := r.s.svc.Transaction(ctx, func(ctx context.Context) error {
		if err := r.plan(ctx); err != nil {
			return err
		}
		for _, i := range r.b.ProcessingOrder() {
			e := r.b.Entries[i]
			if e.Resource != nil {
				if err := r.authorize(ctx, e); err != nil {
					return entryFailure(e, err)
				}
			}
			res, err := r.run(ctx, e)
			if err != nil {
				return entryFailure(e, err)
			}
			out[i] = res
		}
		return nil
	})
	return out, err
}

// batch runs each entry on its own, in the Bundle's order (conformance F45): an entry
// that fails or is refused is answered with its status and an OperationOutcome, and
// the others go on.
func (r *bundleRun) batch() []fhir.BundleEntry {
	ctx := r.c.Request().Context()
	out := make([]fhir.BundleEntry, len(r.b.Entries))
	for i, e := range r.b.Entries {
		res, err := r.batchEntry(ctx, e)
		if err != nil {
			res = r.failed(ctx, err)
		}
		out[i] = res
	}
	return out
}

// batchEntry runs one entry of a batch: its conditional references resolved (a
// placeholder is an error: nothing else in a batch can stand for it), decided, run.
func (r *bundleRun) batchEntry(ctx context.Context, e *resources.BundleEntry) (fhir.BundleEntry, error) {
	if e.Resource != nil {
		err := resources.RewriteReferences(e.Resource, func(path, ref string) (string, error) {
			if resources.IsPlaceholder(ref) {
				return "", &resources.Error{Code: resources.CodeInvalid, Expression: "Bundle.entry[" + fmt.Sprint(e.Index) + "].resource." + path,
					Message: fmt.Sprintf("%s refers to %s: the entries of a batch are independent and may not refer to each other; send a transaction", path, ref)}
			}
			return r.resolveConditional(ctx, e, path, ref)
		})
		if err != nil {
			return fhir.BundleEntry{}, err
		}
	}
	if err := r.authorize(ctx, e); err != nil {
		return fhir.BundleEntry{}, err
	}
	return r.run(ctx, e)
}

// plan assigns the ids of a transaction's creates (running their ifNoneExist
// searches), checks that no two entries write one resource, and rewrites the
// references of every entry's resource: fullUrls of the Bundle's entries to the ids
// assigned, conditional references to the one resource they match (conformance F43).
func (r *bundleRun) plan(ctx context.Context) error {
	r.ids, r.creates = map[string]string{}, map[int]plannedCreate{}
	written := map[string]*resources.BundleEntry{}
	for _, e := range r.b.Entries {
		var key string
		switch e.Interaction {
		case resources.InteractionCreate:
			pc := plannedCreate{}
			if e.IfNoneExist != "" {
				found, err := r.s.svc.ConditionalMatch(r.entryContext(ctx, e), e.Type, e.IfNoneExist)
				if err != nil {
					return entryFailure(e, err)
				}
				pc.found = found
			}
			switch {
			case pc.found != nil:
				pc.id = pc.found.ID
			case !r.fhirBase && validBodyID(e.Resource):
				// fhirbox's own base keeps the id sent, as a single create there does.
				pc.id = e.Resource["id"].(string)
				key = e.Type + "/" + pc.id
			default:
				pc.id = r.s.svc.NewResourceID()
			}
			r.creates[e.Index] = pc
			if e.FullURL != "" {
				r.ids[e.FullURL] = e.Type + "/" + pc.id
			}
		case resources.InteractionConditionalUpdate:
			// Matched now, in the transaction, so that references to the entry's fullUrl
			// can be rewritten to the resource it updates or creates.
			found, err := r.s.svc.ConditionalMatch(r.entryContext(ctx, e), e.Type, e.Query)
			if err != nil {
				return entryFailure(e, err)
			}
			pc := plannedCreate{found: found}
			if found != nil {
				pc.id = found.ID
			} else {
				pc.id = r.s.svc.NewResourceID()
			}
			key = e.Type + "/" + pc.id
			r.creates[e.Index] = pc
			if e.FullURL != "" {
				r.ids[e.FullURL] = key
			}
		case resources.InteractionUpdate, resources.InteractionDelete, resources.InteractionPatch:
			if e.ID == "" {
				break // a conditional patch: its criteria are matched when it runs
			}
			key = e.Type + "/" + e.ID
			if e.FullURL != "" && e.Interaction == resources.InteractionUpdate && resources.IsPlaceholder(e.FullURL) {
				r.ids[e.FullURL] = key
			}
		}
		if key != "" {
			if other, dup := written[key]; dup {
				return entryFailure(e, resources.Errorf(resources.CodeInvalid, "%s is also written by entry %d: a transaction writes each resource once", key, other.Index))
			}
			written[key] = e
		}
	}
	for _, e := range r.b.Entries {
		if e.Resource == nil {
			continue
		}
		err := resources.RewriteReferences(e.Resource, func(path, ref string) (string, error) {
			if to, ok := r.ids[ref]; ok {
				return to, nil
			}
			if resources.IsPlaceholder(ref) {
				return "", &resources.Error{Code: resources.CodeInvalid, Expression: "resource." + path,
					Message: fmt.Sprintf("%s refers to %s, which is the fullUrl of no entry of the Bundle", path, ref)}
			}
			return r.resolveConditional(ctx, e, path, ref)
		})
		if err != nil {
			return entryFailure(e, err)
		}
	}
	return nil
}

// validBodyID reports whether doc has an id a create at / keeps.
func validBodyID(doc map[string]any) bool {
	id, ok := doc["id"].(string)
	return ok && resources.ValidID(id)
}

// resolveConditional returns what ref stands for: the Type/id of the one resource a
// conditional reference (Type?criteria) matches, decided by the policies as the search
// GET [base]/Type?criteria would be; any other reference unchanged.
func (r *bundleRun) resolveConditional(ctx context.Context, e *resources.BundleEntry, path, ref string) (string, error) {
	typ, query, ok := resources.ConditionalReference(ref)
	if !ok {
		return ref, nil
	}
	if to, ok := r.conditional[ref]; ok {
		return to, nil
	}
	if r.fhirBase && r.s.svc.Registry().Own(typ) {
		return "", resources.Errorf(resources.CodeNotFound, "%s: %s is fhirbox's own type, not served under /fhir", path, typ)
	}
	probe := equivalent(r.s.requestInfo(r.c, r.caller), http.MethodGet, r.prefix+"/"+typ, query, nil, typ, "", nil)
	if err := r.decide(ctx, probe, fmt.Sprintf("search GET %s?%s (the conditional reference at %s)", probe.Path, query, path)); err != nil {
		return "", err
	}
	found, err := r.s.svc.ConditionalMatch(resources.WithChainCheck(ctx, r.s.chainCheck(probe)), typ, query)
	switch {
	case resources.ErrorCode(err) == resources.CodePreconditionFailed:
		return "", resources.Errorf(resources.CodePreconditionFailed, "the conditional reference %s at %s matches more than one %s", ref, path, typ)
	case err != nil:
		return "", &resources.Error{Code: resources.ErrorCode(err), Message: fmt.Sprintf("the conditional reference %s at %s: %s", ref, path, resources.ErrorMessage(err)), Err: err}
	case found == nil:
		return "", resources.Errorf(resources.CodePreconditionFailed, "the conditional reference %s at %s matches no %s", ref, path, typ)
	}
	to := typ + "/" + found.ID
	if r.conditional == nil {
		r.conditional = map[string]string{}
	}
	r.conditional[ref] = to
	return to, nil
}

// info is what the policies see of the single request entry e stands for: its method
// (HEAD as GET), path under the Bundle's base, query, route, body, and the Bundle's
// headers with the entry's conditional ones in place of theirs.
func (r *bundleRun) info(e *resources.BundleEntry) *accesspolicy.Info {
	base := r.s.requestInfo(r.c, r.caller)
	method := e.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	h := base.Header.Clone()
	for name, v := range map[string]string{"If-Match": e.IfMatch, "If-None-Match": e.IfNoneMatch,
		"If-None-Exist": e.IfNoneExist, "If-Modified-Since": e.IfModifiedSince} {
		h.Del(name)
		if v != "" {
			h.Set(name, v)
		}
	}
	base.Header = h
	return equivalent(base, method, r.prefix+"/"+e.Path(), e.Query, nil, e.Type, e.ID, e.Resource)
}

// authorize decides entry e as its single request would be (conformance F44).
func (r *bundleRun) authorize(ctx context.Context, e *resources.BundleEntry) error {
	info := r.info(e)
	what := info.Method + " " + info.Path
	if info.RawQuery != "" {
		what += "?" + info.RawQuery
	}
	return r.decide(ctx, info, what)
}

// decide is the policies' decision on info: nil when allowed, else what the single
// request would get (401 for an anonymous caller, 403 otherwise).
func (r *bundleRun) decide(ctx context.Context, info *accesspolicy.Info, what string) error {
	if r.s.policies.Decide(ctx, info.Build(), false).Allowed {
		return r.s.scopeRefusal(info)
	}
	if r.caller.Anonymous() {
		return resources.Errorf(codeUnauthorized, "authentication required: no access policy allows anonymous %s", what)
	}
	return resources.Errorf(codeForbidden, "no access policy allows %s to %s", r.caller.String(), what)
}

// entryContext is ctx for entry e's searches: their chains and _has are decided as
// those of the entry's own request.
func (r *bundleRun) entryContext(ctx context.Context, e *resources.BundleEntry) context.Context {
	info := r.info(e)
	// What the entry's own decision confines it to, as its single request would be.
	if _, conf := r.s.decideProbe(ctx, info); conf != nil {
		ctx = resources.WithConfinement(ctx, conf)
	}
	return resources.WithChainCheck(ctx, r.s.chainCheck(info))
}

// entryFailure names entry e in err: the failure of a transaction is the failure of
// one of its entries. Internal errors stay as they are (logged, never shown).
func entryFailure(e *resources.BundleEntry, err error) error {
	code := resources.ErrorCode(err)
	if code == resources.CodeInternal || code == "" {
		return err
	}
	if strings.HasPrefix(resources.ErrorMessage(err), "entry ") {
		return err // named already (ParseBundle, plan)
	}
	var re *resources.Error
	if x, ok := err.(*resources.Error); ok {
		re = x
	}
	out := &resources.Error{Code: code, Message: e.Label() + ": " + resources.ErrorMessage(err), Expression: entryExpression(e, ""), Err: err}
	if re != nil {
		out.Expression = entryExpression(e, re.Expression)
		// A resource that failed validation keeps its issues, one each, located in the
		// entry (Bundle.entry[2].resource.gender rather than Patient.gender).
		for _, is := range re.Issues {
			is.Expression = entryExpression(e, is.Expression)
			is.Diagnostics = e.Label() + ": " + is.Diagnostics
			out.Issues = append(out.Issues, is)
		}
	}
	return out
}

// entryExpression locates expr, an expression within entry e (relative to the entry, to
// its resource — "Patient.gender" — or already absolute), in the Bundle.
func entryExpression(e *resources.BundleEntry, expr string) string {
	at := fmt.Sprintf("Bundle.entry[%d]", e.Index)
	switch {
	case expr == "":
		return at
	case strings.HasPrefix(expr, at+"."):
		return expr
	case e.Resource != nil && (expr == e.Type || strings.HasPrefix(expr, e.Type+".")):
		return at + ".resource" + strings.TrimPrefix(expr, e.Type)
	}
	return at + "." + expr
}

// failed is the response entry of a batch entry that failed with err.
func (r *bundleRun) failed(ctx context.Context, err error) fhir.BundleEntry {
	re := toError(err)
	status := statusOf(re.Code)
	msg := re.Message
	if status >= 500 && re.Code != resources.CodeUnavailable && re.Code != resources.CodeTimeout {
		rid := observe.RequestIDFrom(ctx)
		r.s.log.ErrorContext(ctx, "internal error in a batch entry", "request_id", rid, "err", err)
		msg = "internal server error; the request id is " + rid
	}
	var expr []string
	if re.Expression != "" {
		expr = []string{re.Expression}
	}
	return fhir.BundleEntry{Response: &fhir.EntryResponse{Status: statusLine(status),
		Outcome: fhir.NewOutcome("error", outcomes[re.Code].issue, msg, expr...)}}
}

// statusLine is a response.status: the code and its reason phrase.
func statusLine(code int) string { return fmt.Sprintf("%d %s", code, http.StatusText(code)) }

// run performs entry e as its single request would be performed, and answers it.
func (r *bundleRun) run(ctx context.Context, e *resources.BundleEntry) (fhir.BundleEntry, error) {
	svc := r.s.svc
	if r.fhirBase && svc.Registry().Own(e.Type) {
		return fhir.BundleEntry{}, resources.Errorf(resources.CodeNotFound, "%s is fhirbox's own type, not a FHIR resource: it is served at /%s, not under /fhir", e.Type, e.Type)
	}
	ctx = r.entryContext(ctx, e)
	params, _ := url.ParseQuery(e.Query) // checked by ParseBundle
	switch e.Interaction {
	case resources.InteractionRead:
		res, err := svc.Read(ctx, e.Type, e.ID)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if entryNotModified(e, res) {
			return fhir.BundleEntry{Response: versionResponse(http.StatusNotModified, res)}, nil
		}
		return r.resourceEntry(e, http.StatusOK, res)
	case resources.InteractionVRead:
		res, err := svc.VRead(ctx, e.Type, e.ID, e.VersionID)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		return r.resourceEntry(e, http.StatusOK, res)
	case resources.InteractionSearch:
		res, q, err := svc.Search(ctx, e.Type, params, r.s.strictHandling(r.c.Request()))
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if err := svc.Include(ctx, q, res, r.s.readCheck(r.c)); err != nil {
			return fhir.BundleEntry{}, err
		}
		b, err := r.s.searchBundle(r.c, q, res)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		return r.bundleEntry(e, b)
	case resources.InteractionHistoryInstance, resources.InteractionHistoryType:
		res, q, err := svc.History(ctx, e.Type, e.ID, params, r.s.strictHandling(r.c.Request()))
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		b, err := r.s.historyBundle(r.c, q, res, params)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		return r.bundleEntry(e, b)
	case resources.InteractionCreate:
		pc, planned := r.creates[e.Index]
		if planned && pc.found != nil {
			return r.written(e, http.StatusOK, pc.found, false)
		}
		opt := resources.CreateOptions{KeepID: !r.fhirBase, IfNoneExist: e.IfNoneExist}
		if planned {
			// The ifNoneExist search ran when the ids were planned, in this transaction.
			opt.IfNoneExist = ""
			if !opt.KeepID || !validBodyID(e.Resource) {
				opt.ID = pc.id
			}
		}
		res, created, err := svc.Create(ctx, e.Type, e.Resource, opt)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if !created {
			return r.written(e, http.StatusOK, res, false)
		}
		return r.written(e, http.StatusCreated, res, true)
	case resources.InteractionUpdate:
		res, created, err := svc.Update(ctx, e.Type, e.ID, e.Resource, e.IfMatch)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if created {
			return r.written(e, http.StatusCreated, res, true)
		}
		return r.written(e, http.StatusOK, res, true)
	case resources.InteractionDelete:
		res, err := svc.Delete(ctx, e.Type, e.ID)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if res == nil {
			// Already deleted or never there: harmless, as a single delete (conformance F7).
			return fhir.BundleEntry{Response: &fhir.EntryResponse{Status: statusLine(http.StatusNoContent)}}, nil
		}
		return fhir.BundleEntry{Response: versionResponse(http.StatusOK, res)}, nil
	case resources.InteractionPatch:
		p, err := entryPatch(e)
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		var res *resources.Resource
		if e.ID != "" {
			res, err = svc.Patch(ctx, e.Type, e.ID, p, e.IfMatch)
		} else {
			res, err = svc.ConditionalPatch(ctx, e.Type, e.Query, p, e.IfMatch, r.writeCheck(e, http.MethodPatch, nil))
		}
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		return r.written(e, http.StatusOK, res, false)
	case resources.InteractionConditionalUpdate:
		var (
			res     *resources.Resource
			created bool
			err     error
		)
		if pc, planned := r.creates[e.Index]; planned {
			// Matched when the transaction was planned (conformance F31, F43).
			if err := r.writeCheck(e, http.MethodPut, e.Resource)(ctx, e.Type, idOf(pc.found)); err != nil {
				return fhir.BundleEntry{}, err
			}
			if pc.found != nil {
				res, created, err = svc.Update(ctx, e.Type, pc.id, e.Resource, e.IfMatch)
			} else {
				res, created, err = svc.Create(ctx, e.Type, e.Resource, resources.CreateOptions{ID: pc.id})
			}
		} else {
			res, created, err = svc.ConditionalUpdate(ctx, e.Type, e.Query, e.Resource, e.IfMatch, r.writeCheck(e, http.MethodPut, e.Resource))
		}
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if created {
			return r.written(e, http.StatusCreated, res, true)
		}
		return r.written(e, http.StatusOK, res, true)
	case resources.InteractionConditionalDelete:
		deleted, err := svc.ConditionalDelete(ctx, e.Type, e.Query, r.writeCheck(e, http.MethodDelete, nil))
		if err != nil {
			return fhir.BundleEntry{}, err
		}
		if len(deleted) == 0 {
			return fhir.BundleEntry{Response: &fhir.EntryResponse{Status: statusLine(http.StatusNoContent)}}, nil
		}
		names := make([]string, len(deleted))
		for i, d := range deleted {
			names[i] = d.Type + "/" + d.ID
		}
		out := fhir.BundleEntry{Response: &fhir.EntryResponse{Status: statusLine(http.StatusOK)}}
		if len(deleted) == 1 {
			out.Response = versionResponse(http.StatusOK, deleted[0])
		}
		out.Response.Outcome = fhir.NewOutcome("information", "informational", "deleted "+strings.Join(names, ", "))
		return out, nil
	}
	return fhir.BundleEntry{}, resources.Errorf(resources.CodeInvalid, "%s %s is not supported in a Bundle", e.Method, e.URL)
}

// entryNotModified reports whether a read entry's ifNoneMatch or ifModifiedSince says
// the caller has res already (conformance F3): as for a conditional read's headers, but
// ifModifiedSince is a FHIR instant (Bundle.entry.request.ifModifiedSince), or an
// HTTP-date as a header would carry it.
func entryNotModified(e *resources.BundleEntry, res *resources.Resource) bool {
	return unchanged(res, e.IfNoneMatch, e.IfModifiedSince, func(v string) (time.Time, error) {
		if t, err := http.ParseTime(v); err == nil {
			return t, nil
		}
		return time.Parse(time.RFC3339, v)
	})
}

// versionResponse is a response with res's version: etag and lastModified.
func versionResponse(status int, res *resources.Resource) *fhir.EntryResponse {
	return &fhir.EntryResponse{Status: statusLine(status), Etag: resources.ETag(res.VersionID),
		LastModified: resources.FormatInstant(res.LastUpdated)}
}

// fullURL is the absolute URL of res at the Bundle's base.
func (r *bundleRun) fullURL(res *resources.Resource) string {
	return r.s.base(r.c) + "/" + res.Type + "/" + res.ID
}

// resourceEntry answers a read with the resource (none for HEAD).
func (r *bundleRun) resourceEntry(e *resources.BundleEntry, status int, res *resources.Resource) (fhir.BundleEntry, error) {
	out := fhir.BundleEntry{FullURL: r.fullURL(res), Response: versionResponse(status, res)}
	if e.Method == http.MethodHead {
		return out, nil
	}
	return r.withResource(out, res)
}

// withResource is out with res as the caller may see it (resources.Service.Public).
func (r *bundleRun) withResource(out fhir.BundleEntry, res *resources.Resource) (fhir.BundleEntry, error) {
	body, err := r.s.svc.Public(res, resources.View{})
	if err != nil {
		return out, err
	}
	out.Resource = body
	return out, nil
}

// bundleEntry answers a search or history with its Bundle (none for HEAD).
func (r *bundleRun) bundleEntry(e *resources.BundleEntry, b *fhir.Bundle) (fhir.BundleEntry, error) {
	out := fhir.BundleEntry{Response: &fhir.EntryResponse{Status: statusLine(http.StatusOK)}}
	if e.Method == http.MethodHead {
		return out, nil
	}
	body, err := jsonOf(b)
	if err != nil {
		return out, err
	}
	out.Resource = body
	return out, nil
}

// written answers a create or update as Prefer: return= asks (conformance F1): the
// resource (the default), nothing, or an OperationOutcome; location when the single
// request would send a Location header.
func (r *bundleRun) written(e *resources.BundleEntry, status int, res *resources.Resource, location bool) (fhir.BundleEntry, error) {
	out := fhir.BundleEntry{FullURL: r.fullURL(res), Response: versionResponse(status, res)}
	if location {
		out.Response.Location = r.s.versionURL(r.c, res)
	}
	switch r.prefer {
	case "minimal":
		return out, nil
	case "OperationOutcome":
		verb := "updated"
		switch {
		case status == http.StatusCreated:
			verb = "created"
		case !location:
			verb = "found (ifNoneExist)"
		}
		out.Response.Outcome = writtenOutcome(verb, res)
		return out, nil
	}
	return r.withResource(out, res)
}

// jsonOf is v as JSON, for a Bundle inside a Bundle.
func jsonOf(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, resources.Internal(err)
	}
	return b, nil
}

// idOf is res's id, "" for none.
func idOf(res *resources.Resource) string {
	if res == nil {
		return ""
	}
	return res.ID
}

// writeCheck is the check a conditional entry runs on the resource its criteria
// matched (conformance F31): the caller must be allowed the same write naming that
// resource — method on [base]/{type}/{id}, or POST [base]/{type} for a conditional
// update that creates — as for the single request (Server.writeCheck).
func (r *bundleRun) writeCheck(e *resources.BundleEntry, method string, body map[string]any) resources.WriteCheck {
	return func(ctx context.Context, typ, id string) error {
		m, path := method, r.prefix+"/"+typ
		if id != "" {
			path += "/" + id
		} else if method == http.MethodPut {
			m = http.MethodPost
		}
		info := equivalent(r.info(e), m, path, "", url.Values{}, typ, id, body)
		if err := r.decide(ctx, info, m+" "+path+", which the criteria of "+e.Label()+" reach,"); err != nil {
			return err
		}
		if _, conf := r.s.decideProbe(ctx, info); !r.s.reachedUnder(ctx, conf, typ, id) {
			return resources.Errorf(codeForbidden, "%s/%s, which the criteria of %s reach, is beyond %s", typ, id, e.Label(), conf.Describe(typ))
		}
		return nil
	}
}

// entryPatch reads the patch of a PATCH entry: as FHIR R4 puts it in a Bundle
// (http.html#transaction), a Parameters resource is a FHIRPath Patch, and a Binary whose
// contentType is application/json-patch+json (or merge-patch+json) carries a JSON Patch
// (or a merge patch) in its base64 data.
func entryPatch(e *resources.BundleEntry) (*resources.Patch, error) {
	switch e.Resource["resourceType"] {
	case "Parameters":
		return resources.ParsePatch(resources.FHIRPathPatch, e.Resource)
	case "Binary":
		kind := map[string]resources.PatchKind{"application/json-patch+json": resources.JSONPatch,
			"application/merge-patch+json": resources.MergePatch}
		ct, _ := e.Resource["contentType"].(string)
		k, ok := kind[strings.TrimSpace(strings.Split(ct, ";")[0])]
		if !ok {
			return nil, &resources.Error{Code: resources.CodeInvalid, Expression: "resource.contentType",
				Message: fmt.Sprintf("a Binary patch must have contentType application/json-patch+json or application/merge-patch+json, not %q", ct)}
		}
		data, _ := e.Resource["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || data == "" {
			return nil, &resources.Error{Code: resources.CodeInvalid, Expression: "resource.data", Message: "a Binary patch carries the patch in data, base64-encoded"}
		}
		v, err := format.DecodeJSONValue(raw)
		if err != nil {
			return nil, &resources.Error{Code: resources.CodeInvalid, Expression: "resource.data", Message: "the patch in data: " + err.Error()}
		}
		return resources.ParsePatch(k, v)
	case nil:
		return nil, &resources.Error{Code: resources.CodeInvalid, Expression: "resource",
			Message: "PATCH needs a resource: a Parameters (FHIRPath Patch) or a Binary holding a JSON Patch"}
	}
	return nil, &resources.Error{Code: resources.CodeInvalid, Expression: "resource.resourceType",
		Message: fmt.Sprintf("a PATCH entry's resource is a Parameters (FHIRPath Patch) or a Binary (JSON Patch), not %v", e.Resource["resourceType"])}
}
