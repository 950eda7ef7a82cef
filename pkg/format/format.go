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
