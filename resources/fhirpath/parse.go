package fhirpath

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expr is an expression parsed by Parse: a FHIRPath abstract syntax tree. It is
// immutable, so one Expr may be evaluated by any number of goroutines at once.
type Expr struct {
	src  string
	root node
}

// String returns the source text the expression was parsed from.
func (e *Expr) String() string { return e.src }

// Parse parses src as a FHIRPath expression, in the part of the language that the
// search parameters of FHIR R4 use (see the package tests, which parse every one of
// them): paths, choice elements, indexers, literals, the operators of FHIRPath
// (evaluation supports the logical, equality, comparison, union, is/as and string
// concatenation ones) and the functions listed at Evaluate. A function this package
// does not know is a parse error, so an expression that parses can be evaluated.
func Parse(src string) (*Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	p := parser{toks: toks}
	n, err := p.expression(0)
	if err == nil && p.peek().kind != tokEOF {
		err = fmt.Errorf("unexpected %s at offset %d", p.peek(), p.peek().pos)
	}
	if err != nil {
		return nil, fmt.Errorf("fhirpath %q: %w", src, err)
	}
	return &Expr{src: src, root: n}, nil
}

// MustParse is Parse for expressions known at compile time; it panics on an error.
func MustParse(src string) *Expr {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

type tokKind int

const (
	tokEOF    tokKind = iota
	tokIdent          // name, or `delimited name`
	tokString         // 'text', unescaped
	tokNumber         // 12, 1.5
	tokDate           // @2020-01-01, text without the @
	tokVar            // %resource, name without the %
	tokOp             // punctuation and symbolic operators
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokString:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

// lex splits src into tokens.
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("unterminated comment at offset %d", i)
			}
			i += end + 4
		case c == '\'' || c == '`':
			s, n, err := unquote(src[i:], c)
			if err != nil {
				return nil, fmt.Errorf("%w at offset %d", err, i)
			}
			kind := tokString
			if c == '`' {
				kind = tokIdent
			}
			toks = append(toks, token{kind, s, i})
			i += n
		case isDigit(c):
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			if j+1 < len(src) && src[j] == '.' && isDigit(src[j+1]) {
				j++
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			toks = append(toks, token{tokNumber, src[i:j], i})
			i = j
		case c == '@':
			j := i + 1
			for j < len(src) && (isDigit(src[j]) || strings.IndexByte("-:.TZ+", src[j]) >= 0) {
				j++
			}
			toks = append(toks, token{tokDate, src[i+1 : j], i})
			i = j
		case c == '%' || c == '$' || isIdentStart(c):
			j := i + 1
			if c == '%' && j < len(src) && (src[j] == '\'' || src[j] == '`') {
				s, n, err := unquote(src[j:], src[j])
				if err != nil {
					return nil, fmt.Errorf("%w at offset %d", err, j)
				}
				toks = append(toks, token{tokVar, s, i})
				i = j + n
				continue
			}
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j])) {
				j++
			}
			switch {
			case c == '%':
				toks = append(toks, token{tokVar, src[i+1 : j], i})
			case c == '$':
				// $this, $index, $total: kept as identifiers with their $.
				toks = append(toks, token{tokIdent, src[i:j], i})
			default:
				toks = append(toks, token{tokIdent, src[i:j], i})
			}
			i = j
		default:
			op := ""
			for _, o := range []string{"!=", "!~", "<=", ">=", ".", "(", ")", "[", "]", "{", "}", ",", "|", "=", "~", "<", ">", "+", "-", "*", "/", "&"} {
				if strings.HasPrefix(src[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return nil, fmt.Errorf("unexpected character %q at offset %d", r, i)
			}
			toks = append(toks, token{tokOp, op, i})
			i += len(op)
		}
	}
	return append(toks, token{tokEOF, "", len(src)}), nil
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// unquote reads a literal delimited by q at the start of s, resolving FHIRPath's
// escapes (\' \" \` \\ \/ \f \n \r \t \uXXXX), and returns its text and length in s.
func unquote(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case q:
			return b.String(), i + 1, nil
		case '\\':
			i++
			if i >= len(s) {
				return "", 0, fmt.Errorf("unterminated literal")
			}
			switch s[i] {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(s[i])
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 >= len(s) {
					return "", 0, fmt.Errorf("short \\u escape")
				}
				r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
				if err != nil {
					return "", 0, fmt.Errorf("bad \\u escape %q", s[i+1:i+5])
				}
				b.WriteRune(rune(r))
				i += 4
			default:
				return "", 0, fmt.Errorf("unknown escape \\%c", s[i])
			}
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated literal")
}

// node is a node of the syntax tree.
type node interface{}

type (
	// literalNode is a literal: a one-item collection, or {} (empty).
	literalNode struct{ items []Item }
	// memberNode navigates to the child elements called name of target's items (of
	// the focus when target is nil).
	memberNode struct {
		target node
		name   string
	}
	// varNode is $this or an environment variable (%resource, %context, %ucum…).
	varNode struct{ name string }
	// callNode is a function call on target's items (on the focus when target is nil).
	// typ is the type argument of ofType, as and is.
	callNode struct {
		target node
		name   string
		args   []node
		typ    string
	}
	indexNode  struct{ target, index node }
	binaryNode struct {
		op   string
		l, r node
	}
	unaryNode struct {
		op string
		x  node
	}
	typeTestNode struct {
		op  string // "is" or "as"
		x   node
		typ string
	}
)

// functions maps each function Parse accepts to its number of arguments (min, max).
var functions = map[string][2]int{
	"where": {1, 1}, "select": {1, 1}, "exists": {0, 1}, "all": {1, 1}, "empty": {0, 0},
	"first": {0, 0}, "last": {0, 0}, "tail": {0, 0}, "count": {0, 0}, "not": {0, 0},
	"ofType": {1, 1}, "as": {1, 1}, "is": {1, 1}, "resolve": {0, 0}, "extension": {1, 1},
	"hasValue": {0, 0}, "distinct": {0, 0}, "single": {0, 0}, "union": {1, 1},
	"iif": {2, 3}, "toString": {0, 0}, "startsWith": {1, 1}, "contains": {1, 1},
	"children": {0, 0}, "memberOf": {1, 1},
}

// binary operator precedence, loosest first, as in the FHIRPath grammar.
var precedence = [][]string{
	{"implies"},
	{"or", "xor"},
	{"and"},
	{"in", "contains"},
	{"=", "~", "!=", "!~"},
	{"<", ">", "<=", ">="},
	{"|"},
	{"is", "as"},
	{"+", "-", "&"},
	{"*", "/", "div", "mod"},
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// isOp reports whether the next token is the operator or keyword op.
func (p *parser) isOp(op string) bool {
	t := p.peek()
	return (t.kind == tokOp || t.kind == tokIdent && op[0] >= 'a' && op[0] <= 'z') && t.text == op
}

func (p *parser) expect(op string) error {
	if !p.isOp(op) {
		return fmt.Errorf("expected '%s', found %s at offset %d", op, p.peek(), p.peek().pos)
	}
	p.next()
	return nil
}

// expression parses operators of precedence level and tighter.
func (p *parser) expression(level int) (node, error) {
	if level == len(precedence) {
		return p.unary()
	}
	l, err := p.expression(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op := ""
		for _, o := range precedence[level] {
			if p.isOp(o) {
				op = o
				break
			}
		}
		if op == "" {
			return l, nil
		}
		p.next()
		if op == "is" || op == "as" {
			typ, err := p.typeSpecifier()
			if err != nil {
				return nil, err
			}
			l = &typeTestNode{op: op, x: l, typ: typ}
			continue
		}
		r, err := p.expression(level + 1)
		if err != nil {
			return nil, err
		}
		l = &binaryNode{op: op, l: l, r: r}
	}
}

// typeSpecifier parses a type name, optionally qualified (FHIR.Quantity, System.String).
func (p *parser) typeSpecifier() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", fmt.Errorf("expected a type name, found %s at offset %d", t, t.pos)
	}
	name := t.text
	if p.isOp(".") && p.toks[p.i+1].kind == tokIdent {
		p.next()
		name += "." + p.next().text
	}
	return name, nil
}

func (p *parser) unary() (node, error) {
	if p.isOp("-") || p.isOp("+") {
		op := p.next().text
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &unaryNode{op: op, x: x}, nil
	}
	return p.postfix()
}

// postfix parses a term followed by any number of .member, .function(…) and [index].
func (p *parser) postfix() (node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != tokIdent {
				return nil, fmt.Errorf("expected a name after '.', found %s at offset %d", t, t.pos)
			}
			n, err = p.invocation(n, t)
			if err != nil {
				return nil, err
			}
		case p.isOp("["):
			p.next()
			idx, err := p.expression(0)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			n = &indexNode{target: n, index: idx}
		default:
			return n, nil
		}
	}
}

// invocation parses what follows the name t: a call when "(" comes next, else a member.
func (p *parser) invocation(target node, t token) (node, error) {
	if !p.isOp("(") {
		if t.text == "$this" {
			return &varNode{name: "this"}, nil
		}
		return &memberNode{target: target, name: t.text}, nil
	}
	p.next()
	arity, ok := functions[t.text]
	if !ok {
		return nil, fmt.Errorf("unknown function %s() at offset %d", t.text, t.pos)
	}
	c := &callNode{target: target, name: t.text}
	switch t.text {
	case "ofType", "as", "is":
		typ, err := p.typeSpecifier()
		if err != nil {
			return nil, err
		}
		c.typ = typ
	default:
		for !p.isOp(")") {
			if len(c.args) > 0 {
				if err := p.expect(","); err != nil {
					return nil, err
				}
			}
			a, err := p.expression(0)
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, a)
		}
		if len(c.args) < arity[0] || len(c.args) > arity[1] {
			return nil, fmt.Errorf("%s() takes %d to %d arguments, not %d (offset %d)", t.text, arity[0], arity[1], len(c.args), t.pos)
		}
	}
	return c, p.expect(")")
}

func (p *parser) term() (node, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return &literalNode{items: []Item{{Value: t.text, Type: "string"}}}, nil
	case tokNumber:
		typ := "integer"
		if strings.Contains(t.text, ".") {
			typ = "decimal"
		}
		return &literalNode{items: []Item{{Value: jsonNumber(t.text), Type: typ}}}, nil
	case tokDate:
		typ := "dateTime"
		if !strings.Contains(t.text, "T") {
			typ = "date"
		}
		if strings.HasPrefix(t.text, "T") {
			typ, t.text = "time", t.text[1:]
		}
		return &literalNode{items: []Item{{Value: t.text, Type: typ}}}, nil
	case tokVar:
		return &varNode{name: t.text}, nil
	case tokIdent:
		switch t.text {
		case "true", "false":
			return &literalNode{items: []Item{{Value: t.text == "true", Type: "boolean"}}}, nil
		}
		return p.invocation(nil, t)
	case tokOp:
		switch t.text {
		case "(":
			n, err := p.expression(0)
			if err != nil {
				return nil, err
			}
			return n, p.expect(")")
		case "{":
			return &literalNode{}, p.expect("}")
		}
	}
	return nil, fmt.Errorf("unexpected %s at offset %d", t, t.pos)
}
