package resources

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// encodeJSON returns the JSON encoding of v, byte for byte what encoding/json writes
// with SetEscapeHTML(false) (keys sorted, the same escapes), when v has the generic
// shape of a decoded document: maps of string keys, slices, strings, json.Number,
// booleans and nulls. ok is false for anything else, which the caller leaves to
// encoding/json. Every write encodes its document, and encoding/json's reflection and
// key sorting took a tenth of the server's CPU per create.
func encodeJSON(v any) (out []byte, ok bool) {
	bp := encodeBuffers.Get().(*[]byte)
	e := jsonEncoder{b: (*bp)[:0]}
	ok = e.value(v, 0)
	if ok {
		out = bytes.Clone(e.b) // one allocation of the final size
	}
	if cap(e.b) <= maxPooledBuffer {
		*bp = e.b
		encodeBuffers.Put(bp)
	}
	return out, ok
}

// marshalStd is encodeJSON by encoding/json, for the values encodeJSON leaves to it.
func marshalStd(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// encodeBuffers are encodeJSON's buffers, reused so that a document's encoding does
// not allocate every size on the way to its own.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer keeps the buffers of rare large documents out of the pool.
const maxPooledBuffer = 256 << 10

type jsonEncoder struct {
	b       []byte
	members []member // the members of the maps being written, a stack
}

type member struct {
	key   string
	value any
}

// maxEncodeDepth bounds the nesting encodeJSON follows: deeper values (a document
// holds 128 levels at most, see pkg/format) are left to encoding/json, which detects
// cycles.
const maxEncodeDepth = 1000

func (e *jsonEncoder) value(v any, depth int) bool {
	if depth > maxEncodeDepth {
		return false
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case string:
		e.b = appendJSONString(e.b, x)
	case bool:
		if x {
			e.b = append(e.b, "true"...)
		} else {
			e.b = append(e.b, "false"...)
		}
	case json.Number:
		if x == "" {
			x = "0" // as encoding/json writes the zero Number
		}
		if !validNumber(string(x)) {
			return false // encoding/json's error
		}
		e.b = append(e.b, x...)
	case map[string]any:
		if x == nil {
			e.b = append(e.b, "null"...)
			return true
		}
		// The members are sorted with their values, so that a large map is not read
		// again key by key in another order.
		base := len(e.members)
		for k, v := range x {
			e.members = append(e.members, member{k, v})
		}
		members := e.members[base:]
		slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
		e.b = append(e.b, '{')
		for i, m := range members {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = appendJSONString(e.b, m.key)
			e.b = append(e.b, ':')
			if !e.value(m.value, depth+1) {
				return false
			}
		}
		e.b = append(e.b, '}')
		clear(e.members[base:])
		e.members = e.members[:base]
	case []any:
		if x == nil {
			e.b = append(e.b, "null"...)
			return true
		}
		e.b = append(e.b, '[')
		for i, el := range x {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			if !e.value(el, depth+1) {
				return false
			}
		}
		e.b = append(e.b, ']')
	default:
		return false
	}
	return true
}

// appendJSONString quotes s as encoding/json does without HTML escaping: \" \\ \b \f
// \n \r \t, other control characters as \u00XX, U+2028 and U+2029 escaped, invalid
// UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validNumber reports whether s is a JSON number (RFC 8259 §6), as encoding/json
// requires of a json.Number it writes.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		digits()
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}
