package resources

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ConditionalDeleteSetting is the environment variable of ConditionalDeleteOptions.
const ConditionalDeleteSetting = "FHIRBOX_CONDITIONAL_DELETE"

// ConditionalDeleteOptions says what a conditional delete whose criteria match several
// resources does (conformance F31): refused with 412 (single, the default), or each
// match deleted (multiple), up to Max of them; past Max it is refused whole.
type ConditionalDeleteOptions struct {
	Multiple bool
	// Max is the most resources one conditional delete removes (multiple only; 0:
	// DefaultConditionalDeleteMax).
	Max int
}

// DefaultConditionalDeleteMax bounds a multiple conditional delete: each match is a
// write of its own, and one request should not be able to rewrite a whole table.
const DefaultConditionalDeleteMax = 100

// String is the setting's form: single, or multiple,max=N.
func (o ConditionalDeleteOptions) String() string {
	if !o.Multiple {
		return "single"
	}
	return "multiple,max=" + strconv.Itoa(o.max())
}

func (o ConditionalDeleteOptions) max() int {
	if o.Max <= 0 {
		return DefaultConditionalDeleteMax
	}
	return o.Max
}

// ParseConditionalDelete reads FHIRBOX_CONDITIONAL_DELETE: "single", "multiple" or
// "multiple,max=N".
func ParseConditionalDelete(s string) (ConditionalDeleteOptions, error) {
	mode, rest, _ := strings.Cut(strings.TrimSpace(s), ",")
	switch mode {
	case "single", "":
		if rest == "" {
			return ConditionalDeleteOptions{}, nil
		}
	case "multiple":
		o := ConditionalDeleteOptions{Multiple: true}
		if rest == "" {
			return o, nil
		}
		if v, ok := strings.CutPrefix(rest, "max="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 10000 {
				o.Max = n
				return o, nil
			}
		}
	}
	return ConditionalDeleteOptions{}, fmt.Errorf("%s %q must be single, multiple or multiple,max=N (N from 1 to 10000)", ConditionalDeleteSetting, s)
}

// ConditionalDeleteMode returns the server's conditional delete options.
func (s *Service) ConditionalDeleteMode() ConditionalDeleteOptions { return s.opts.ConditionalDelete }

// WriteCheck decides whether the caller may write typ/id, the resource a conditional
// write matched (id "" for one it is about to create): the server asks its access
// policies as for the equivalent request naming that resource.
type WriteCheck func(ctx context.Context, typ, id string) error

// resultParams are the search parameters that shape a result rather than select it:
// in the criteria of a conditional request they would be ignored, so they are refused.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_page": true, PageSetParam: true, "_include": true,
	"_revinclude": true, "_elements": true, "_summary": true, "_total": true,
	"_contained": true, "_containedType": true,
}

// matchCriteria runs criteria, the query of a conditional request (what names it in
// messages: "If-None-Exist", "the conditional update"…), as a strict search of typ and
// returns up to limit+1 matches, so the caller can tell "more than limit". Criteria
// must select: none at all, an unknown parameter or one that only shapes results is a
// CodeInvalid error, since a criterion ignored could make the write hit a resource it
// was not meant for.
func (s *Service) matchCriteria(ctx context.Context, typ string, criteria url.Values, what string, limit int) ([]*Resource, error) {
	for name := range criteria {
		if resultParams[name] {
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s: %s shapes search results and selects nothing; the criteria of %s are search parameters only", name, name, what), Expression: name}
		}
	}
	q, err := ParseSearch(s.reg, typ, criteria, ParseOptions{Limits: s.opts.Limits})
	if err != nil {
		return nil, err
	}
	if len(q.Ignored) > 0 {
		// Whatever Prefer: handling says: ignoring a criterion widens the match.
		reasons := make([]string, len(q.Ignored))
		for i, ig := range q.Ignored {
			reasons[i] = ig.Reason
		}
		return nil, invalid(q.Ignored[0].Param, "%s: %s cannot ignore a criterion, which would widen what it matches", strings.Join(reasons, "; "), what)
	}
	if len(q.Clauses) == 0 && q.List == nil {
		return nil, Errorf(CodeInvalid, "%s has no search criteria: it needs at least one search parameter of %s", what, typ)
	}
	if err := checkChains(ctx, q); err != nil {
		return nil, err
	}
	// A confined caller's criteria match what it reaches: a resource beyond it is not
	// theirs to update or delete, nor evidence against a conditional create.
	if err := s.confine(ctx, q); err != nil {
		return nil, err
	}
	q.Count, q.Offset, q.Total = limit+1, 0, TotalNone
	if q.List != nil {
		if err := s.resolveList(ctx, q); err != nil {
			return nil, err
		}
	}
	r, err := s.run(ctx, q)
	if err != nil {
		return nil, err
	}
	return r.Entries, nil
}

// criteriaValues parses a conditional request's query, _format and _pretty aside
// (they say how to answer, not what to match).
func criteriaValues(rawQuery string) (url.Values, error) {
	params, err := url.ParseQuery(strings.TrimPrefix(rawQuery, "?"))
	if err != nil {
		return nil, Errorf(CodeInvalid, "malformed query string: %v", err)
	}
	params.Del("_format")
	params.Del("_pretty")
	return params, nil
}

// ConditionalUpdate is PUT {type}?criteria (conformance F31): with no match doc is
// created, under the id it carries when it has one (a live resource there is a
// conflict) or a new one; with one match that resource is updated (a body id, if any,
// must be its id); with several, CodePreconditionFailed. check decides the resource
// written before anything is. created reports a creation.
func (s *Service) ConditionalUpdate(ctx context.Context, typ, rawQuery string, doc map[string]any, ifMatch string, check WriteCheck) (res *Resource, created bool, err error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, false, err
	}
	criteria, err := criteriaValues(rawQuery)
	if err != nil {
		return nil, false, err
	}
	if err := checkResourceType(typ, doc); err != nil {
		return nil, false, err
	}
	matches, err := s.matchCriteria(ctx, typ, criteria, "a conditional update", 1)
	if err != nil {
		return nil, false, err
	}
	bodyID, hasID := doc["id"]
	if bodyID == nil {
		hasID = false
	}
	switch len(matches) {
	case 0:
		id := ""
		if hasID {
			sid, ok := bodyID.(string)
			if !ok || !ValidID(sid) {
				return nil, false, &Error{Code: CodeInvalid, Message: fmt.Sprintf("invalid id %v: ids match [A-Za-z0-9-.]{1,64}", bodyID), Expression: "id"}
			}
			id = sid
		}
		if ifMatch != "" {
			return nil, false, Errorf(CodePreconditionFailed, "If-Match %s names a version, but the criteria match no %s", ifMatch, typ)
		}
		if err := check(ctx, typ, id); err != nil {
			return nil, false, err
		}
		return s.Create(ctx, typ, doc, CreateOptions{KeepID: hasID})
	case 1:
		m := matches[0]
		if hasID && bodyID != m.ID {
			return nil, false, &Error{Code: CodeInvalid, Message: fmt.Sprintf("the body's id %v is not the id of the %s the criteria match (%s)", describeValue(bodyID), typ, m.ID), Expression: "id"}
		}
		if err := check(ctx, typ, m.ID); err != nil {
			return nil, false, err
		}
		return s.Update(ctx, typ, m.ID, doc, ifMatch)
	}
	return nil, false, Errorf(CodePreconditionFailed, "the criteria of the conditional update match more than one %s: make them more selective", typ)
}

// ConditionalPatch is PATCH {type}?criteria: the one match is patched (Service.Patch);
// no match is CodeNotFound, several CodePreconditionFailed.
func (s *Service) ConditionalPatch(ctx context.Context, typ, rawQuery string, p *Patch, ifMatch string, check WriteCheck) (*Resource, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, err
	}
	criteria, err := criteriaValues(rawQuery)
	if err != nil {
		return nil, err
	}
	matches, err := s.matchCriteria(ctx, typ, criteria, "a conditional patch", 1)
	if err != nil {
		return nil, err
	}
	switch len(matches) {
	case 0:
		return nil, Errorf(CodeNotFound, "the criteria of the conditional patch match no %s", typ)
	case 1:
		if err := check(ctx, typ, matches[0].ID); err != nil {
			return nil, err
		}
		return s.Patch(ctx, typ, matches[0].ID, p, ifMatch)
	}
	return nil, Errorf(CodePreconditionFailed, "the criteria of the conditional patch match more than one %s: make them more selective", typ)
}

// ConditionalDelete is DELETE {type}?criteria: the resources deleted, none when
// nothing matched (deleting nothing is no error, as deleting what is gone is not).
// Several matches are CodePreconditionFailed unless the server allows multiple
// deletes; then each is checked before any is deleted, and more than the maximum is
// refused whole. Each deletion is a write of its own.
func (s *Service) ConditionalDelete(ctx context.Context, typ, rawQuery string, check WriteCheck) ([]*Resource, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, err
	}
	criteria, err := criteriaValues(rawQuery)
	if err != nil {
		return nil, err
	}
	opts := s.opts.ConditionalDelete
	limit := 1
	if opts.Multiple {
		limit = opts.max()
	}
	matches, err := s.matchCriteria(ctx, typ, criteria, "a conditional delete", limit)
	if err != nil {
		return nil, err
	}
	if len(matches) > limit {
		if !opts.Multiple {
			return nil, Errorf(CodePreconditionFailed, "the criteria of the conditional delete match more than one %s: make them more selective (this server deletes one at a time, %s=single)", typ, ConditionalDeleteSetting)
		}
		return nil, Errorf(CodePreconditionFailed, "the criteria of the conditional delete match more than %d %s resources, the most one request deletes (%s): make them more selective", limit, typ, ConditionalDeleteSetting)
	}
	for _, m := range matches {
		if err := check(ctx, typ, m.ID); err != nil {
			return nil, err
		}
	}
	var out []*Resource
	for _, m := range matches {
		res, err := s.Delete(ctx, typ, m.ID)
		if err != nil {
			return out, err
		}
		if res != nil {
			out = append(out, res)
		}
	}
	return out, nil
}
