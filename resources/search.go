package resources

import (
	"fmt"
	"math"
	"math/big"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseOptions tunes ParseSearch.
type ParseOptions struct {
	// Strict makes unknown parameters an error instead of ignoring them
	// (Prefer: handling=strict, F13).
	Strict bool
	// DefaultCount is the page size when _count is absent (20 when zero); MaxCount caps
	// _count (1000 when zero).
	DefaultCount, MaxCount int
}

// ParseSearch parses the search parameters of a search on typ into a Query.
//
// Each occurrence of a parameter is one Clause (the clauses are AND-ed); the
// comma-separated values of one occurrence are OR-ed, "\," being a literal comma. Empty
// values are ignored. Clauses come out ordered by parameter name, then in the order given,
// because url.Values does not keep the order of different names.
//
// The control parameters _count, _page, _sort, _total, _elements and _summary are
// understood; _format and _pretty are left to the HTTP layer. Unknown parameters
// (including _offset, _include and the other unsupported "_" parameters) are ignored and
// left out of Query.Used, or are a CodeInvalid error when opts.Strict is set (F13). A
// modifier the parameter type does not support, a malformed value, an unknown _sort key
// and an out-of-range control value are CodeInvalid errors whatever opts says; an unknown
// type is CodeNotFound. Errors are *Error values; CodeInvalid ones name the parameter
// in Expression and quote the offending value in Message.
//
// Query.Used holds each understood parameter in canonical form except _page, which the
// server sets per link; its values round-trip through ParseSearch unchanged.
func ParseSearch(reg *Registry, typ string, params url.Values, opts ParseOptions) (*Query, error) {
	td, ok := reg.Type(typ)
	if !ok {
		return nil, Errorf(CodeNotFound, "unknown resource type %q", typ)
	}
	if opts.DefaultCount <= 0 {
		opts.DefaultCount = 20
	}
	if opts.MaxCount <= 0 {
		opts.MaxCount = 1000
	}
	p := searchParser{reg: reg, td: td, opts: opts, q: &Query{
		Type:  typ,
		Count: min(opts.DefaultCount, opts.MaxCount),
		Total: TotalAccurate,
		Used:  url.Values{},
	}}
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
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
			default:
				err = p.param(name, raw)
			}
			if err != nil {
				return nil, err
			}
		}
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
}

// invalid returns a CodeInvalid error about parameter param.
func invalid(param, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...), Expression: param}
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
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
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
		for _, el := range strings.Split(raw, ",") {
			el = strings.TrimSpace(el)
			if el == "" || contains(q.Elements, el) {
				continue
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
	default:
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
		if p.sorted[key] {
			continue
		}
		p.sorted[key] = true
		p.q.Sort = append(p.q.Sort, SortKey{Param: sp, Desc: desc})
	}
	keys := make([]string, len(p.q.Sort))
	for i, k := range p.q.Sort {
		keys[i] = k.Param.Name
		if k.Desc {
			keys[i] = "-" + keys[i]
		}
	}
	if len(keys) > 0 {
		p.q.Used.Set("_sort", strings.Join(keys, ","))
	}
	return nil
}

// modifiers lists the modifiers each parameter type supports; reference parameters
// also take a resource type.
var modifiers = map[ParamType][]string{
	TypeString:    {"exact", "contains", "missing"},
	TypeToken:     {"not", "missing"},
	TypeURI:       {"not", "missing", "exact"},
	TypeReference: {"missing"},
	TypeDate:      {"missing"},
	TypeNumber:    {"missing"},
	TypeQuantity:  {"missing"},
}

// clause parses one occurrence of a search parameter, name[:modifier]=raw.
func (p *searchParser) clause(name, raw string) error {
	pname, mod, _ := strings.Cut(name, ":")
	sp := p.td.Param(pname)
	if sp == nil {
		if p.opts.Strict {
			return invalid(name, "unknown search parameter %q for %s", name, p.td.Name)
		}
		return nil
	}
	c := Clause{Param: sp, Modifier: mod}
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
	key := pname
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
	switch sp.Type {
	case TypeString:
		s := unescape(item)
		if mod == "exact" {
			v.Str = s
		} else {
			v.Str = NormalizeString(s)
		}
		return v, v.Str != "", nil

	case TypeURI:
		v.Str = unescape(item)
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
		low, high, err := ParseDateRange(unescape(rest))
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

// decimalRE is the syntax of a search number: a decimal with an optional exponent.
var decimalRE = regexp.MustCompile(`^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$`)

// parseNumber parses a search number and the range [lo, hi) its precision implies: half
// a unit of its last digit either side, so "100" is [99.5, 100.5), "5.4" [5.35, 5.45)
// and "1e2" [50, 150). The bounds are computed in decimal and rounded once, so a value
// stored as 5.35 is inside the range of "5.4".
func parseNumber(s string) (n, lo, hi float64, err error) {
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
