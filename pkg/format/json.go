package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// DecodeJSON parses a request body that must be exactly one JSON object. Numbers stay
// json.Number, so 1.50 and large integers keep their exact text. Duplicate keys, at any
// depth, are an error: FHIR forbids them, and keeping one of the two values silently
// would lose data.
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
	d := &jsonDecoder{data: data, dec: json.NewDecoder(bytes.NewReader(data)), left: maxValues(len(data))}
	d.dec.UseNumber()
	tok, err := d.dec.Token()
	if err == io.EOF {
		return nil, &Error{Msg: "the document is empty"}
	}
	if err != nil {
		return nil, d.syntax(err)
	}
	var v any
	switch {
	case tok == json.Delim('{'):
		v, err = d.object(1)
	case tok == json.Delim('[') && arrays:
		v, err = d.array(1)
	case arrays:
		return nil, d.at(fmt.Sprintf("the document must be a JSON object or array, not %s", describe(tok)))
	default:
		return nil, d.at(fmt.Sprintf("the document must be a JSON object, not %s", describe(tok)))
	}
	if err != nil {
		return nil, err
	}
	if tok, err := d.dec.Token(); err != io.EOF {
		if err != nil {
			return nil, d.syntax(err)
		}
		what := "object"
		if _, ok := v.([]any); ok {
			what = "array"
		}
		return nil, d.at(fmt.Sprintf("unexpected %s after the end of the %s", describe(tok), what))
	}
	return v, nil
}

type jsonDecoder struct {
	data []byte
	dec  *json.Decoder
	// path holds the keys (string) and indexes (int) leading to the value being read;
	// it is turned into text only for an error, so that a large array does not cost a
	// path string per element.
	path []any
	left int // values still allowed (maxValues)
}

func (d *jsonDecoder) value(tok json.Token, depth int) (any, error) {
	if d.left--; d.left < 0 {
		return nil, d.at(tooManyValues)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return nil, d.at(fmt.Sprintf("the document nests deeper than %d levels", maxDepth))
		}
		if t == '{' {
			return d.object(depth + 1)
		}
		return d.array(depth + 1)
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			return nil, d.at(errNUL)
		}
		return t, nil
	case json.Number:
		if msg := checkNumber(t); msg != "" {
			return nil, d.at(msg)
		}
		return t, nil
	default:
		return t, nil
	}
}

// errNUL refuses U+0000 in a string or key: JSON can escape it, but PostgreSQL cannot
// store it in JSONB or text, and FHIR strings exclude control characters anyway.
const errNUL = `a string contains the character U+0000 ("\u0000"), which no value may hold`

func (d *jsonDecoder) object(depth int) (map[string]any, error) {
	m := map[string]any{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return nil, d.syntax(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, d.at("an object key must be a string")
		}
		if strings.IndexByte(key, 0) >= 0 {
			return nil, d.at(errNUL)
		}
		if _, dup := m[key]; dup {
			return nil, d.at(fmt.Sprintf("duplicate key %q", key))
		}
		if tok, err = d.dec.Token(); err != nil {
			return nil, d.syntax(err)
		}
		d.path = append(d.path, key)
		v, err := d.value(tok, depth)
		if err != nil {
			return nil, err
		}
		d.path = d.path[:len(d.path)-1]
		m[key] = v
	}
	if _, err := d.dec.Token(); err != nil { // the closing brace
		return nil, d.syntax(err)
	}
	return m, nil
}

func (d *jsonDecoder) array(depth int) ([]any, error) {
	a := []any{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return nil, d.syntax(err)
		}
		d.path = append(d.path, len(a))
		v, err := d.value(tok, depth)
		if err != nil {
			return nil, err
		}
		d.path = d.path[:len(d.path)-1]
		a = append(a, v)
	}
	if _, err := d.dec.Token(); err != nil { // the closing bracket
		return nil, d.syntax(err)
	}
	return a, nil
}

// at reports msg at the decoder's position (just after the last token read) and path.
func (d *jsonDecoder) at(msg string) *Error {
	line, col := lineCol(d.data, d.dec.InputOffset())
	path := ""
	for _, k := range d.path {
		path = childPath(path, k)
	}
	return &Error{Line: line, Column: col, Path: path, Msg: msg}
}

// syntax turns encoding/json's errors into an Error with a line and column.
func (d *jsonDecoder) syntax(err error) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(d.data, se.Offset)
		return &Error{Line: line, Column: col, Msg: "invalid JSON: " + se.Error()}
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Msg: "invalid JSON: the document ends too early"}
	}
	return &Error{Msg: "invalid JSON: " + err.Error()}
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

func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			return "an array"
		case '{':
			return "an object"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
