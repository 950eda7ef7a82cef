package resources

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
)

// ListFilter is a _list parameter: the id of a List, and, once Service.Search has read
// it, the resources its entries refer to. A search keeps only those.
type ListFilter struct {
	ID string
	// Items maps a type to the ids of that type the List refers to, for the searched
	// types only; empty: nothing matches.
	Items map[string][]string
}

// list parses a _list value: the id of a List resource. The functional lists of FHIR
// ($current-allergies, $current-problems…) are lists the server would compute; fhirbox
// has none, so they are refused rather than matched against nothing.
func (p *searchParser) list(raw string) error {
	if strings.HasPrefix(raw, "$") {
		return invalid("_list", "_list: the functional list %q is not supported; name a List by its id", raw)
	}
	if !ValidID(raw) {
		return invalid("_list", "_list: %q is not a List id ([A-Za-z0-9-.]{1,64})", raw)
	}
	if p.q.List != nil && p.q.List.ID != raw {
		return invalid("_list", "_list given twice (%s, %s); a search takes one list", p.q.List.ID, raw)
	}
	p.q.List = &ListFilter{ID: raw}
	p.q.Used.Set("_list", raw)
	return nil
}

// resolveList reads the List of q.List (conformance F19) and keeps in Items the references of its
// entries (entry.item) to the searched types. The List is read as the caller would read
// it: the ReadCheck of ctx, if any, decides List/{id} first, before the store is asked,
// so that a refusal says nothing of whether the List exists (its membership is what
// the search would tell). A List that does not exist, or was deleted, refers to
// nothing: the search matches nothing, as a filter on what is not there does (FHIR
// search never fails for want of matches).
func (s *Service) resolveList(ctx context.Context, q *Query) error {
	l := q.List
	l.Items = map[string][]string{}
	if check, _ := ctx.Value(readCheckKey{}).(ReadCheck); check != nil {
		if err := check(ctx, "List", l.ID); err != nil {
			return err
		}
	}
	res, err := s.store.Read(ctx, "List", l.ID)
	if ErrorCode(err) == CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if res.Deleted {
		return nil
	}
	// A List beyond the caller's confinement (another patient's) is refused as its read
	// would be: its membership is what the search would tell.
	if err := s.checkReach(ctx, "List", l.ID, nil, res.Content); err != nil {
		return err
	}
	var doc struct {
		Entry []struct {
			Item struct {
				Reference string `json:"reference"`
			} `json:"item"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(res.Content, &doc); err != nil {
		return Internal(err)
	}
	seen := map[string]bool{}
	for _, e := range doc.Entry {
		typ, id := splitReference(e.Item.Reference)
		if typ == "" {
			continue // contained (#x), urn:, or no reference
		}
		if q.Type != "" && typ != q.Type || q.Type == "" && len(q.Types) > 0 && !slices.Contains(q.Types, typ) {
			continue
		}
		if key := typ + "/" + id; !seen[key] {
			seen[key] = true
			l.Items[typ] = append(l.Items[typ], id)
		}
	}
	return nil
}

// readCheckKey carries the check of WithReadCheck.
type readCheckKey struct{}

// ReadCheck decides whether the caller may read typ/id; a non-nil error (e.g. a
// CodeForbidden *Error) refuses the request that would read it.
type ReadCheck func(ctx context.Context, typ, id string) error

// WithReadCheck returns ctx carrying check, which the searches of the Service (and the
// conditional operations, which search) apply to the List a _list names before reading
// it: the matches of Patient?_list=x tell what List/x holds, so whoever may not read
// List/x must not learn it that way.
func WithReadCheck(ctx context.Context, check ReadCheck) context.Context {
	return context.WithValue(ctx, readCheckKey{}, check)
}
