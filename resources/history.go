package resources

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources/fhirdate"
)

// The history interaction at its three levels (FHIR R4 http.html#history):
// conformance F8, H1, H2, H3 and H4. The versions of one resource, of one type, or of
// every type the caller may see, newest first, filtered by _since and _at and paged by
// _count, by the cursor of the next links (HistoryCursorParam) or by _page.

// HistoryCursorParam names the cursor a history's next link carries: the last version of
// the page before, so that the next page starts after it whatever was written since.
const HistoryCursorParam = "_cursor"

// historyParams are the parameters a history applies; _format and _pretty, which every
// interaction takes, are the server's.
var historyParams = []string{"_count", "_since", "_at", "_page", HistoryCursorParam, "_format", "_pretty"}

// historyUnsupported are parameters FHIR R4 defines for the history interaction (or for
// every interaction) that fhirbox does not apply to one: reported as not supported
// rather than as unknown.
var historyUnsupported = []string{"_list", "_summary", "_elements"}

// History lists versions of one resource (id not empty) or of a type, newest first (see
// ParseHistory for the parameters). The history of a resource that never existed is a 404.
func (s *Service) History(ctx context.Context, typ, id string, params url.Values, strict bool) (*HistoryResult, HistoryQuery, error) {
	if _, err := s.TypeDef(typ); err != nil {
		return nil, HistoryQuery{}, err
	}
	if id != "" && !ValidID(id) {
		return nil, HistoryQuery{}, Errorf(CodeInvalid, "invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	q, err := s.ParseHistory(params, strict)
	if err != nil {
		return nil, q, err
	}
	q.Type, q.ID = typ, id
	if id != "" {
		cur, err := s.store.Read(ctx, typ, id)
		if err != nil {
			return nil, q, err
		}
		if err := s.checkReach(ctx, typ, id, nil, cur.Content); err != nil {
			return nil, q, err
		}
	} else if err := Confined(ctx, typ); err != nil {
		return nil, q, err
	}
	res, err := s.store.History(ctx, q)
	return res, q, err
}

// SystemHistory lists the versions of every resource of types (at least one; see
// SystemTypes, which the caller may have narrowed to those its policies allow), newest
// first (conformance H1).
func (s *Service) SystemHistory(ctx context.Context, types []string, params url.Values, strict bool) (*HistoryResult, HistoryQuery, error) {
	if len(types) == 0 {
		return nil, HistoryQuery{}, Internal(fmt.Errorf("system history without types"))
	}
	q, err := s.ParseHistory(params, strict)
	if err != nil {
		return nil, q, err
	}
	if err := Confined(ctx, types...); err != nil {
		return nil, q, err
	}
	q.Types, q.OtherTypes = types, otherTypes(s.reg, types)
	res, err := s.store.History(ctx, q)
	return res, q, err
}

// ParseHistory reads the parameters of a history: _count (capped at the service's
// maximum), _since (an instant: versions written at or after it), _at (a date, dateTime
// or instant: the versions current at some instant of the period it covers), the
// _cursor of a next link and _page. Another parameter is ignored and named in
// HistoryQuery.Ignored, or with strict a CodeInvalid error naming them all, as a search's
// are (handling.go). A malformed value is a CodeInvalid error naming its parameter.
func (s *Service) ParseHistory(params url.Values, strict bool) (HistoryQuery, error) {
	return parseHistory(params, strict, s.opts.DefaultCount, s.opts.MaxCount)
}

func parseHistory(params url.Values, strict bool, defaultCount, maxCount int) (HistoryQuery, error) {
	q := HistoryQuery{Count: defaultCount, Used: url.Values{}}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names) // the first error and the ignored ones in a stable order
	for _, name := range names {
		vs := params[name]
		if !slices.Contains(historyParams, name) {
			reason := fmt.Sprintf("unknown history parameter %q", name)
			if slices.Contains(historyUnsupported, name) {
				reason = fmt.Sprintf("history parameter %q is not supported by this server", name)
			}
			q.Ignored = append(q.Ignored, Ignored{Param: name, Reason: reason})
			continue
		}
		if len(vs) > 1 {
			return q, invalid(name, "%s is given %d times: a history takes it once", name, len(vs))
		}
		if err := q.param(name, vs[0], maxCount); err != nil {
			return q, err
		}
	}
	if len(q.Ignored) > 0 && strict {
		return q, strictIgnored(q.Ignored, "history")
	}
	return q, nil
}

// param applies one history parameter, name=raw.
func (q *HistoryQuery) param(name, raw string, maxCount int) error {
	switch name {
	case "_count":
		n, err := parseCount(raw)
		if err != nil {
			return invalid("_count", "_count must be a non-negative integer, got %q", raw)
		}
		q.Count = min(n, maxCount)
		q.Used.Set("_count", strconv.Itoa(q.Count))
	case "_page":
		n, err := parsePage(raw)
		if err != nil {
			return err
		}
		// Read once _count is known: parameters are applied in name order, _count first.
		if q.Count > 0 && n-1 > math.MaxInt32/q.Count {
			return invalid("_page", "_page %d is too large", n)
		}
		q.Offset = (n - 1) * max(q.Count, 0)
	case "_since":
		low, _, err := fhirdate.ParseRange(raw)
		if err != nil {
			return invalid("_since", "_since is not a valid instant: %q (e.g. 2024-05-01T10:00:00Z)", raw)
		}
		q.Since = low
		q.Used.Set("_since", raw)
	case "_at":
		low, high, err := fhirdate.ParseRange(raw)
		if err != nil {
			return invalid("_at", "_at is not a valid date, dateTime or instant: %q (e.g. 2024-05-01T10:00:00Z, or 2024-05 for a month)", raw)
		}
		q.AtLow, q.AtHigh = low, high
		q.Used.Set("_at", raw)
	case HistoryCursorParam:
		c, err := ParseHistoryCursor(raw)
		if err != nil {
			return err
		}
		q.After = c
	}
	return nil
}

// CursorOf returns the place of version r in a history: what a next link carries.
func CursorOf(r *Resource) *HistoryCursor {
	return &HistoryCursor{LastUpdated: r.LastUpdated, VersionID: r.VersionID, Type: r.Type, ID: r.ID}
}

// String writes the cursor as the _cursor parameter carries it.
func (c *HistoryCursor) String() string {
	return strconv.FormatInt(c.LastUpdated.UnixMicro(), 10) + "_" + strconv.FormatInt(c.VersionID, 10) + "_" + c.Type + "_" + c.ID
}

// ParseHistoryCursor reads what HistoryCursor.String wrote; anything else is a CodeInvalid
// error naming the parameter.
func ParseHistoryCursor(raw string) (*HistoryCursor, error) {
	bad := invalid(HistoryCursorParam, "%s: %q is not a history cursor: follow the Bundle's links as given", HistoryCursorParam, raw)
	parts := strings.SplitN(raw, "_", 4)
	if len(raw) > 200 || len(parts) != 4 {
		return nil, bad
	}
	micros, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || micros < 0 {
		return nil, bad
	}
	v, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || v < 1 {
		return nil, bad
	}
	if !ValidID(parts[2]) || !ValidID(parts[3]) {
		return nil, bad
	}
	return &HistoryCursor{LastUpdated: time.UnixMicro(micros).UTC(), VersionID: v, Type: parts[2], ID: parts[3]}, nil
}
