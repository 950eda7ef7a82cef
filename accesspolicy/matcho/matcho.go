// Package matcho is the matcho engine of AccessPolicy: a policy's "matcho" pattern is
// compiled once into a tree of small matcher nodes and then run against the request
// object on every HTTP request.
//
// It follows Aidbox's matcho, with the traps that grant access by accident closed:
//   - a ".path" reference that resolves to nothing never matches, even when the value
//     it is compared with is absent too (in Aidbox nil == nil grants access);
//   - strings and numbers never coerce into each other ("2" is not 2);
//   - a pattern that cannot be understood (unknown $operator, bad regex, odd Go type)
//     is a compile error, never a pattern that silently matches or never matches;
//   - patterns nest at most 64 levels, so a hostile policy cannot blow the stack.
package matcho

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of objects and arrays in a pattern. Real policies
// nest a handful of levels; the bound exists only to refuse hostile ones at compile time.
const maxDepth = 64

// maxShown bounds how much of a request value or pattern is quoted in a why or an
// error: request values are attacker-controlled and end up in logs and responses.
const maxShown = 64

// Pattern is a compiled matcho pattern; safe for concurrent use.
//
// The zero Pattern (and a nil *Pattern) matches nothing, so a policy that was never
// compiled fails closed.
type Pattern struct {
	root node
}

// Compile validates and compiles pattern (a decoded JSON value: map[string]any, []any,
// string, float64, bool, nil). A malformed pattern is an error whose message names the path of
// the bad element, e.g. `matcho.params.resource/type: invalid regular expression "#(": …` or
// `matcho.uri.$enum: must be a non-empty list`. The path prefix is "matcho".
//
// The compiled Pattern keeps no reference to pattern, which the caller may reuse.
func Compile(pattern any) (*Pattern, error) {
	if _, ok := pattern.(map[string]any); !ok {
		return nil, fmt.Errorf("matcho: the top-level pattern must be an object, got %s", kind(pattern))
	}
	root, err := compileNode(pattern, "matcho", 1)
	if err != nil {
		return nil, err
	}
	return &Pattern{root: root}, nil
}

// Match reports whether the request object req matches. When it does not, why names the first
// failing path and the reason, e.g. `uri: "/Observation" does not match #^/Patient` or
// `user.data.patient_id: absent`. why is "" on a match.
//
// Keys of an object pattern are checked in sorted order, so "first" is deterministic.
// Only float64 is a number in req: an int put there by hand equals no number pattern.
func (m *Pattern) Match(req map[string]any) (ok bool, why string) {
	if m == nil || m.root == nil {
		return false, "matcho: the policy was not compiled"
	}
	if m.root.match(req, req) {
		return true, ""
	}
	// The failure is explained by walking the tree a second time, so the success path
	// never builds paths or strings.
	why = m.root.explain(req, req, "")
	if why == "" {
		why = "matcho: no match" // unreachable while match and explain agree; never return ok=false with why=""
	}
	return false, why
}

// Matches reports whether req matches, without explaining a failure: the evaluator's
// path when nobody asked for a trace.
func (m *Pattern) Matches(req map[string]any) bool {
	return m != nil && m.root != nil && m.root.match(req, req)
}

// node is one compiled element of a pattern. match is the hot path and must not
// allocate; explain is meant for after match returned false for the same v, and returns
// "" exactly when match would return true (the fuzz test holds it to that).
type node interface {
	match(v any, root map[string]any) bool
	explain(v any, root map[string]any, path string) string
}

func compileNode(p any, path string, depth int) (node, error) {
	switch p := p.(type) {
	case nil:
		return absent{}, nil
	case bool:
		return literal[bool]{p, strconv.FormatBool}, nil
	case float64:
		if math.IsNaN(p) || math.IsInf(p, 0) {
			return nil, fmt.Errorf("%s: %v is not a JSON number", path, p)
		}
		return literal[float64]{p, func(f float64) string { return show(f) }}, nil
	case string:
		return compileString(p, path)
	case []any:
		if depth > maxDepth {
			return nil, fmt.Errorf("%s: pattern nested deeper than %d levels", path, maxDepth)
		}
		n := &array{elems: make([]node, len(p))}
		for i, e := range p {
			sub, err := compileNode(e, path+"."+strconv.Itoa(i), depth+1)
			if err != nil {
				return nil, err
			}
			n.elems[i] = sub
		}
		return n, nil
	case map[string]any:
		if depth > maxDepth {
			return nil, fmt.Errorf("%s: pattern nested deeper than %d levels", path, maxDepth)
		}
		return compileMap(p, path, depth)
	}
	return nil, fmt.Errorf("%s: %s", path, kind(p))
}

func compileString(s, path string) (node, error) {
	switch s {
	case "present?":
		return present{}, nil
	case "nil?":
		return absent{}, nil
	case "not-blank?":
		return notBlank{}, nil
	}
	switch {
	case strings.HasPrefix(s, "#"):
		re, err := regexp.Compile(s[1:])
		if err != nil {
			return nil, fmt.Errorf("%s: invalid regular expression %q: %w", path, s, err)
		}
		how, lit := plan(s[1:])
		return &regex{src: s, re: re, how: how, lit: lit}, nil
	case strings.HasPrefix(s, "."):
		if s == "." {
			return nil, fmt.Errorf("%s: empty reference path %q", path, s)
		}
		parts := strings.Split(s[1:], ".")
		segs := make([]seg, len(parts))
		for i, part := range parts {
			if part == "" {
				return nil, fmt.Errorf("%s: reference path %q has an empty segment (to match a literal string use $enum: [%q])", path, s, s)
			}
			segs[i] = seg{key: part, index: arrayIndex(part)}
		}
		return &ref{src: s, segs: segs}, nil
	}
	return literal[string]{s, quote}, nil
}

// arrayIndex returns the array index a path segment names, or -1 when it is not a
// decimal number (such a segment can still name an object key).
func arrayIndex(seg string) int {
	for i := 0; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			return -1
		}
	}
	n, err := strconv.Atoi(seg)
	if err != nil {
		return -1 // too large to index anything
	}
	return n
}

func compileMap(p map[string]any, path string, depth int) (node, error) {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := &object{entries: make([]entry, 0, len(keys))}
	fields := 0
	for _, k := range keys {
		sub := path + "." + k
		var child node
		var err error
		isOp := strings.HasPrefix(k, "$")
		if isOp {
			child, err = compileOp(k, p[k], sub, depth)
		} else {
			fields++
			child, err = compileNode(p[k], sub, depth+1)
		}
		if err != nil {
			return nil, err
		}
		n.entries = append(n.entries, entry{key: k, op: isOp, node: child})
	}
	// An operator-only object ({$enum: [...]}) describes the value itself, which may be a
	// string or a list; an object with fields, or the empty object, asks for an object.
	n.needObject = fields > 0 || len(keys) == 0
	return n, nil
}

func compileOp(op string, arg any, path string, depth int) (node, error) {
	switch op {
	case "$enum":
		list, ok := arg.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("%s: must be a non-empty list", path)
		}
		n := &enum{vals: make([]any, len(list)), shown: showPattern(list)}
		for i, v := range list {
			switch v := v.(type) {
			case string, bool:
				n.vals[i] = v
			case float64:
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("%s.%d: %v is not a JSON number", path, i, v)
				}
				n.vals[i] = v
			default:
				// null is refused too: "absent is allowed" must be spelled nil? so that it
				// is never let in by accident.
				return nil, fmt.Errorf("%s.%d: must be a string, number or boolean, got %s", path, i, kind(v))
			}
		}
		return n, nil
	case "$one-of":
		list, ok := arg.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("%s: must be a non-empty list", path)
		}
		if depth+1 > maxDepth {
			return nil, fmt.Errorf("%s: pattern nested deeper than %d levels", path, maxDepth)
		}
		n := &oneOf{alts: make([]node, len(list)), shown: showPattern(list)}
		for i, alt := range list {
			sub, err := compileNode(alt, path+"."+strconv.Itoa(i), depth+2)
			if err != nil {
				return nil, err
			}
			n.alts[i] = sub
		}
		return n, nil
	case "$contains", "$every", "$not":
		sub, err := compileNode(arg, path, depth+1)
		if err != nil {
			return nil, err
		}
		shown := showPattern(arg)
		switch op {
		case "$contains":
			return &contains{elem: sub, shown: shown}, nil
		case "$every":
			return &every{elem: sub}, nil
		}
		return &not{sub: sub, shown: shown}, nil
	case "$present-all":
		list, ok := arg.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("%s: must be a non-empty list of keys", path)
		}
		n := &presentAll{keys: make([]string, len(list))}
		for i, k := range list {
			s, ok := k.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("%s.%d: must be a non-empty string (a key), got %s", path, i, kind(k))
			}
			n.keys[i] = s
		}
		return n, nil
	}
	return nil, fmt.Errorf("%s: unknown operator %q (known: $enum, $one-of, $contains, $every, $not, $present-all)", path, op)
}

// kind names the JSON kind of a pattern value for error messages, and says plainly
// when a Go caller handed over something that did not come from a JSON decoder.
func kind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return fmt.Sprintf("the string %s", quote(v))
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("unsupported Go type %T (a pattern must be decoded JSON: map[string]any, []any, string, float64, bool or nil)", v)
}

// showPattern renders a (validated) pattern as short JSON for why messages; it is
// computed at compile time so failures cost no marshalling.
func showPattern(p any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return fmt.Sprintf("%T", p) // only for values compile rejects anyway
	}
	return truncate(strings.TrimSuffix(buf.String(), "\n"))
}

func truncate(s string) string {
	if head, cut := clip(s); cut {
		return head + "…"
	}
	return s
}

// clip returns at most maxShown bytes of s, not splitting a rune.
func clip(s string) (head string, cut bool) {
	if len(s) <= maxShown {
		return s, false
	}
	n := maxShown
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// quote quotes a request string for a why: strconv.Quote escapes control
// characters, so a hostile value cannot forge log lines.
func quote(s string) string {
	if head, cut := clip(s); cut {
		return strconv.Quote(head) + "…"
	}
	return strconv.Quote(s)
}

// show describes a request value in a why.
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "absent"
	case string:
		return quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any:
		return count(len(v), "an object with", "key")
	case []any:
		return count(len(v), "a list of", "element")
	}
	return fmt.Sprintf("a value of Go type %T", v)
}

func count(n int, prefix, noun string) string {
	if n == 1 {
		return prefix + " 1 " + noun
	}
	return prefix + " " + strconv.Itoa(n) + " " + noun + "s"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// at names a path in a why; the request object itself has the empty path.
func at(path string) string {
	if path == "" {
		return "(request)"
	}
	return path
}

// reason is "path: value<rest>", the shape of most failure reasons; concatenation
// keeps a denial to a couple of allocations.
func reason(path string, v any, rest string) string {
	return at(path) + ": " + show(v) + rest
}

// equal is equality of decoded JSON values: numbers numerically, no coercion
// between kinds, objects and lists deeply. Unknown Go types equal nothing, failing closed.
func equal(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		s, ok := b.(string)
		return ok && a == s
	case float64:
		f, ok := b.(float64)
		return ok && a == f
	case bool:
		t, ok := b.(bool)
		return ok && a == t
	case map[string]any:
		m, ok := b.(map[string]any)
		if !ok || len(a) != len(m) {
			return false
		}
		for k, av := range a {
			bv, ok := m[k]
			if !ok || !equal(av, bv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := b.([]any)
		if !ok || len(a) != len(l) {
			return false
		}
		for i := range a {
			if !equal(a[i], l[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// object is an object pattern: fields match the value's fields, operators ($-keys)
// match the value itself.
type object struct {
	needObject bool
	entries    []entry // sorted by key
}

type entry struct {
	key  string
	op   bool
	node node
}

func (n *object) match(v any, root map[string]any) bool {
	obj, isObj := v.(map[string]any)
	if n.needObject && !isObj {
		return false
	}
	for i := range n.entries {
		e := &n.entries[i]
		if e.op {
			if !e.node.match(v, root) {
				return false
			}
		} else if !e.node.match(obj[e.key], root) {
			return false
		}
	}
	return true
}

func (n *object) explain(v any, root map[string]any, path string) string {
	obj, isObj := v.(map[string]any)
	if n.needObject && !isObj {
		return reason(path, v, ", want an object")
	}
	for i := range n.entries {
		e := &n.entries[i]
		if e.op {
			if !e.node.match(v, root) {
				return e.node.explain(v, root, path)
			}
		} else if fv := obj[e.key]; !e.node.match(fv, root) {
			return e.node.explain(fv, root, join(path, e.key))
		}
	}
	return ""
}

// array is a list pattern: a prefix match, element by element.
type array struct{ elems []node }

func (n *array) match(v any, root map[string]any) bool {
	list, ok := v.([]any)
	if !ok || len(list) < len(n.elems) {
		return false
	}
	for i, e := range n.elems {
		if !e.match(list[i], root) {
			return false
		}
	}
	return true
}

func (n *array) explain(v any, root map[string]any, path string) string {
	list, ok := v.([]any)
	if !ok || len(list) < len(n.elems) {
		return reason(path, v, ", want a list of at least "+strconv.Itoa(len(n.elems)))
	}
	for i, e := range n.elems {
		if !e.match(list[i], root) {
			return e.explain(list[i], root, join(path, strconv.Itoa(i)))
		}
	}
	return ""
}

// regex is a "#regex" pattern; find semantics, the author anchors.
type regex struct {
	src string // with the leading #
	re  *regexp.Regexp
	how strategy
	lit string
}

// strategy says how a regexp is run. Most policy regexps are a literal, often anchored
// ("#^/fhir/Patient"); a string comparison answers those several times faster than the
// regexp machine, and Match runs on every HTTP request.
type strategy uint8

const (
	runRegexp   strategy = iota // run re, but only if s starts with lit
	hasPrefix                   // ^lit
	equals                      // ^lit$
	containsLit                 // lit
)

// plan finds the string comparison equivalent to the regexp src (already known to
// compile), if any. A literal with U+FFFD is left to the regexp machine, which also
// reads invalid UTF-8 in the input as U+FFFD where a byte comparison would not.
func plan(src string) (strategy, string) {
	re, err := syntax.Parse(src, syntax.Perl) // the flags regexp.Compile uses
	if err != nil {
		return runRegexp, ""
	}
	re = re.Simplify()
	literal := func(r *syntax.Regexp) (string, bool) {
		if r.Op != syntax.OpLiteral || r.Flags&syntax.FoldCase != 0 {
			return "", false
		}
		s := string(r.Rune)
		return s, !strings.ContainsRune(s, utf8.RuneError)
	}
	if lit, ok := literal(re); ok {
		return containsLit, lit
	}
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return runRegexp, ""
	}
	lit, ok := literal(re.Sub[1])
	switch {
	case !ok:
		return runRegexp, ""
	case len(re.Sub) == 2:
		return hasPrefix, lit
	case len(re.Sub) == 3 && re.Sub[2].Op == syntax.OpEndText:
		return equals, lit
	}
	// ^lit followed by more: a string without the prefix cannot match, which settles
	// most denials without the regexp machine.
	return runRegexp, lit
}

func (n *regex) match(v any, _ map[string]any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	switch n.how {
	case hasPrefix:
		return strings.HasPrefix(s, n.lit)
	case equals:
		return s == n.lit
	case containsLit:
		return strings.Contains(s, n.lit)
	}
	return strings.HasPrefix(s, n.lit) && n.re.MatchString(s)
}

func (n *regex) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	if _, ok := v.(string); !ok {
		return reason(path, v, ", want a string matching "+n.src)
	}
	return reason(path, v, " does not match "+n.src)
}

// ref is a ".path" pattern: the value must equal what the path finds in the
// request object.
type ref struct {
	src  string // with the leading .
	segs []seg
}

type seg struct {
	key   string
	index int // -1 unless key is a decimal number
}

func (n *ref) resolve(root map[string]any) any {
	var cur any = root
	for _, s := range n.segs {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[s.key]
		case []any:
			if s.index < 0 || s.index >= len(c) {
				return nil
			}
			cur = c[s.index]
		default:
			return nil
		}
	}
	return cur
}

func (n *ref) match(v any, root map[string]any) bool {
	want := n.resolve(root)
	// An unresolved reference never matches: otherwise an absent value would "equal" an
	// absent reference and grant access to users lacking the attribute.
	return want != nil && equal(v, want)
}

func (n *ref) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	want := n.resolve(root)
	if want == nil {
		return at(path) + ": " + n.src + " resolves to nothing"
	}
	return reason(path, v, ", want "+n.src+" = "+show(want))
}

type present struct{}

func (present) match(v any, _ map[string]any) bool { return v != nil }

func (present) explain(v any, _ map[string]any, path string) string {
	if v != nil {
		return ""
	}
	return at(path) + ": absent"
}

// absent is both "nil?" and a null pattern.
type absent struct{}

func (absent) match(v any, _ map[string]any) bool { return v == nil }

func (absent) explain(v any, _ map[string]any, path string) string {
	if v == nil {
		return ""
	}
	return reason(path, v, ", want absent")
}

type notBlank struct{}

func (notBlank) match(v any, _ map[string]any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(v) != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

func (n notBlank) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	if v == nil {
		return at(path) + ": absent"
	}
	return reason(path, v, " is blank")
}

// literal is a scalar of the pattern that a value must equal, of the same JSON type:
// a string, a number (float64, as policies compare numbers) or a boolean.
type literal[T string | float64 | bool] struct {
	want T
	show func(T) string // how a denial quotes it
}

func (n literal[T]) match(v any, _ map[string]any) bool {
	x, ok := v.(T)
	return ok && x == n.want
}

func (n literal[T]) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	return reason(path, v, ", want "+n.show(n.want))
}

// enum is $enum: literal scalars, never interpreted as patterns, so "#x" or
// "present?" can be matched as plain strings.
type enum struct {
	vals  []any // string, float64 or bool
	shown string
}

func (n *enum) match(v any, _ map[string]any) bool {
	for _, want := range n.vals {
		if equal(want, v) {
			return true
		}
	}
	return false
}

func (n *enum) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	return reason(path, v, ", want one of "+n.shown)
}

type oneOf struct {
	alts  []node
	shown string
}

func (n *oneOf) match(v any, root map[string]any) bool {
	for _, a := range n.alts {
		if a.match(v, root) {
			return true
		}
	}
	return false
}

func (n *oneOf) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	return reason(path, v, " matches none of $one-of "+n.shown)
}

type contains struct {
	elem  node
	shown string
}

func (n *contains) match(v any, root map[string]any) bool {
	list, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range list {
		if n.elem.match(e, root) {
			return true
		}
	}
	return false
}

func (n *contains) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	if _, ok := v.([]any); !ok {
		return reason(path, v, ", want a list ($contains)")
	}
	return at(path) + ": no element of " + show(v) + " matches " + n.shown
}

type every struct{ elem node }

func (n *every) match(v any, root map[string]any) bool {
	list, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range list {
		if !n.elem.match(e, root) {
			return false
		}
	}
	return true
}

func (n *every) explain(v any, root map[string]any, path string) string {
	list, ok := v.([]any)
	if !ok {
		return reason(path, v, ", want a list ($every)")
	}
	for i, e := range list {
		if !n.elem.match(e, root) {
			return n.elem.explain(e, root, join(path, strconv.Itoa(i)))
		}
	}
	return ""
}

type not struct {
	sub   node
	shown string
}

func (n *not) match(v any, root map[string]any) bool { return !n.sub.match(v, root) }

func (n *not) explain(v any, root map[string]any, path string) string {
	if n.match(v, root) {
		return ""
	}
	return reason(path, v, " matches $not "+n.shown)
}

type presentAll struct{ keys []string }

func (n *presentAll) match(v any, _ map[string]any) bool {
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, k := range n.keys {
		if obj[k] == nil {
			return false
		}
	}
	return true
}

func (n *presentAll) explain(v any, _ map[string]any, path string) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return reason(path, v, ", want an object ($present-all)")
	}
	for _, k := range n.keys {
		if obj[k] == nil {
			return join(path, k) + ": absent ($present-all)"
		}
	}
	return ""
}
