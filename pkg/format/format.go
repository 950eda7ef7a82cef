// Package format reads request bodies as JSON or YAML, strictly, into the generic shape
// the resource engine works on (map[string]any with json.Number numbers), and writes JSON
// documents back as YAML. Both readers reject what would otherwise be silently lost or
// misread: duplicate keys, trailing data, YAML anchors and merge keys, several documents.
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// maxDepth bounds nesting. FHIR resources stay far below it (contained resources and
// nested extensions reach a few dozen levels); the bound keeps a hostile body from
// exhausting the stack.
const maxDepth = 128

// maxValues bounds the values (objects, arrays, strings, numbers, booleans, nulls) of a
// document of n bytes: 65,536 plus one for every 8 bytes. Decoded, each value costs
// tens of bytes whatever its text, so a body of tiny values ("[1,1,1,…" or "[{},{},…")
// would cost 30-40 times its size; real FHIR JSON has 15 bytes or more per value
// (Synthea's resources: 15-26), far inside the bound.
func maxValues(n int) int { return 1<<16 + n/8 }

// tooManyValues is the error for a document over maxValues.
const tooManyValues = "the document holds more values than its size allows (65,536 plus one per 8 bytes): decoded, it would take many times its size in memory"

// maxYAMLNodes bounds the nodes of a YAML body, counted before it is parsed (see
// yamlNodeBound): the YAML parser builds a tree of about 250 bytes a node before
// fhirbox sees any of it, so the bound must hold before parsing. It allows YAML bodies
// of a few MB of real data; larger documents can be sent as JSON.
const maxYAMLNodes = 1 << 18

// Error is a mistake in a client's document: what is wrong and where.
type Error struct {
	// Line and Column locate the mistake (1-based); zero when unknown.
	Line, Column int
	// Path is the JSON path of the element concerned, e.g. "name[0].given"; may be empty.
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error implements error: "line 3, column 5: duplicate key "name" (at name[0])".
func (e *Error) Error() string {
	var b bytes.Buffer
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Path != "" {
		fmt.Fprintf(&b, " (at %s)", e.Path)
	}
	return b.String()
}

// Indent pretty-prints a JSON document with two-space indentation; input that is not
// valid JSON is returned unchanged.
func Indent(jsonDoc []byte) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, jsonDoc, "", "  "); err != nil {
		return jsonDoc
	}
	return b.Bytes()
}

// childPath extends a JSON path by an object key or an array index.
func childPath(parent string, key any) string {
	switch k := key.(type) {
	case int:
		return fmt.Sprintf("%s[%d]", parent, k)
	default:
		if parent == "" {
			return fmt.Sprint(k)
		}
		return parent + "." + fmt.Sprint(k)
	}
}
