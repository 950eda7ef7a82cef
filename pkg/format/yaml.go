package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// DecodeYAML parses a request body that must be exactly one YAML document whose top
// level is a mapping, into the same shapes DecodeJSON yields: strings, json.Number,
// bool, nil, []any and map[string]any.
//
// It is strict where YAML is surprising. Anchors, aliases and merge keys are refused
// (they make one document mean several things and can expand exponentially); so are
// duplicate keys, several documents and custom tags. Timestamps keep the text as written,
// so a FHIR date such as 1970-01-01 stays that string. Integers written in hex, octal,
// binary or with underscores become their decimal value; .inf and .nan are refused,
// because JSON has no way to say them. !!binary values keep their base64 text, which is
// what FHIR's base64Binary holds.
func DecodeYAML(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, &Error{Msg: "the document is not valid UTF-8"}
	}
	if n := yamlNodeBound(data); n > maxYAMLNodes {
		return nil, &Error{Msg: fmt.Sprintf("the YAML document may hold up to %d values, more than the %d a YAML body may have: send large documents as JSON", n, maxYAMLNodes)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, &Error{Msg: "the document is empty"}
		}
		return nil, yamlSyntax(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, yamlSyntax(err)
		}
		return nil, &Error{Line: extra.Line, Column: extra.Column, Msg: "the body holds more than one YAML document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, &Error{Msg: "the document is empty"}
		}
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			return nil, &Error{Msg: "the document is empty"}
		}
		return nil, &Error{Line: root.Line, Column: root.Column, Msg: "the document must be a YAML mapping (key: value lines), not " + kindName(root)}
	}
	v, err := convert(root, "", 1)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// yamlNodeBound is an upper bound of the nodes a YAML document can hold, from the
// characters that introduce one: a mapping entry needs a ':' (or '?') and brings a key
// and a value, a sequence entry a '-', ',' or '['. Characters inside strings count too,
// so the bound is loose, never short.
func yamlNodeBound(data []byte) int {
	n := 2 // the document and its root
	for _, c := range data {
		switch c {
		case ':', '?':
			n += 2
		case '-', ',', '[', '{':
			n++
		}
	}
	return n
}

// yamlSyntax wraps a yaml.v3 parse error, whose text already names the line.
func yamlSyntax(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	return &Error{Msg: "invalid YAML: " + msg}
}

func nodeErr(n *yaml.Node, path, msg string) *Error {
	return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: msg}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a scalar"
}

func convert(n *yaml.Node, path string, depth int) (any, error) {
	if n.Kind == yaml.AliasNode {
		return nil, nodeErr(n, path, "YAML aliases (*name) are not accepted: write the value out")
	}
	if n.Anchor != "" {
		return nil, nodeErr(n, path, "YAML anchors (&name) are not accepted: write the value out")
	}
	if depth > maxDepth {
		return nil, nodeErr(n, path, fmt.Sprintf("the document nests deeper than %d levels", maxDepth))
	}
	switch n.Kind {
	case yaml.MappingNode:
		if t := n.ShortTag(); t != "!!map" {
			return nil, nodeErr(n, path, fmt.Sprintf("unsupported tag %s on a mapping", n.Tag))
		}
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key, err := mapKey(k, path)
			if err != nil {
				return nil, err
			}
			if _, dup := m[key]; dup {
				return nil, nodeErr(k, path, fmt.Sprintf("duplicate key %q", key))
			}
			if m[key], err = convert(v, childPath(path, key), depth+1); err != nil {
				return nil, err
			}
		}
		return m, nil
	case yaml.SequenceNode:
		if t := n.ShortTag(); t != "!!seq" {
			return nil, nodeErr(n, path, fmt.Sprintf("unsupported tag %s on a sequence", n.Tag))
		}
		a := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := convert(c, childPath(path, i), depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case yaml.ScalarNode:
		return scalar(n, path)
	}
	return nil, nodeErr(n, path, "unsupported YAML node")
}

// mapKey accepts scalar keys; a key that YAML reads as a number or boolean (1: x,
// true: x) is taken as its text, since JSON keys are strings.
func mapKey(k *yaml.Node, path string) (string, error) {
	if k.Kind == yaml.AliasNode || k.Anchor != "" {
		return "", nodeErr(k, path, "YAML anchors and aliases are not accepted")
	}
	if k.Kind != yaml.ScalarNode {
		return "", nodeErr(k, path, "a mapping key must be a plain string, not "+kindName(k))
	}
	switch k.ShortTag() {
	case "!!merge":
		return "", nodeErr(k, path, "YAML merge keys (<<) are not accepted: write the keys out")
	case "!!null":
		return "", nodeErr(k, path, "a mapping key must not be empty or null")
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		if strings.IndexByte(k.Value, 0) >= 0 {
			return "", nodeErr(k, path, errNUL)
		}
		return k.Value, nil
	}
	return "", nodeErr(k, path, fmt.Sprintf("unsupported tag %s on a key", k.Tag))
}

func scalar(n *yaml.Node, path string) (any, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp", "!!binary":
		if strings.IndexByte(n.Value, 0) >= 0 {
			return nil, nodeErr(n, path, errNUL)
		}
		return n.Value, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, nodeErr(n, path, fmt.Sprintf("%q is not a boolean", n.Value))
		}
		return b, nil
	case "!!int", "!!float":
		num, err := number(n.Value)
		if err != nil {
			return nil, nodeErr(n, path, err.Error())
		}
		if msg := checkNumber(num); msg != "" {
			return nil, nodeErr(n, path, msg)
		}
		return num, nil
	}
	return nil, nodeErr(n, path, fmt.Sprintf("unsupported tag %s", n.Tag))
}

// number turns a YAML number into a JSON number literal, keeping the text when it
// already is one so that precision (1.50, 12345678901234567890) is not lost.
func number(text string) (json.Number, error) {
	if json.Valid([]byte(text)) && isNumberLiteral(text) {
		return json.Number(text), nil
	}
	clean := strings.ReplaceAll(text, "_", "")
	if i, err := strconv.ParseInt(clean, 0, 64); err == nil {
		return json.Number(strconv.FormatInt(i, 10)), nil
	}
	if u, err := strconv.ParseUint(clean, 0, 64); err == nil {
		return json.Number(strconv.FormatUint(u, 10)), nil
	}
	if strings.HasPrefix(clean, "0o") || strings.HasPrefix(clean, "-0o") || strings.HasPrefix(clean, "+0o") {
		if i, err := strconv.ParseInt(strings.Replace(clean, "0o", "0", 1), 0, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
	}
	f, err := strconv.ParseFloat(clean, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("the number %q cannot be represented in JSON", text)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !isNumberLiteral(s) {
		return "", fmt.Errorf("the number %q cannot be represented in JSON", text)
	}
	return json.Number(s), nil
}

// isNumberLiteral reports whether s is a JSON number (json.Valid also accepts other
// values, such as strings and literals).
func isNumberLiteral(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return (c == '-' || c >= '0' && c <= '9') && json.Valid([]byte(s))
}
