package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// EncodeYAML converts a JSON document to YAML with two-space indentation, keeping the
// key order of the JSON. Strings that YAML would read as something else ("true", "1.0",
// "2020-01-01", "") are quoted, so that DecodeYAML gives back exactly what DecodeJSON
// reads from the JSON.
func EncodeYAML(jsonDoc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(jsonDoc))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("format: EncodeYAML: %w", err)
	}
	root, err := toNode(dec, tok, 0)
	if err != nil {
		return nil, fmt.Errorf("format: EncodeYAML: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("format: EncodeYAML: trailing data after the document")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("format: EncodeYAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("format: EncodeYAML: %w", err)
	}
	return b.Bytes(), nil
}

// EncodeYAMLValue encodes v as YAML by way of its JSON encoding, so struct tags and
// json.Marshaler implementations decide the shape, as they do for JSON responses.
func EncodeYAMLValue(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("format: EncodeYAMLValue: %w", err)
	}
	return EncodeYAML(j)
}

func toNode(dec *json.Decoder, tok json.Token, depth int) (*yaml.Node, error) {
	if depth > 10000 {
		return nil, fmt.Errorf("the document nests too deep")
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{}
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
		} else {
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, strNode(k.(string)))
			}
			v, err := dec.Token()
			if err != nil {
				return nil, err
			}
			child, err := toNode(dec, v, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, child)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		if len(n.Content) == 0 {
			n.Style = yaml.FlowStyle // {} and []
		}
		return n, nil
	case string:
		return strNode(t), nil
	case json.Number:
		n := &yaml.Node{Kind: yaml.ScalarNode, Value: t.String()}
		if _, err := strconv.ParseFloat(t.String(), 64); err != nil {
			// Out of float64 range: YAML would read the plain text as a string.
			n.Tag = "!!float"
		}
		return n, nil
	case bool:
		if t {
			return &yaml.Node{Kind: yaml.ScalarNode, Value: "true"}, nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "false"}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// strNode is a string scalar; the !!str tag makes yaml.v3 quote it whenever the plain
// text would resolve to another type. yaml.v3 misses some cases, which are quoted here:
// the merge key "<<", YAML 1.1 booleans, and multi-line text that a literal block cannot hold as it is
// (leading blank lines or indentation, carriage returns, other control characters).
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if s == "<<" || yaml11Bool[strings.ToLower(s)] || (strings.Contains(s, "\n") && !literalSafe(s)) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// yaml11Bool lists the words YAML 1.1 readers (PyYAML, older tools) take for booleans;
// yaml.v3 reads them as strings but quoting them keeps other readers from flipping
// "no" into false.
var yaml11Bool = map[string]bool{"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true}

// literalSafe reports whether s reads back unchanged from a YAML literal block.
func literalSafe(s string) bool {
	if s[0] == '\n' || s[0] == ' ' || s[0] == '\t' {
		return false
	}
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff {
			return false
		}
	}
	return true
}
