package resources

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Stable paging (conformance F10). A search whose matches take more than one page
// stores the ordered ids of its matches as they are at the first page, a result set,
// under an unguessable key that lives for ResultSetOptions.TTL. The paging links repeat
// the search's own parameters and add the key (_pageset) and the page (_page); a page
// request reads its ids from the set by position and the current version of each.
// Writes after the first page therefore neither repeat nor skip a match: a resource
// created since is not in the set, one updated since keeps its place (and shows its new
// content), one deleted since is left out of its page, and total stays the count of the
// first page. The links carry the search's parameters, not the key alone, so that the
// access policies, which decide each request from its URL, decide page 2 as they
// decided page 1; a page request whose parameters (or caller) differ from those the set
// was made by is refused. The first page costs what it did unless a second page
// exists: then one more statement lists the ids (it replaces the count) and one write
// stores them.

// ResultSetOptions bounds the stored result sets.
type ResultSetOptions struct {
	// TTL is how long a set is kept after the first page of its search (0:
	// DefaultResultSetTTL; negative: no sets, pages are offsets into the current
	// matches as before).
	TTL time.Duration
	// Max is the most ids a set holds (0: DefaultResultSetMax). Pages past it are
	// refused with a 400 that says to narrow the search; the last page within it says so
	// in an OperationOutcome entry.
	Max int
}

// Defaults and bounds of ResultSetOptions.
const (
	DefaultResultSetTTL = 10 * time.Minute
	DefaultResultSetMax = 10000
	// MaxResultSetMax bounds Max: a set is listed in one statement and stored in one
	// transaction.
	MaxResultSetMax = 100000
	// ResultSetChunk is how many ids one stored row of a set holds, at least the
	// largest page, so that a page reads at most two rows.
	ResultSetChunk = 1000
)

func (o ResultSetOptions) withDefaults() ResultSetOptions {
	if o.TTL == 0 {
		o.TTL = DefaultResultSetTTL
	}
	if o.Max <= 0 {
		o.Max = DefaultResultSetMax
	}
	o.Max = min(o.Max, MaxResultSetMax)
	return o
}

// ResultSet is a stored result set, or the part of one a page read.
type ResultSet struct {
	// Key names the set in the links (_pageset).
	Key string
	// Type is the searched type; empty for a system-level search, whose IDs are then
	// "Type/id" (its types are in the Fingerprint).
	Type string
	// Fingerprint identifies the search and its caller (see fingerprint).
	Fingerprint string
	// Total is the number of matches at the first page, Size the number of ids stored:
	// fewer than Total when the matches exceeded ResultSetOptions.Max.
	Total, Size int
	// Expires is when the set stops serving pages.
	Expires time.Time
	// IDs are the ids from position From on: all of them when saving, those of the
	// page asked for when loaded. A system-level set holds "Type/id" (see Type).
	From int
	IDs  []string
}

// Truncated reports whether the set holds fewer ids than the search had matches.
func (rs *ResultSet) Truncated() bool { return rs.Size < rs.Total }

// ResultSets is what a store needs for stable paging. Both SQL stores have it; a store
// without it pages by offset.
type ResultSets interface {
	// SearchIDs returns the ids of the first limit matches of q, in q's order; of a
	// system-level search (q.Type empty), as "Type/id".
	SearchIDs(ctx context.Context, q *Query, limit int) ([]string, error)
	// ReadLive returns the current versions of those of ids (resources of typ) that
	// exist and are not deleted, in any order.
	ReadLive(ctx context.Context, typ string, ids []string) ([]*Resource, error)
	// SaveResultSet stores rs (every id, From 0).
	SaveResultSet(ctx context.Context, rs *ResultSet) error
	// LoadResultSet returns the set called key with the ids at positions [from, to);
	// CodeNotFound when there is none (expired ones may still be returned).
	LoadResultSet(ctx context.Context, key string, from, to int) (*ResultSet, error)
	// PurgeResultSets removes the sets that expired before before, and says how many.
	PurgeResultSets(ctx context.Context, before time.Time) (int, error)
}

// SearchOptions says how SearchPages treats a request.
type SearchOptions struct {
	// Strict refuses parameters a lenient search would ignore (Prefer: handling).
	Strict bool
	// Caller names who searches (client and user): a result set serves its pages only
	// to the caller whose search made it.
	Caller string
}

// SearchPages is Search for the API: it pages through stored result sets (see above).
// The server's own searches use Search, which stores nothing.
func (s *Service) SearchPages(ctx context.Context, typ string, params url.Values, opts SearchOptions) (*SearchResult, *Query, error) {
	q, err := s.parseSearch(ctx, typ, params, opts.Strict)
	if err != nil {
		return nil, nil, err
	}
	return s.pages(ctx, q, opts)
}

// pages runs the page of q, a parsed and prepared search of one type or of several
// (a system-level one), through the stored result sets.
func (s *Service) pages(ctx context.Context, q *Query, opts SearchOptions) (*SearchResult, *Query, error) {
	var err error
	rs, stable := s.store.(ResultSets)
	stable = stable && s.opts.ResultSets.TTL > 0
	var res *SearchResult
	switch {
	case q.PageSet != "" && !stable:
		return nil, q, invalid(PageSetParam, "this server keeps no result sets: repeat the search without %s", PageSetParam)
	case q.PageSet != "":
		res, err = s.storedPage(ctx, rs, q, opts.Caller)
	case stable && q.Count > 0 && q.Offset == 0:
		res, err = s.firstPage(ctx, rs, q, opts.Caller)
	default:
		// A _page without a set (written by hand) is an offset into the current matches.
		res, err = s.run(ctx, q)
	}
	if err != nil {
		return nil, q, err
	}
	return res, q, nil
}

// firstPage runs the first page of a new search and, when there is a second page,
// stores the result set that the following pages read.
func (s *Service) firstPage(ctx context.Context, rs ResultSets, q *Query, caller string) (*SearchResult, error) {
	wantTotal := func(n int) int {
		if q.Total == TotalNone {
			return -1
		}
		return n
	}
	var res *SearchResult
	if !sortsByIndex(q.Sort) {
		// The page alone, uncounted: when it is full, the listing of the ids follows,
		// which counts them too. A page sorted by an index value is not run: it reads
		// the sort value of every match as the listing does, which gives the page too.
		pq := *q
		pq.Total = TotalNone
		var err error
		if res, err = s.run(ctx, &pq); err != nil {
			return nil, err
		}
		if len(res.Entries) < q.Count {
			res.Total = wantTotal(len(res.Entries))
			return res, nil
		}
	}
	// A set holds at least the page shown, or the listing could not tell a full page
	// from a second one.
	limit := max(s.opts.ResultSets.Max, q.Count)
	ids, err := rs.SearchIDs(ctx, q, limit+1)
	if err != nil {
		return nil, err
	}
	// A write between the two statements may have changed the first ids: the page
	// shown is then made of the set's, so that page 2 follows it exactly.
	first := ids[:min(q.Count, len(ids))]
	if res == nil || !sameIDs(res.Entries, first, q.Type == "") {
		res = &SearchResult{}
		if res.Entries, err = s.readInOrder(ctx, rs, q.Type, first); err != nil {
			return nil, err
		}
	}
	if len(ids) <= q.Count {
		res.Total = wantTotal(len(ids))
		return res, nil
	}
	set := &ResultSet{Type: q.Type, Fingerprint: fingerprint(q, caller),
		Total: len(ids), Size: min(len(ids), limit), Expires: s.now().Add(s.opts.ResultSets.TTL)}
	set.IDs = ids[:set.Size]
	if len(ids) > limit {
		// Past the bound the set cannot say how many matched: count them once.
		cq := *q
		cq.Count, cq.Total = 0, TotalAccurate
		cr, err := s.store.Search(ctx, &cq)
		if err != nil {
			return nil, err
		}
		set.Total = max(cr.Total, set.Size+1)
	}
	if set.Key, err = newResultSetKey(); err != nil {
		return nil, err
	}
	if err := rs.SaveResultSet(ctx, set); err != nil {
		return nil, err
	}
	set.IDs = first
	res.Set, res.Total = set, wantTotal(set.Total)
	return res, nil
}

// storedPage reads the page at q.Offset of the result set q.PageSet.
func (s *Service) storedPage(ctx context.Context, rs ResultSets, q *Query, caller string) (*SearchResult, error) {
	set, err := rs.LoadResultSet(ctx, q.PageSet, q.Offset, q.Offset+q.Count)
	if ErrorCode(err) == CodeNotFound || (err == nil && !s.now().Before(set.Expires)) {
		return nil, &Error{Code: CodeGone, Expression: PageSetParam, Message: fmt.Sprintf(
			"the result set %q of this page has expired or never existed (result sets are kept %s after a search's first page): repeat the search from its first page",
			q.PageSet, s.opts.ResultSets.TTL)}
	}
	if err != nil {
		return nil, err
	}
	if set.Type != q.Type || set.Fingerprint != fingerprint(q, caller) {
		return nil, invalid(PageSetParam, "this page request's parameters (or caller) differ from those of the search that made result set %q: follow the Bundle's links as given, or repeat the search", q.PageSet)
	}
	if q.Offset > 0 && q.Offset >= set.Size && set.Truncated() {
		return nil, invalid("_page", "only the first %d of the %d matches can be paged through: narrow the search (by _lastUpdated or another parameter) to see the others", set.Size, set.Total)
	}
	res := &SearchResult{Total: set.Total, Set: set}
	if q.Total == TotalNone {
		res.Total = -1
	}
	if len(set.IDs) > 0 {
		if res.Entries, err = s.readInOrder(ctx, rs, q.Type, set.IDs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// readInOrder returns the live current versions of ids, in the order of ids; those
// deleted or gone since are left out. Without typ (a system-level set) ids are
// "Type/id", read type by type.
func (s *Service) readInOrder(ctx context.Context, rs ResultSets, typ string, ids []string) ([]*Resource, error) {
	byType := map[string][]string{typ: ids}
	if typ == "" {
		byType = map[string][]string{}
		for _, key := range ids {
			t, id, _ := strings.Cut(key, "/")
			byType[t] = append(byType[t], id)
		}
	}
	byKey := make(map[string]*Resource, len(ids))
	for t, tids := range byType {
		found, err := rs.ReadLive(ctx, t, tids)
		if err != nil {
			return nil, err
		}
		for _, r := range found {
			byKey[setKey(r, typ == "")] = r
		}
	}
	out := make([]*Resource, 0, len(ids))
	for _, key := range ids {
		if r := byKey[key]; r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// setKey is how a result set names r: its id, or "Type/id" in a set of several types.
func setKey(r *Resource, typed bool) string {
	if typed {
		return r.Type + "/" + r.ID
	}
	return r.ID
}

// sortsByIndex reports whether a sort reads values of the index tables, as opposed to
// columns of the resource table (_id, _lastUpdated, the default order), which an index
// holds in order.
func sortsByIndex(keys []SortKey) bool {
	for _, k := range keys {
		if k.Param != nil && k.Param.Column == "" {
			return true
		}
	}
	return false
}

func sameIDs(rs []*Resource, ids []string, typed bool) bool {
	if len(rs) != len(ids) {
		return false
	}
	for i, r := range rs {
		if setKey(r, typed) != ids[i] {
			return false
		}
	}
	return true
}

// fingerprint identifies a search and its caller: the type (or the types a
// system-level search ran over, those its caller's policies allowed), the caller and
// the parameters as given but for the paging ones and the output format (_format and
// _pretty change how a page is written, not which).
func fingerprint(q *Query, caller string) string {
	v := make(url.Values, len(q.Original))
	for k, vs := range q.Original {
		if k != "_format" && k != "_pretty" {
			v[k] = vs
		}
	}
	scope := q.Type
	if scope == "" {
		scope = "*" + strings.Join(q.Types, ",")
	}
	h := sha256.Sum256([]byte(scope + "\x00" + caller + "\x00" + q.confineKey + "\x00" + v.Encode()))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// newResultSetKey returns a fresh key: 144 random bits, which nobody guesses.
func newResultSetKey() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", Internal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ResultSetsSetting is the environment variable (and, lower-cased without its prefix,
// the flag) that sets ResultSetOptions, in the form ParseResultSetOptions reads.
const ResultSetsSetting = "FHIRBOX_SEARCH_RESULT_SETS"

// ParseResultSetOptions reads "ttl=10m,max=10000" (keys left out keep their defaults),
// or "off": no stored result sets, pages are offsets into the current matches.
func ParseResultSetOptions(s string) (ResultSetOptions, error) {
	o := ResultSetOptions{}.withDefaults()
	if strings.TrimSpace(s) == "off" {
		o.TTL = -1
		return o, nil
	}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "ttl":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > 24*time.Hour {
				return o, fmt.Errorf("%s: ttl must be a duration from 1s to 24h, such as 10m, got %q", ResultSetsSetting, v)
			}
			o.TTL = d
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxResultSetMax {
				return o, fmt.Errorf("%s: max must be an integer from 1 to %d, got %q", ResultSetsSetting, MaxResultSetMax, v)
			}
			o.Max = n
		default:
			return o, fmt.Errorf("%s: unknown key %q (known: ttl, max; or the value off)", ResultSetsSetting, k)
		}
	}
	return o, nil
}

// String writes o in the form ParseResultSetOptions reads.
func (o ResultSetOptions) String() string {
	o = o.withDefaults()
	if o.TTL < 0 {
		return "off"
	}
	return "ttl=" + o.TTL.String() + ",max=" + strconv.Itoa(o.Max)
}
