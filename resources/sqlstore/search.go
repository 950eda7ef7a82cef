package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// The search SQL is plain SQL that both databases run: subqueries over the index tables,
// LIKE with an explicit ESCAPE, no arrays, no functions of one database only. Every value
// of the request is bound as an argument; the only identifiers written into the text come
// from the fixed tables below.

// builder collects SQL text and its arguments.
type builder struct {
	// probing is written before the id a chain selects when the statement only counts
	// them (Dialect.probeChains): "+" there, "" in searches.
	probing string
	strings.Builder
	args []any
	d    *Dialect
	// typ is the searched type, which the MatchIn form binds in every subquery; types
	// are those of a system-level search (typ empty), see typeCond.
	typ    string
	types  []string
	others *[]string
	// driver is the clause that a MatchIn search starts from (see Dialect.drivers).
	driver *resources.Clause
	// selects is set once a clause selects the resources by id (r.id IN …).
	selects bool
	// r is the alias of the resource rows the clauses test: "" for r, the searched
	// resources; r1, r2… inside the links of a chain (see chain.go).
	r     string
	level int
	// chainConfine are the confinements of the types chains lead to
	// (resources.Query.ChainConfine).
	chainConfine map[string][][]resources.ConfineGroup
	// members are the resolved members of confinement groups on a compartment's own
	// type (see Dialect.confineMembers).
	members map[*resources.ConfineGroup][]string
	// compartmentStarts says a MatchIn search starts from its confinement's compartment
	// (see Dialect.drivers).
	compartmentStarts bool
}

// res returns the alias of the resource rows the clauses test.
func (b *builder) res() string {
	if b.r == "" {
		return "r"
	}
	return b.r
}

// arg binds v and returns its placeholder; an instant is bound as the dialect stores it.
func (b *builder) arg(v any) string {
	if t, ok := v.(time.Time); ok {
		v = b.d.timeArg(t)
	}
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// clone returns a builder that continues from b's text and arguments without changing b.
func (b *builder) clone() *builder {
	c := &builder{args: append([]any(nil), b.args...), d: b.d, typ: b.typ, types: b.types, others: b.others, driver: b.driver, selects: b.selects, chainConfine: b.chainConfine, members: b.members, compartmentStarts: b.compartmentStarts}
	c.WriteString(b.String())
	return c
}

// w writes parts in order.
func (b *builder) w(parts ...string) {
	for _, p := range parts {
		b.WriteString(p)
	}
}

// indexTable is one search_* table and the column a sort on it orders by.
type indexTable struct {
	name string
	// sortAsc and sortDesc are the aggregates that give a resource its place when the
	// parameter has several values: the lowest value ascending, the highest descending.
	sortAsc, sortDesc string
}

var (
	stringTable    = indexTable{"search_string", "min(s.value)", "max(s.value)"}
	tokenTable     = indexTable{"search_token", "min(s.code)", "max(s.code)"}
	dateTable      = indexTable{"search_date", "min(s.low)", "max(s.high)"}
	numberTable    = indexTable{"search_number", "min(s.value)", "max(s.value)"}
	referenceTable = indexTable{"search_reference", "min(s.target_id)", "max(s.target_id)"}
)

// tableOf returns the index table of a parameter type.
func tableOf(t resources.ParamType) (indexTable, bool) {
	switch t {
	case resources.TypeString:
		return stringTable, true
	case resources.TypeToken, resources.TypeURI:
		return tokenTable, true
	case resources.TypeDate:
		return dateTable, true
	case resources.TypeNumber, resources.TypeQuantity:
		return numberTable, true
	case resources.TypeReference:
		return referenceTable, true
	}
	return indexTable{}, false
}

// Search runs q over the live resources of q.Type with db: one statement for the page
// and, unless the page shows where the matches end, one for the total.
func (d *Dialect) Search(ctx context.Context, db Querier, q *resources.Query) (*resources.SearchResult, error) {
	members, err := d.confineMembers(ctx, db, q)
	if err != nil {
		return nil, err
	}
	var pageDriver, countDriver *resources.Clause
	starts := false
	if d.MatchIn {
		if pageDriver, countDriver, starts, err = d.drivers(ctx, db, q, members); err != nil {
			return nil, err
		}
	}
	from := func(driver *resources.Clause) (*builder, error) {
		b := &builder{d: d, driver: driver, members: members, compartmentStarts: starts}
		b.WriteString(" FROM resource r WHERE ")
		if err := b.where(q); err != nil {
			return nil, err
		}
		return b, b.checkArgs()
	}
	res := &resources.SearchResult{Total: -1}
	count, offset := max(q.Count, 0), max(q.Offset, 0)
	if count > 0 {
		page, err := from(pageDriver)
		if err != nil {
			return nil, err
		}
		if err := page.orderBy(q.Sort); err != nil {
			return nil, err
		}
		page.w(" LIMIT ", page.arg(count))
		// No OFFSET on the first page: with one (even 0) SQLite checks an EXISTS
		// clause once per candidate instead of joining it (Observation by patient
		// and code: 1.00 → 0.75 ms at 100,000 patients).
		if offset > 0 {
			page.w(" OFFSET ", page.arg(offset))
		}
		stmt := "SELECT " + pageColumns(q) + page.String()
		if d.RowidPage {
			// The matches are sorted by their row ids and sort keys alone; the content
			// is read for the rows of the page only, sorted again (a few rows).
			outer := &builder{d: d, args: page.args, typ: q.Type}
			outer.w("SELECT ", pageColumns(q), " FROM resource r",
				" WHERE r.rowid IN (SELECT r.rowid", page.String(), ")")
			if err := outer.orderBy(q.Sort); err != nil {
				return nil, err
			}
			stmt, page = outer.String(), outer
		}
		if q.Type == "" {
			res.Entries, err = d.typedVersions(ctx, db, stmt, page.args)
		} else {
			res.Entries, err = d.versions(ctx, db, q.Type, stmt, page.args)
		}
		if err != nil {
			return nil, err
		}
		// A page that is not full holds the last match, so the total needs no count.
		if n := len(res.Entries); n < count && (n > 0 || offset == 0) {
			if q.Total != resources.TotalNone {
				res.Total = offset + n
			}
			return res, nil
		}
	}
	if q.Total == resources.TotalNone {
		return res, nil
	}
	// _total=estimate is counted exactly too: the count uses the same indexes as the
	// page, and a planner's estimate can be far off for correlated clauses.
	b, err := from(countDriver)
	if err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*)"+b.String(), b.args...).Scan(&res.Total); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return res, nil
}

// maxArgs is the most arguments a statement may bind: SQLite's default bound
// (SQLITE_MAX_VARIABLE_NUMBER), below PostgreSQL's 65,535. The parser's limits keep
// searches far below it; a Query built past them is refused rather than failed.
const maxArgs = 32766

// checkArgs refuses a statement with more arguments than the databases take.
func (b *builder) checkArgs() error {
	// Room for LIMIT, OFFSET and the sort keys, twice in a RowidPage statement.
	const room = 128
	if len(b.args) > maxArgs-room {
		return &resources.Error{Code: resources.CodeInvalid, Message: fmt.Sprintf("the search binds %d values; at most %d are possible", len(b.args), maxArgs-room)}
	}
	return nil
}

// where writes the conditions of q: its type, live resources, and every clause.
func (b *builder) where(q *resources.Query) error {
	b.typ, b.types, b.others = q.Type, q.Types, q.OtherTypes
	b.chainConfine = q.ChainConfine
	b.typeCond("r.resource_type")
	b.WriteString(" AND NOT r.deleted")
	if q.After != "" {
		b.w(" AND r.id > ", b.arg(q.After))
	}
	b.listFilter(q.List)
	for i := range q.Clauses {
		if err := b.clause(&q.Clauses[i]); err != nil {
			return err
		}
	}
	for _, groups := range q.Confine {
		if err := b.confine(groups); err != nil {
			return err
		}
	}
	return nil
}

// unsupported reports a modifier the store cannot evaluate. The parser should have
// refused it; answering without it would return wrong matches.
func unsupported(c *resources.Clause) error {
	return &resources.Error{
		Code:       resources.CodeInvalid,
		Message:    fmt.Sprintf("modifier :%s is not supported on %s parameter %s", c.Modifier, c.Param.Type, c.Param.Name),
		Expression: c.Param.Name,
	}
}

// clause writes " AND <condition>" for one clause.
func (b *builder) clause(c *resources.Clause) error {
	p := c.Param
	if p == nil {
		return resources.Internal(fmt.Errorf("%s: search clause without a parameter", b.d.Name))
	}
	if len(c.Chain) > 0 {
		return b.chain(c)
	}
	switch p.Column {
	case "":
	case "id":
		return b.idClause(c)
	case "last_updated":
		return b.lastUpdatedClause(c)
	case resources.ColumnNarrative, resources.ColumnContent:
		b.fullText(c, c == b.driver)
		return nil
	default:
		return resources.Internal(fmt.Errorf("%s: parameter %s reads unknown column %q", b.d.Name, p.Name, p.Column))
	}
	ic, err := b.indexCond(c)
	if ic == nil || err != nil {
		return err
	}
	b.match(ic, c == b.driver)
	return nil
}

// indexCond is a clause on an index table: the resources that have (or, negated, have
// not) a row of the parameter whose values satisfy cond; a nil cond accepts any row.
type indexCond struct {
	t      indexTable
	param  string
	negate bool
	cond   func()
	// scans is set when cond cannot narrow the index to a range of values (a substring,
	// a prefix of the value searched, ne), so that finding the matching rows means
	// reading every row of the parameter.
	scans bool
}

// indexCond returns the condition of a clause on an index table, written with b when
// used; nil when the clause constrains nothing.
func (b *builder) indexCond(c *resources.Clause) (*indexCond, error) {
	if ic, ok, err := b.derivedCond(c); ok { // derived.go
		return ic, err
	}
	p := c.Param
	t, ok := tableOf(p.Type)
	if !ok {
		return nil, resources.Internal(fmt.Errorf("%s: parameter %s has unknown type %q", b.d.Name, p.Name, p.Type))
	}
	ic := &indexCond{t: t, param: p.Name}
	if c.Modifier == "missing" {
		ic.negate = c.Missing
		return ic, nil
	}
	// A value-less clause constrains nothing, as FHIR treats an empty parameter.
	if len(c.Values) == 0 {
		return nil, nil
	}

	var value func(v *resources.Value)
	switch p.Type {
	case resources.TypeString:
		switch c.Modifier {
		case "":
			value = func(v *resources.Value) { b.w("s.value LIKE ", b.arg(likeEscape(v.Str)+"%"), ` ESCAPE '\'`) }
		case "exact":
			// Through the value index: a string equal as written is equal normalised, and
			// an index on exact would cost every write a row per string (migration 00008).
			value = func(v *resources.Value) {
				b.w("s.value = ", b.arg(resources.NormalizeString(v.Str)), " AND s.exact = ", b.arg(v.Str))
			}
		case "contains":
			ic.scans = true
			value = func(v *resources.Value) { b.w("s.value LIKE ", b.arg("%"+likeEscape(v.Str)+"%"), ` ESCAPE '\'`) }
		default:
			return nil, unsupported(c)
		}
	case resources.TypeToken:
		switch c.Modifier {
		case "":
		case "not":
			// Resources without a matching token, those without any value included.
			ic.negate = true
		default:
			return nil, unsupported(c)
		}
		value = b.token
	case resources.TypeURI:
		switch c.Modifier {
		case "", "not":
			ic.negate = c.Modifier == "not"
			value = func(v *resources.Value) { b.w("s.code = ", b.arg(v.Str)) }
		case "below":
			value = func(v *resources.Value) { b.w("s.code LIKE ", b.arg(likeEscape(v.Str)+"%"), ` ESCAPE '\'`) }
		case "above":
			// The stored uri is a prefix of the searched one.
			ic.scans = true
			value = func(v *resources.Value) {
				a := b.arg(v.Str)
				b.w("substr(", a, ", 1, length(s.code)) = s.code")
			}
		default:
			return nil, unsupported(c)
		}
	case resources.TypeDate:
		if c.Modifier != "" {
			return nil, unsupported(c)
		}
		value = func(v *resources.Value) { b.dateRange(v, "s.low", "s.high", false) }
	case resources.TypeNumber, resources.TypeQuantity:
		if c.Modifier != "" {
			return nil, unsupported(c)
		}
		value = b.number
		if p.Ranged() {
			// The high bounds are in rows of their own: no range of s.value narrows
			// the index to the matches.
			ic.scans = true
			value = func(v *resources.Value) { b.rangedNumber(v, p.Name) }
		}
	case resources.TypeReference:
		typ := ""
		switch {
		case c.Modifier == "":
		case isTypeName(c.Modifier):
			// subject:Patient=123 names the target type in the modifier.
			typ = c.Modifier
		default:
			return nil, unsupported(c)
		}
		value = func(v *resources.Value) { b.reference(v, typ) }
	}
	for _, v := range c.Values {
		if v.Prefix == resources.PrefixNe {
			ic.scans = true
		}
	}
	ic.cond = func() { b.or(len(c.Values), func(i int) { value(&c.Values[i]) }) }
	return ic, nil
}

// or writes the disjunction of n terms, term(i) writing the i-th, as a balanced tree of
// parenthesised pairs. SQLite parses "a OR b OR c …" into a chain as deep as it is long
// and refuses expressions deeper than 1,000 (a few hundred values did it); the tree is
// about log2(n) deep.
func (b *builder) or(n int, term func(i int)) {
	var span func(lo, hi int)
	span = func(lo, hi int) {
		b.WriteString("(")
		if hi-lo == 1 {
			term(lo)
		} else {
			mid := (lo + hi) / 2
			span(lo, mid)
			b.WriteString(" OR ")
			span(mid, hi)
		}
		b.WriteString(")")
	}
	if n > 0 {
		span(0, n)
	}
}

// match writes " AND <the resource has an index row of ic's parameter that satisfies
// its condition>", or its negation: as a correlated EXISTS that checks one resource at
// a time or, for the clause that drives a MatchIn search, as "r.id IN (…)", the set of
// resources the database starts from.
func (b *builder) match(ic *indexCond, drives bool) {
	if drives {
		b.drive(ic.t.name+" s", "s")
		b.w(" AND s.param = ", b.arg(ic.param))
		b.selects = true
	} else {
		if ic.negate {
			b.WriteString(" AND NOT EXISTS (")
		} else {
			b.WriteString(" AND EXISTS (")
		}
		r := b.res()
		b.w("SELECT 1 FROM ", ic.t.name, " s WHERE s.resource_type = ", r, ".resource_type AND s.id = ", r, ".id AND s.param = ", b.arg(ic.param))
	}
	if ic.cond != nil {
		b.WriteString(" AND (")
		ic.cond()
		b.WriteString(")")
	}
	b.WriteString(")")
}

func (b *builder) token(v *resources.Value) {
	switch {
	case v.MatchSystem && v.MatchCode:
		b.w("s.system = ", b.arg(v.System), " AND s.code = ", b.arg(v.Code))
	case v.MatchSystem:
		b.w("s.system = ", b.arg(v.System))
	case v.MatchCode:
		b.w("s.code = ", b.arg(v.Code))
	default:
		// Neither part given: any value of the parameter matches.
		b.WriteString("1 = 1")
	}
}

func (b *builder) reference(v *resources.Value, typ string) {
	if v.RefType != "" {
		typ = v.RefType
	}
	if typ != "" {
		b.w("s.target_type = ", b.arg(typ), " AND ")
	}
	b.w("s.target_id = ", b.arg(v.RefID))
}

// number writes the condition of a number or quantity value on a row "s": a stored
// number is the range [value, value], compared as rangeNumber compares ranges — eq
// when it lies inside the range the searched number's precision implies (100 matches
// [99.5, 100.5)), gt when it is above exactly the value, ap within 10 %, and so on.
func (b *builder) number(v *resources.Value) {
	b.rangeNumber(v, "s.value", "s.value")
}

// dateRange writes the comparison of the searched range [L, H) with the stored range
// [low, high). point is set for a single instant t stored in one column (low): it
// covers [t, t+ε), so "high <= x" becomes "low < x" and "high > x" becomes "low >= x",
// which keeps an instant at exactly H out of eq and inside gt.
func (b *builder) dateRange(v *resources.Value, low, high string, point bool) {
	L, H := func() string { return b.arg(v.Low) }, func() string { return b.arg(v.High) }
	highLE := func(x func() string) {
		if point {
			b.w(low, " < ", x())
		} else {
			b.w(high, " <= ", x())
		}
	}
	highGT := func(x func() string) {
		if point {
			b.w(low, " >= ", x())
		} else {
			b.w(high, " > ", x())
		}
	}
	// bound adds "low <= x", implied by "high <= x" since no range ends before it starts:
	// it gives the index on low an upper end, and the planner a better estimate (eq on
	// a year of birth dates: 75 ms to count, 10 ms with it).
	bound := func(x func() string) {
		if !point {
			b.w(" AND ", low, " <= ", x())
		}
	}
	switch v.Prefix {
	case "", resources.PrefixEq:
		b.w(low, " >= ", L(), " AND ")
		highLE(H)
		bound(H)
	case resources.PrefixNe:
		b.w("NOT (", low, " >= ", L(), " AND ")
		highLE(H)
		b.WriteString(")")
	case resources.PrefixLt:
		b.w(low, " < ", L())
	case resources.PrefixLe:
		b.w(low, " < ", H())
	case resources.PrefixGt:
		highGT(H)
	case resources.PrefixGe:
		highGT(L)
	case resources.PrefixSa:
		b.w(low, " >= ", H())
	case resources.PrefixEb:
		highLE(L)
		bound(L)
	case resources.PrefixAp:
		b.w(low, " < ", H(), " AND ")
		highGT(L)
	default:
		b.WriteString("1 = 0")
	}
}

// idClause handles _id, which reads the resource's own id column.
func (b *builder) idClause(c *resources.Clause) error {
	switch c.Modifier {
	case "missing":
		// Every resource has an id.
		if c.Missing {
			b.WriteString(" AND 1 = 0")
		}
		return nil
	case "", "not":
	default:
		return unsupported(c)
	}
	if len(c.Values) == 0 {
		return nil
	}
	if c.Modifier == "not" {
		b.w(" AND ", b.res(), ".id NOT IN (")
	} else {
		b.w(" AND ", b.res(), ".id IN (")
		b.selects = b.d.MatchIn
	}
	for i := range c.Values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(b.arg(c.Values[i].Code))
	}
	b.WriteString(")")
	return nil
}

// lastUpdatedClause handles _lastUpdated, which reads the last_updated column: one
// instant per resource.
func (b *builder) lastUpdatedClause(c *resources.Clause) error {
	switch c.Modifier {
	case "missing":
		if c.Missing {
			b.WriteString(" AND 1 = 0")
		}
		return nil
	case "":
	default:
		return unsupported(c)
	}
	if len(c.Values) == 0 {
		return nil
	}
	b.WriteString(" AND ")
	b.or(len(c.Values), func(i int) { b.dateRange(&c.Values[i], b.res()+".last_updated", "", true) })
	return nil
}

// orderBy writes the ORDER BY clause: the sort keys, then the id so that pages never
// overlap or skip, or newest first without keys.
func (b *builder) orderBy(keys []resources.SortKey) error {
	// Ordered by a column of an index, SQLite prefers walking that index and checking
	// every resource of the type against the clauses until the page is full, which costs
	// as much as the type has resources when few match. A unary + makes the column an
	// expression no index holds, so SQLite starts from the clauses' matches and sorts
	// them: never more work than the count of the same matches.
	col := func(c string) string {
		if b.selects {
			return "+" + c
		}
		return c
	}
	// Ids repeat across the types of a system-level search: the type breaks their ties.
	last := col("r.id")
	if b.typ == "" {
		last += ", " + col("r.resource_type")
	}
	if len(keys) == 0 {
		b.w(" ORDER BY ", col("r.last_updated"), " DESC, ", last)
		return nil
	}
	b.WriteString(" ORDER BY ")
	for _, k := range keys {
		p := k.Param
		if p == nil {
			return resources.Internal(fmt.Errorf("%s: sort key without a parameter", b.d.Name))
		}
		dir := " ASC"
		if k.Desc {
			dir = " DESC"
		}
		switch p.Column {
		case "id":
			b.w(col("r.id"), dir, ", ")
			continue
		case "last_updated":
			b.w(col("r.last_updated"), dir, ", ")
			continue
		case "":
		default:
			return resources.Internal(fmt.Errorf("%s: parameter %s reads unknown column %q", b.d.Name, p.Name, p.Column))
		}
		t, ok := tableOf(p.Type)
		if !ok {
			return resources.Internal(fmt.Errorf("%s: parameter %s has unknown type %q", b.d.Name, p.Name, p.Type))
		}
		agg := t.sortAsc
		if k.Desc {
			agg = t.sortDesc
		}
		b.w("(SELECT ", agg, " FROM ", t.name, " s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = ",
			b.arg(p.Name), ")", dir, " NULLS LAST, ")
	}
	b.WriteString(last)
	return nil
}

// likeEscape escapes the LIKE wildcards of s, and the escape character itself.
func likeEscape(s string) string {
	if !strings.ContainsAny(s, `\%_`) {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		if r == '\\' || r == '%' || r == '_' {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// isTypeName reports whether a reference modifier names a resource type (they start
// with an upper-case letter; the other modifiers are lower case).
func isTypeName(m string) bool { return m != "" && m[0] >= 'A' && m[0] <= 'Z' }
