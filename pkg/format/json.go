package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeJSON parses a request body that must be exactly one JSON object. Numbers stay
// json.Number, so 1.50 and large integers keep their exact text. Duplicate keys, at any
// depth, are an error: FHIR forbids them, and keeping one of the two values silently
// would lose data. Every mistake is an *Error, which the server answers with a 400
// OperationOutcome (conformance F2).
//
// It is a scanner over the byte slice rather than encoding/json's Token API, which
// allocates for every token and cost a fifth of the server's CPU per create. The body
// is copied into one string once and every string and number without escapes is a
// slice of it, so a decoded document keeps its body's text alive as long as any of its
// strings is: bodies are decoded for one request and dropped with it.
func DecodeJSON(data []byte) (map[string]any, error) {
	v, err := decodeJSON(data, false)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// DecodeJSONValue is DecodeJSON for a body that may also be one JSON array, as a JSON
// Patch (RFC 6902) is: the result is a map[string]any or a []any, read as strictly.
func DecodeJSONValue(data []byte) (any, error) { return decodeJSON(data, true) }

// decodeJSON reads exactly one JSON object, or one object or array when arrays is set.
func decodeJSON(data []byte, arrays bool) (any, error) {
	if !utf8.Valid(data) {
		return nil, &Error{Msg: "the document is not valid UTF-8"}
	}
	d := &jsonDecoder{data: data, text: string(data), left: maxValues(len(data))}
	d.skipSpace()
	if d.pos == len(d.data) {
		return nil, &Error{Msg: "the document is empty"}
	}
	var v any
	var err error
	what := "object"
	switch c := d.data[d.pos]; {
	case c == '{':
		d.pos++
		v, err = d.object(1)
	case c == '[' && arrays:
		d.pos++
		what = "array"
		v, err = d.array(1)
	default:
		kind, err := d.skipValue()
		if err != nil {
			return nil, err
		}
		if arrays {
			return nil, d.at("the document must be a JSON object or array, not " + kind)
		}
		return nil, d.at("the document must be a JSON object, not " + kind)
	}
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos < len(d.data) {
		kind, err := d.skipValue()
		if err != nil {
			return nil, err
		}
		return nil, d.at("unexpected " + kind + " after the end of the " + what)
	}
	return v, nil
}

// jsonDecoder reads one document. Errors say what encoding/json's would have said, at
// the same place: for a value it refuses (a duplicate key, a number out of range), just
// after the token concerned; for a syntax error, at the offending character.
type jsonDecoder struct {
	data []byte
	text string // data as a string: unescaped strings and numbers are slices of it
	pos  int    // the next byte to read
	left int    // values still allowed (maxValues)
	// path leads to the value being read; it is turned into text only for an error,
	// so that a large array does not cost a path string per element.
	path []pathStep
	// stack holds the elements of the arrays being read, so that each array is
	// allocated once at its final length.
	stack []any
	buf   []byte // scratch for strings with escapes
}

// pathStep is an object key, or an array index when key is "" and index ≥ 0.
type pathStep struct {
	key   string
	index int
}

// errNUL refuses U+0000 in a string or key: JSON can escape it, but PostgreSQL cannot
// store it in JSONB or text, and FHIR strings exclude control characters anyway.
const errNUL = `a string contains the character U+0000 ("\u0000"), which no value may hold`

// errEnd is the error for a document that stops inside a value.
func errEnd() *Error { return &Error{Msg: "invalid JSON: the document ends too early"} }

func (d *jsonDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// value reads the value starting at d.pos (after any space) at the given depth.
func (d *jsonDecoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, errEnd()
	}
	switch c := d.data[d.pos]; c {
	case '{', '[':
		d.pos++
		if d.left--; d.left < 0 {
			return nil, d.at(tooManyValues)
		}
		if depth >= maxDepth {
			return nil, d.at(fmt.Sprintf("the document nests deeper than %d levels", maxDepth))
		}
		if c == '{' {
			return d.object(depth + 1)
		}
		return d.array(depth + 1)
	case '"':
		s, nul, err := d.str()
		if err != nil {
			return nil, err
		}
		if d.left--; d.left < 0 {
			return nil, d.at(tooManyValues)
		}
		if nul {
			return nil, d.at(errNUL)
		}
		return s, nil
	case 't', 'f', 'n':
		v, err := d.literal()
		if err != nil {
			return nil, err
		}
		if d.left--; d.left < 0 {
			return nil, d.at(tooManyValues)
		}
		return v, nil
	default:
		if c != '-' && (c < '0' || c > '9') {
			return nil, d.syntax(d.pos, "looking for beginning of value")
		}
		n, exp, err := d.number()
		if err != nil {
			return nil, err
		}
		if d.left--; d.left < 0 {
			return nil, d.at(tooManyValues)
		}
		// Without an exponent, a number of at most MaxNumberLength characters is
		// always a finite float64 that is not rounded to zero: no need to parse it.
		if exp || len(n) > MaxNumberLength {
			if msg := checkNumber(n); msg != "" {
				return nil, d.at(msg)
			}
		}
		return n, nil
	}
}

// object reads an object's members; d.pos is just after its opening brace.
func (d *jsonDecoder) object(depth int) (map[string]any, error) {
	m := map[string]any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, nil
	}
	for {
		if d.pos >= len(d.data) {
			return nil, errEnd()
		}
		if d.data[d.pos] != '"' {
			return nil, d.syntax(d.pos, "looking for beginning of object key string")
		}
		key, nul, err := d.str()
		if err != nil {
			return nil, err
		}
		if nul {
			return nil, d.at(errNUL)
		}
		if _, dup := m[key]; dup {
			return nil, d.at(fmt.Sprintf("duplicate key %q", key))
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, errEnd()
		}
		if d.data[d.pos] != ':' {
			return nil, d.syntax(d.pos, "after object key")
		}
		d.pos++
		d.skipSpace()
		d.path = append(d.path, pathStep{key: key, index: -1})
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.path = d.path[:len(d.path)-1]
		m[key] = v
		if more, err := d.next('}', "after object key:value pair"); !more {
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
}

// next reads what follows a member or an element: a comma (more follows) or the
// closing end; anything else is a syntax error in context.
func (d *jsonDecoder) next(end byte, context string) (more bool, err error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return false, errEnd()
	}
	switch d.data[d.pos] {
	case ',':
		d.pos++
		d.skipSpace()
		return true, nil
	case end:
		d.pos++
		return false, nil
	}
	return false, d.syntax(d.pos, context)
}

// array reads an array's elements; d.pos is just after its opening bracket.
func (d *jsonDecoder) array(depth int) ([]any, error) {
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return []any{}, nil
	}
	base := len(d.stack)
	for {
		d.path = append(d.path, pathStep{index: len(d.stack) - base})
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.path = d.path[:len(d.path)-1]
		d.stack = append(d.stack, v)
		more, err := d.next(']', "after array element")
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	a := make([]any, len(d.stack)-base)
	copy(a, d.stack[base:])
	clear(d.stack[base:]) // the stack must not keep the elements alive
	d.stack = d.stack[:base]
	return a, nil
}

// str reads the string whose opening quote is at d.pos and moves past its closing
// quote. nul reports an escaped U+0000 (a raw one is a syntax error).
func (d *jsonDecoder) str() (s string, nul bool, err error) {
	start := d.pos + 1
	for i := start; i < len(d.data); i++ {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return d.text[start:i], false, nil
		case c == '\\':
			return d.escaped(start, i)
		case c < 0x20:
			return "", false, d.syntax(i, "in string literal")
		}
	}
	return "", false, errEnd()
}

// escaped finishes reading a string from its first backslash at i, unescaping as
// encoding/json does: a lone or mismatched UTF-16 surrogate becomes U+FFFD.
func (d *jsonDecoder) escaped(start, i int) (s string, nul bool, err error) {
	b := append(d.buf[:0], d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.buf = b
			return string(b), nul, nil
		case c < 0x20:
			return "", false, d.syntax(i, "in string literal")
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(d.data) {
			return "", false, errEnd()
		}
		switch e := d.data[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, err := d.hex4(i + 2)
			if err != nil {
				return "", false, err
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair only when a \u escape of the other half follows at once.
				if r2, ok := d.peekHex4(i); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						r = pair
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			nul = nul || r == 0
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false, d.syntax(i+1, "in string escape code")
		}
		i += 2
	}
	return "", false, errEnd()
}

// hex4 reads the four hex digits of a \u escape starting at i.
func (d *jsonDecoder) hex4(i int) (rune, error) {
	var r rune
	for j := i; j < i+4; j++ {
		if j >= len(d.data) {
			return 0, errEnd()
		}
		h := hexVal(d.data[j])
		if h < 0 {
			return 0, d.syntax(j, `in \u hexadecimal character escape`)
		}
		r = r<<4 | h
	}
	return r, nil
}

// peekHex4 reports the rune of a complete \uXXXX escape at i, without moving.
func (d *jsonDecoder) peekHex4(i int) (rune, bool) {
	if i+6 > len(d.data) || d.data[i] != '\\' || d.data[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range d.data[i+2 : i+6] {
		h := hexVal(c)
		if h < 0 {
			return 0, false
		}
		r = r<<4 | h
	}
	return r, true
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// literal reads true, false or null.
func (d *jsonDecoder) literal() (any, error) {
	var word string
	var v any
	switch d.data[d.pos] {
	case 't':
		word, v = "true", true
	case 'f':
		word, v = "false", false
	default:
		word, v = "null", nil
	}
	for j := 1; j < len(word); j++ {
		i := d.pos + j
		if i >= len(d.data) {
			return nil, errEnd()
		}
		if d.data[i] != word[j] {
			return nil, d.syntax(i, fmt.Sprintf("in literal %s (expecting %s)", word, quoteChar(rune(word[j]))))
		}
	}
	d.pos += len(word)
	return v, nil
}

// number reads a number by RFC 8259's grammar (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)
// and reports whether it has an exponent.
func (d *jsonDecoder) number() (n json.Number, exp bool, err error) {
	start, i := d.pos, d.pos
	if d.data[i] == '-' {
		i++
	}
	digits := func(context string) error {
		if i >= len(d.data) {
			return errEnd()
		}
		if c := d.data[i]; c < '0' || c > '9' {
			return d.syntax(i, context)
		}
		for i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9' {
			i++
		}
		return nil
	}
	switch {
	case i >= len(d.data):
		return "", false, errEnd()
	case d.data[i] == '0':
		i++
	default:
		if err := digits("in numeric literal"); err != nil {
			return "", false, err
		}
	}
	if i < len(d.data) && d.data[i] == '.' {
		i++
		if err := digits("after decimal point in numeric literal"); err != nil {
			return "", false, err
		}
	}
	if i < len(d.data) && (d.data[i] == 'e' || d.data[i] == 'E') {
		exp = true
		i++
		if i < len(d.data) && (d.data[i] == '+' || d.data[i] == '-') {
			i++
		}
		if err := digits("in exponent of numeric literal"); err != nil {
			return "", false, err
		}
	}
	d.pos = i
	return json.Number(d.text[start:i]), exp, nil
}

// skipValue reads a value that is not where one is wanted (the document is not an
// object, or something follows it) so that the error can say what it is.
func (d *jsonDecoder) skipValue() (kind string, err error) {
	switch c := d.data[d.pos]; {
	case c == '{':
		d.pos++
		return "an object", nil
	case c == '[':
		d.pos++
		return "an array", nil
	case c == '"':
		_, _, err = d.str()
		return "a string", err
	case c == 't' || c == 'f':
		_, err = d.literal()
		return "a boolean", err
	case c == 'n':
		_, err = d.literal()
		return "null", err
	case c == '-' || '0' <= c && c <= '9':
		_, _, err = d.number()
		return "a number", err
	}
	return "", d.syntax(d.pos, "looking for beginning of value")
}

// at reports msg just after the token last read, at the current path.
func (d *jsonDecoder) at(msg string) *Error {
	line, col := lineCol(d.data, int64(d.pos))
	path := ""
	for _, s := range d.path {
		if s.index >= 0 {
			path = childPath(path, s.index)
		} else {
			path = childPath(path, s.key)
		}
	}
	return &Error{Line: line, Column: col, Path: path, Msg: msg}
}

// syntax reports an unexpected character at off in encoding/json's words.
func (d *jsonDecoder) syntax(off int, context string) *Error {
	r, _ := utf8.DecodeRune(d.data[off:])
	line, col := lineCol(d.data, int64(off))
	return &Error{Line: line, Column: col, Msg: "invalid JSON: invalid character " + quoteChar(r) + " " + context}
}

// quoteChar quotes a character for an error message as encoding/json does.
func quoteChar(r rune) string {
	switch r {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(r))
	return "'" + s[1:len(s)-1] + "'"
}

// lineCol converts a byte offset into a 1-based line and column (in characters).
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}
