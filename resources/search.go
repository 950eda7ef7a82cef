package resources

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fhirbox/fhirbox/resources/fhirdate"
)

// ParseOptions tunes ParseSearch.
type ParseOptions struct {
	// Strict makes unknown parameters an error instead of ignoring them
	// (Prefer: handling=strict, conformance F13).
	Strict bool
	// DefaultCount is the page size when _count is absent (20 when zero); MaxCount caps
	// _count (1000 when zero).
	DefaultCount, MaxCount int
	// Limits caps what the search may ask for; zero fields take DefaultLimits.
	Limits Limits
}

// Limits caps what one search request may ask for. Search cost grows with each of them
// (PostgreSQL's planning time faster than linearly with the clauses), so one request
// could otherwise take the database for minutes: a search past a limit is a CodeInvalid
// error (400) that names the limit, the count asked and the setting. The defaults are
// far above what FHIR applications send and keep the costliest search around a second
// of database time on the test data (docs/security.md has the figures). A zero field
// takes its default.
type Limits struct {
	// Clauses caps the search parameter occurrences (the AND-ed clauses); every
	// occurrence counts, whatever its modifier (:missing, :not, :exact, a type).
	Clauses int
	// Values caps the comma-separated (OR-ed) values of one occurrence.
	Values int
	// TotalValues caps the values of all occurrences together.
	TotalValues int
	// Elements caps the distinct names of _elements.
	Elements int
	// SortKeys caps the distinct keys of _sort.
	SortKeys int
	// Chain caps the links of one chained parameter or _has (each link is a nested
	// subquery); every link also counts as a clause against Clauses.
	Chain int
	// Includes caps the resources that the _include and _revinclude parameters of one
	// page may reach (see Service.Include); their number of parameters counts against
	// Clauses.
	Includes int
}

// LimitsSetting is the environment variable (and, lower-cased without its prefix, the
// flag) that sets Limits, in the form ParseLimits reads; errors name it.
const LimitsSetting = "FHIRBOX_SEARCH_LIMITS"

// DefaultLimits returns the limits used where none are configured.
func DefaultLimits() Limits {
	return Limits{Clauses: 12, Values: 200, TotalValues: 500, Elements: 100, SortKeys: 3, Chain: 4, Includes: 1000}
}

// limitKeys names the fields of Limits in LimitsSetting, with the largest value each
// may be set to: every value binds at most 4 statement parameters and every clause 2,
// so 5,000 values and 100 clauses stay within SQLite's 32,766 bound parameters, and
// 100 AND-ed clauses within its expression depth of 1,000.
var limitKeys = []limitKey{
	{"clauses", func(l *Limits) *int { return &l.Clauses }, 100},
	{"values", func(l *Limits) *int { return &l.Values }, 5000},
	{"total-values", func(l *Limits) *int { return &l.TotalValues }, 5000},
	{"elements", func(l *Limits) *int { return &l.Elements }, 10000},
	{"sort", func(l *Limits) *int { return &l.SortKeys }, 50},
	{"chain", func(l *Limits) *int { return &l.Chain }, 10},
	{"includes", func(l *Limits) *int { return &l.Includes }, 10000},
}

type limitKey struct {
	key   string
	field func(*Limits) *int
	max   int
}

// withDefaults returns l with its zero fields set to the defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, k := range limitKeys {
		if f := k.field(&l); *f <= 0 {
			*f = *k.field(&d)
		}
	}
	return l
}

// ParseLimits reads limits written as "clauses=12,values=200,total-values=500,
// elements=100,sort=3,chain=4,includes=1000" (the form String writes); keys left out keep
// their defaults, and an empty string gives DefaultLimits.
func ParseLimits(s string) (Limits, error) {
	l := DefaultLimits()
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		i := slices.IndexFunc(limitKeys, func(lk limitKey) bool { return lk.key == strings.TrimSpace(k) })
		if i < 0 {
			return l, fmt.Errorf("%s: unknown limit %q (known: clauses, values, total-values, elements, sort, chain, includes)", LimitsSetting, k)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > limitKeys[i].max {
			return l, fmt.Errorf("%s: %s must be an integer from 1 to %d, got %q", LimitsSetting, limitKeys[i].key, limitKeys[i].max, v)
		}
		*limitKeys[i].field(&l) = n
	}
	return l, nil
}

// String writes l in the form ParseLimits reads.
func (l Limits) String() string {
	parts := make([]string, len(limitKeys))
	for i, k := range limitKeys {
		parts[i] = k.key + "=" + strconv.Itoa(*k.field(&l))
	}
	return strings.Join(parts, ",")
}

// overLimit is the error of a request past a limit: what was asked, the limit and the
// setting that raises it.
func overLimit(param, what string, asked, limit int, key string) *Error {
	return invalid(param, "%s: %d asked, at most %d allowed (setting %s, key %s=%d)", what, asked, limit, LimitsSetting, key, limit)
}

// ParseSearch parses the search parameters of a search on typ into a Query.
//
// Each occurrence of a parameter is one Clause (the clauses are AND-ed); the
// comma-separated values of one occurrence are OR-ed, "\," being a literal comma. Empty
// values are ignored. Clauses come out ordered by parameter name, then in the order given,
// because url.Values does not keep the order of different names.
//
// The control parameters _count, _page, _pageset, _sort, _total, _elements and _summary
// are understood, and so are _include and _revinclude (see Include); _format and _pretty
// are left to the HTTP layer. Unknown parameters (including _offset and the other
// unsupported "_" parameters) are ignored, left out of Query.Used and listed in
// Query.Ignored with the reason, or are one CodeInvalid error naming them all when
// opts.Strict is set (conformance F13). A modifier the parameter type does not support, a
// malformed value, an unknown _sort key and an out-of-range control value are CodeInvalid
// errors whatever opts says; an unknown type is CodeNotFound. Errors are *Error values;
// CodeInvalid ones name the
// parameter in Expression and quote the offending value in Message.
//
// Query.Used holds each understood parameter in canonical form except _page, which the
// server sets per link; its values round-trip through ParseSearch unchanged.
func ParseSearch(reg *Registry, typ string, params url.Values, opts ParseOptions) (*Query, error) {
	td, ok := reg.Type(typ)
	if !ok {
		return nil, Errorf(CodeNotFound, "unknown resource type %q", typ)
	}
	return parseSearch(reg, td, &Query{Type: typ}, params, opts, nil)
}

// parseSearch parses params as a search over the parameters of td into q (whose Type and
// Types are set). lacking, when not nil, gives the error message that refuses a
// parameter not in td, whatever opts.Strict says (see ParseSystemSearch).
func parseSearch(reg *Registry, td *TypeDef, q *Query, params url.Values, opts ParseOptions, lacking func(string) string) (*Query, error) {
	if opts.DefaultCount <= 0 {
		opts.DefaultCount = 20
	}
	if opts.MaxCount <= 0 {
		opts.MaxCount = 1000
	}
	opts.Limits = opts.Limits.withDefaults()
	q.Count, q.Total, q.Used = min(opts.DefaultCount, opts.MaxCount), TotalAccurate, url.Values{}
	q.Original = originalParams(params)
	p := searchParser{reg: reg, td: td, opts: opts, q: q, lacking: lacking}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	// The caps on clauses and values are checked before any value is parsed, so that a
	// request far past them costs no more than counting its commas.
	if err := p.checkCounts(names, params); err != nil {
		return nil, err
	}
	page := 0
	for _, name := range names {
		for _, raw := range params[name] {
			if raw == "" {
				continue // empty parameters count as absent
			}
			// No index value holds either, and PostgreSQL refuses both in a text parameter.
			if strings.IndexByte(raw, 0) >= 0 {
				return nil, invalid(name, "%s: the value contains the character U+0000 (%%00)", name)
			}
			if !utf8.ValidString(raw) {
				return nil, invalid(name, "%s: the value is not valid UTF-8 once percent-decoded", name)
			}
			var err error
			switch name {
			case "_format", "_pretty":
				// The HTTP layer applies them; they are not part of the search.
			case "_page":
				page, err = parsePage(raw)
			case PageSetParam:
				p.q.PageSet, err = parsePageSet(raw)
			default:
				err = p.param(name, raw)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if n := len(p.elements); n > opts.Limits.Elements {
		return nil, overLimit("_elements", "too many _elements names", n, opts.Limits.Elements, "elements")
	}
	if n := len(p.q.Sort); n > opts.Limits.SortKeys {
		return nil, overLimit("_sort", "too many _sort keys", n, opts.Limits.SortKeys, "sort")
	}
	p.setSortUsed()
	if err := p.strictError(); err != nil {
		return nil, err
	}
	if page > 1 && p.q.Count > 0 {
		if page-1 > math.MaxInt32/p.q.Count {
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("_page %d is too large", page), Expression: "_page"}
		}
		p.q.Offset = (page - 1) * p.q.Count
	}
	return p.q, nil
}

// searchParser holds the state of one ParseSearch call.
type searchParser struct {
	reg  *Registry
	td   *TypeDef
	opts ParseOptions
	q    *Query
	// sorted remembers the _sort keys already taken, so a repeated key keeps its first
	// (highest) priority.
	sorted map[string]bool
	// elements holds the distinct _elements names, valid or not, to check each once and
	// count them against the limit.
	elements map[string]bool
	// lacking, in a system-level search, says why a parameter some of the types have
	// cannot be searched ("" when none has it).
	lacking func(name string) string
}

// checkCounts counts the clauses and values params asks for and refuses a search past
// opts.Limits. Only occurrences of the type's search parameters count; unknown ones are
// ignored (or refused, strict) as they are met later.
func (p *searchParser) checkCounts(names []string, params url.Values) error {
	lim := p.opts.Limits
	clauses, total, includes := 0, 0, 0
	for _, name := range names {
		pname, mod, _ := strings.Cut(name, ":")
		if isInclude(pname) {
			includes += countNonEmpty(params[name])
			continue
		}
		links, last := chainLinks(name)
		if links > 0 {
			_, mod, _ = strings.Cut(last, ":") // the modifier of the chain's last parameter
		} else if p.td.Param(pname) == nil && fullTextParam(pname) == nil {
			continue // control parameters (_count, _sort…) and unknown ones
		}
		for _, raw := range params[name] {
			if raw == "" {
				continue
			}
			if links > lim.Chain {
				return overLimit(name, fmt.Sprintf("too many links in the chain %s", name), links, lim.Chain, "chain")
			}
			clauses += 1 + links // a link is a subquery, as costly as a clause
			n := 1
			if mod != "missing" {
				n = countItems(raw)
			}
			if n > lim.Values {
				return overLimit(name, fmt.Sprintf("too many comma-separated values in one %s parameter", name), n, lim.Values, "values")
			}
			total += n
		}
	}
	if clauses > lim.Clauses {
		return overLimit("", "too many search parameters (clauses)", clauses, lim.Clauses, "clauses")
	}
	if includes > lim.Clauses {
		return overLimit("", "too many _include and _revinclude parameters", includes, lim.Clauses, "clauses")
	}
	if total > lim.TotalValues {
		return overLimit("", "too many search values in all parameters together", total, lim.TotalValues, "total-values")
	}
	return nil
}

// countItems counts the non-empty items of a comma list as splitEscaped splits it.
func countItems(s string) int {
	n, empty := 0, true
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			empty = false
		case ',':
			if !empty {
				n++
			}
			empty = true
		default:
			empty = false
		}
	}
	if !empty {
		n++
	}
	return n
}

// invalid returns a CodeInvalid error about parameter param.
func invalid(param, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...), Expression: param}
}

// parseCount reads a _count value. A count too large for an int is still a count:
// it asks for as many as the server gives, so it is capped like any other.
func parseCount(raw string) (int, error) {
	n, err := strconv.Atoi(raw)
	if err != nil && errors.Is(err, strconv.ErrRange) && raw[0] != '-' {
		return math.MaxInt, nil
	}
	if err != nil || n < 0 {
		return 0, errors.New("not a non-negative integer")
	}
	return n, nil
}

func parsePage(raw string) (int, error) {
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, invalid("_page", "_page must be a positive integer, got %q", raw)
	}
	return n, nil
}

// elementName is the syntax of a top-level element name in _elements.
var elementName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// param parses one occurrence name=raw (raw not empty).
func (p *searchParser) param(name, raw string) error {
	q := p.q
	switch name {
	case "_count":
		n, err := parseCount(raw)
		if err != nil {
			return invalid(name, "_count must be a non-negative integer, got %q", raw)
		}
		q.Count = min(n, p.opts.MaxCount)
		q.Used.Set(name, strconv.Itoa(q.Count))
	case "_total":
		switch t := TotalMode(raw); t {
		case TotalNone, TotalEstimate, TotalAccurate:
			q.Total = t
			q.Used.Set(name, raw)
		default:
			return invalid(name, "_total must be none, estimate or accurate, got %q", raw)
		}
	case "_summary":
		switch raw {
		case "true", "false", "text", "data", "count":
			q.Summary = raw
			q.Used.Set(name, raw)
		default:
			return invalid(name, "_summary must be true, false, text, data or count, got %q", raw)
		}
	case "_elements":
		if p.elements == nil {
			p.elements = map[string]bool{}
		}
		for _, el := range strings.Split(raw, ",") {
			el = strings.TrimSpace(el)
			if el == "" || p.elements[el] {
				continue
			}
			p.elements[el] = true
			if len(p.elements) > p.opts.Limits.Elements {
				continue // only counted from here on: the request is refused
			}
			if !elementName.MatchString(el) {
				return invalid(name, "_elements: %q is not an element name", el)
			}
			q.Elements = append(q.Elements, el)
		}
		if len(q.Elements) > 0 {
			q.Used.Set(name, strings.Join(q.Elements, ","))
		}
	case "_sort":
		return p.sort(raw)
	case "_list":
		return p.list(raw)
	default:
		if base, _, _ := strings.Cut(name, ":"); isInclude(base) {
			return p.include(name, raw)
		}
		return p.clause(name, raw)
	}
	return nil
}

// sort parses one _sort value: a comma list of parameter names, "-" for descending.
func (p *searchParser) sort(raw string) error {
	if p.sorted == nil {
		p.sorted = map[string]bool{}
	}
	for _, key := range strings.Split(raw, ",") {
		key = strings.TrimSpace(key)
		desc := strings.HasPrefix(key, "-")
		key = strings.TrimPrefix(key, "-")
		if key == "" {
			continue
		}
		sp := p.td.Param(key)
		if sp == nil {
			return invalid("_sort", "_sort: %q is not a search parameter of %s", key, p.td.Name)
		}
		if sp.Type == TypeComposite || sp.Type == TypeSpecial {
			return invalid("_sort", "_sort: %s is a %s parameter, which has no order", key, sp.Type)
		}
		if err := p.indexing("_sort", sp); err != nil {
			return err
		}
		if p.sorted[key] {
			continue
		}
		p.sorted[key] = true
		p.q.Sort = append(p.q.Sort, SortKey{Param: sp, Desc: desc})
	}
	return nil
}

// setSortUsed puts the _sort keys taken into Used, once all occurrences are read.
func (p *searchParser) setSortUsed() {
	if len(p.q.Sort) == 0 {
		return
	}
	keys := make([]string, len(p.q.Sort))
	for i, k := range p.q.Sort {
		keys[i] = k.Param.Name
		if k.Desc {
			keys[i] = "-" + keys[i]
		}
	}
	p.q.Used.Set("_sort", strings.Join(keys, ","))
}

// modifiers lists the modifiers each parameter type supports; reference parameters
// also take a resource type.
var modifiers = map[ParamType][]string{
	TypeString:    {"exact", "contains", "missing"},
	TypeToken:     {"not", "missing", "text", "of-type"},
	TypeURI:       {"not", "missing", "exact", "contains", "below", "above"},
	TypeReference: {"missing", "identifier"},
	TypeDate:      {"missing"},
	TypeNumber:    {"missing"},
	TypeQuantity:  {"missing"},
	TypeComposite: {"missing"},
	TypeSpecial:   {"missing"},
}

// clause parses one occurrence of a search parameter, name[:modifier]=raw.
func (p *searchParser) clause(name, raw string) error {
	if isChained(name) {
		return p.chained(name, raw)
	}
	pname, mod, _ := strings.Cut(name, ":")
	if ft := fullTextParam(pname); ft != nil {
		return p.fullText(ft, name, mod, raw)
	}
	sp := p.td.Param(pname)
	if sp == nil {
		if p.lacking != nil {
			if lacks := p.lacking(pname); lacks != "" {
				return invalid(name, "%s", lacks)
			}
		}
		p.ignore(name) // refused at the end when strict, with every other one
		return nil
	}
	return p.paramClause(sp, nil, "", name, name, raw)
}

// paramClause parses one occurrence of parameter sp, last being "name[:modifier]" as
// written, at the end of chain (none for a plain parameter): full is the whole name as
// written (for messages), prefix the chain's canonical form before last (for Used).
func (p *searchParser) paramClause(sp *SearchParam, chain []ChainLink, prefix, full, last, raw string) error {
	name := full
	pname, mod, _ := strings.Cut(last, ":")
	if err := p.indexing(name, sp); err != nil {
		return err
	}
	c := Clause{Param: sp, Modifier: mod, Chain: chain}
	td := p.td
	if len(chain) > 0 {
		// The clause applies to the types the last link leads to; a composite's
		// parts are the same parameters on each.
		td, _ = p.reg.Type(chain[len(chain)-1].Types[0])
	}
	if err := p.prepareClause(td, name, &c); err != nil { // modifiers.go
		return err
	}
	switch {
	case mod == "":
	case mod == "missing" && sp.Column != "":
		// _id and _lastUpdated are never missing; refusing is clearer than an answer
		// that a store reading an index table for them could get wrong.
		return invalid(name, "%s does not support :missing", pname)
	case contains(modifiers[sp.Type], mod):
	case sp.Type == TypeReference && typeName.MatchString(mod):
		if _, known := p.reg.Type(mod); !known {
			return invalid(name, "%s: unknown resource type %q", name, mod)
		}
		if len(sp.Targets) > 0 && !contains(sp.Targets, mod) {
			return invalid(name, "%s: %s is not a target of %s (%s)", name, mod, pname, strings.Join(sp.Targets, ", "))
		}
	default:
		return invalid(name, "modifier :%s is not supported on %s (%s)", mod, pname, sp.Type)
	}
	if sp.Type == TypeURI && mod == "exact" {
		c.Modifier = "" // uri values always match exactly
	}
	key := prefix + pname
	if c.Modifier != "" {
		key += ":" + c.Modifier
	}

	if mod == "missing" {
		switch raw {
		case "true", "false":
			c.Missing = raw == "true"
		default:
			return invalid(name, "%s takes true or false, got %q", name, raw)
		}
		p.q.Clauses = append(p.q.Clauses, c)
		p.q.Used.Add(key, raw)
		return nil
	}

	var used []string
	for _, item := range splitEscaped(raw, ',') {
		if item == "" {
			continue
		}
		v, ok, err := p.value(sp, c.Modifier, item)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		v.Raw = item
		c.Values = append(c.Values, v)
		used = append(used, item)
	}
	if len(c.Values) == 0 {
		return nil // nothing to search for, as if absent
	}
	p.q.Clauses = append(p.q.Clauses, c)
	p.q.Used.Add(key, strings.Join(used, ","))
	return nil
}

// value parses one item (escapes still in place) of parameter sp. ok is false for an
// item that says nothing (a string that normalises to empty).
func (p *searchParser) value(sp *SearchParam, mod, item string) (v Value, ok bool, err error) {
	bad := func(format string, args ...any) (Value, bool, error) {
		return Value{}, false, invalid(sp.Name, "%s: %q: %s", sp.Name, item, fmt.Sprintf(format, args...))
	}
	// A value longer than any the index holds could match nothing; refused, it also
	// keeps a :contains pattern within what SQLite's LIKE takes (50,000 bytes).
	tooLong := func(n int) (Value, bool, error) {
		return Value{}, false, invalid(sp.Name, "%s: a value of %d bytes is longer than any value the search index holds (%d bytes)", sp.Name, n, MaxIndexValueBytes)
	}
	if len(item) > 2*MaxIndexValueBytes+1 && sp.Type != TypeDate && sp.Type != TypeNumber && sp.Type != TypeQuantity {
		return tooLong(len(item)) // escapes double a value at most
	}
	if derivedValue(sp, mod) {
		return p.derivedValue(sp, mod, item) // modifiers.go
	}
	switch sp.Type {
	case TypeString:
		s := unescape(item)
		if mod == "exact" {
			v.Str = s
		} else {
			v.Str = NormalizeString(s)
		}
		if len(v.Str) > MaxIndexValueBytes {
			return tooLong(len(v.Str))
		}
		return v, v.Str != "", nil

	case TypeURI:
		v.Str = unescape(item)
		if len(v.Str) > MaxIndexValueBytes {
			return tooLong(len(v.Str))
		}
		return v, true, nil

	case TypeToken:
		if sp.Column == "id" {
			id := unescape(item)
			if !ValidID(id) {
				return bad("not a valid id ([A-Za-z0-9-.]{1,64})")
			}
			v.Code, v.MatchCode = id, true
			return v, true, nil
		}
		if u := unescape(item); len(u) > MaxIndexValueBytes+1 { // system, "|", code
			return tooLong(len(u))
		}
		parts := splitEscaped(item, '|')
		if len(parts) == 1 {
			v.Code, v.MatchCode = unescape(item), true
			return v, true, nil
		}
		system := unescape(parts[0])
		// A code may hold an unescaped "|": everything after the first one is the code.
		code := unescape(strings.Join(parts[1:], "|"))
		if system == "" && code == "" {
			return bad("a token needs a system or a code")
		}
		v.System, v.MatchSystem = system, true
		if code != "" {
			v.Code, v.MatchCode = code, true
		}
		return v, true, nil

	case TypeDate:
		prefix, rest, err := parsePrefix(item, false)
		if err != nil {
			return bad("%v", err)
		}
		low, high, err := fhirdate.ParseRange(unescape(rest))
		if err != nil {
			return bad("not a valid date, dateTime or instant")
		}
		v.Prefix, v.Low, v.High = prefix, low, high
		return v, true, nil

	case TypeNumber, TypeQuantity:
		parts := []string{item}
		if sp.Type == TypeQuantity {
			parts = splitEscaped(item, '|')
			if len(parts) != 1 && len(parts) != 3 {
				return bad("a quantity is number, number|system|code or number||code")
			}
		}
		prefix, rest, err := parsePrefix(parts[0], true)
		if err != nil {
			return bad("%v", err)
		}
		n, lo, hi, err := parseNumber(rest)
		if err != nil {
			return bad("%v", err)
		}
		v.Prefix, v.Number, v.NumLow, v.NumHigh = prefix, n, lo, hi
		if len(parts) == 3 {
			if s := unescape(parts[1]); s != "" {
				v.System, v.MatchSystem = s, true
			}
			if c := unescape(parts[2]); c != "" {
				v.Code, v.MatchCode = c, true
			}
		}
		return v, true, nil

	case TypeReference:
		ref := unescape(item)
		typ, id := mod, ref
		if strings.Contains(ref, "|") {
			// The index keeps a canonical's type and id, not its version (extract.go).
			return bad("a canonical's |version cannot be searched: search the URL without it, which finds every version")
		}
		if strings.Contains(ref, "/") {
			typ, id = splitReference(ref)
			if typ == "" {
				return bad("not a reference (Type/id, id or an absolute URL ending in Type/id)")
			}
			if mod != "" && typ != mod {
				return bad("names %s, but the modifier says %s", typ, mod)
			}
		} else if !ValidID(id) {
			return bad("not a valid id ([A-Za-z0-9-.]{1,64})")
		}
		if typ == "" && len(sp.Targets) == 1 {
			typ = sp.Targets[0]
		}
		if typ != "" && len(sp.Targets) > 0 && !contains(sp.Targets, typ) {
			return bad("%s is not a target of %s (%s)", typ, sp.Name, strings.Join(sp.Targets, ", "))
		}
		v.RefType, v.RefID = typ, id
		return v, true, nil
	}
	return bad("unsupported parameter type %s", sp.Type)
}

// splitEscaped splits s at each sep not escaped by a backslash; escapes stay in place
// for unescape.
func splitEscaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unescape resolves FHIR search escapes: "\," "\|" "\$" and "\\" stand for the character
// itself; any other backslash is literal.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`,|$\`, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parsePrefix splits a comparison prefix off a date or number value: two lower-case
// letters followed by a digit (or, for numbers, a sign or a point).
func parsePrefix(s string, numeric bool) (Prefix, string, error) {
	if len(s) < 3 || !isLower(s[0]) || !isLower(s[1]) {
		return "", s, nil
	}
	if c := s[2]; !('0' <= c && c <= '9') && !(numeric && (c == '-' || c == '+' || c == '.')) {
		return "", s, nil
	}
	switch pr := Prefix(s[:2]); pr {
	case PrefixEq, PrefixNe, PrefixLt, PrefixLe, PrefixGt, PrefixGe, PrefixSa, PrefixEb, PrefixAp:
		return pr, s[2:], nil
	}
	return "", s, fmt.Errorf("unknown prefix %q", s[:2])
}

func isLower(b byte) bool { return 'a' <= b && b <= 'z' }

// MaxNumberLength bounds the text of a number in a search value. No measurement needs
// more digits than a float64 (which the index stores) tells apart; the bound keeps the
// exact decimal arithmetic of parseNumber, quadratic in the digits, trivial.
const MaxNumberLength = 128

// decimalRE is the syntax of a search number: a decimal with an optional exponent.
var decimalRE = regexp.MustCompile(`^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$`)

// parseNumber parses a search number and the range [lo, hi) its precision implies: half
// a unit of its last digit either side, so "100" is [99.5, 100.5), "5.4" [5.35, 5.45)
// and "1e2" [50, 150). The bounds are computed in decimal and rounded once, so a value
// stored as 5.35 is inside the range of "5.4".
func parseNumber(s string) (n, lo, hi float64, err error) {
	if len(s) > MaxNumberLength {
		return 0, 0, 0, fmt.Errorf("a number of %d characters; at most %d", len(s), MaxNumberLength)
	}
	m := decimalRE.FindStringSubmatch(s)
	if m == nil || m[2]+m[3] == "" {
		return 0, 0, 0, fmt.Errorf("not a number")
	}
	if n, err = strconv.ParseFloat(s, 64); err != nil || math.IsInf(n, 0) {
		return 0, 0, 0, fmt.Errorf("number out of range")
	}
	exp := 0
	if m[4] != "" {
		exp, _ = strconv.Atoi(m[4])
	}
	// value = mantissa × 10^(exp - len(fraction)); the bounds are (10·mantissa ∓ 5) ×
	// 10^(exp - len(fraction) - 1).
	mant, _ := new(big.Int).SetString(m[1]+"0"+m[2]+m[3], 10)
	mant.Mul(mant, big.NewInt(10))
	scale := strconv.Itoa(exp - len(m[3]) - 1)
	bound := func(delta int64) (float64, error) {
		b := new(big.Int).Add(mant, big.NewInt(delta))
		f, err := strconv.ParseFloat(b.String()+"e"+scale, 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, fmt.Errorf("number out of range")
		}
		return f, nil
	}
	if lo, err = bound(-5); err != nil {
		return 0, 0, 0, err
	}
	if hi, err = bound(5); err != nil {
		return 0, 0, 0, err
	}
	return n, lo, hi, nil
}
