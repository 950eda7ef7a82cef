package resources

import (
	"fmt"
	"strconv"
	"strings"
)

// jsonPatchOp is one checked operation of a JSON Patch (RFC 6902).
type jsonPatchOp struct {
	index int
	op    string
	path  []string // the JSON Pointer, unescaped into reference tokens
	from  []string // move and copy
	value any      // add, replace, test
	raw   string   // path as written, for messages
	rawFr string
}

// parseJSONPatch checks each operation of a JSON Patch: a known op, the members it
// needs, well-formed pointers. Members an op does not use are ignored, as RFC 6902 §4
// says they must be.
func parseJSONPatch(ops []any) ([]jsonPatchOp, error) {
	if len(ops) == 0 {
		return nil, Errorf(CodeInvalid, "the JSON Patch has no operation")
	}
	if len(ops) > maxPatchOperations {
		return nil, Errorf(CodeInvalid, "the JSON Patch has %d operations, more than the %d one PATCH may have", len(ops), maxPatchOperations)
	}
	out := make([]jsonPatchOp, len(ops))
	for i, raw := range ops {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("JSON Patch operation [%d] is not an object", i), Expression: fmt.Sprintf("/%d", i)}
		}
		op := jsonPatchOp{index: i}
		bad := func(format string, args ...any) error {
			name := op.op
			if name == "" {
				name = "?"
			}
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("JSON Patch operation [%d] (%s): ", i, name) + fmt.Sprintf(format, args...), Expression: fmt.Sprintf("/%d", i)}
		}
		op.op, _ = m["op"].(string)
		switch op.op {
		case "add", "remove", "replace", "move", "copy", "test":
		case "":
			return nil, bad(`"op" is missing or not a string`)
		default:
			return nil, bad(`unknown op %q: use add, remove, replace, move, copy or test`, op.op)
		}
		path, ok := m["path"].(string)
		if !ok {
			return nil, bad(`"path" is missing or not a string`)
		}
		var err error
		if op.path, err = parsePointer(path); err != nil {
			return nil, bad(`"path" %v`, err)
		}
		op.raw = path
		switch op.op {
		case "add", "replace", "test":
			v, ok := m["value"]
			if !ok {
				return nil, bad(`"value" is missing`)
			}
			op.value = v
		case "move", "copy":
			from, ok := m["from"].(string)
			if !ok {
				return nil, bad(`"from" is missing or not a string`)
			}
			if op.from, err = parsePointer(from); err != nil {
				return nil, bad(`"from" %v`, err)
			}
			op.rawFr = from
			if op.op == "move" && len(op.from) < len(op.path) && isPrefix(op.from, op.path) {
				return nil, bad("cannot move %q into its own child %q", from, path)
			}
		}
		out[i] = op
	}
	return out, nil
}

// parsePointer splits a JSON Pointer (RFC 6901) into its reference tokens, ~1 read as
// / and ~0 as ~; "" is the whole document.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%q is not a JSON Pointer: it must be empty or start with /", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		if !strings.Contains(t, "~") {
			continue
		}
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("%q is not a JSON Pointer: ~ must be followed by 0 or 1", p)
			}
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

func isPrefix(prefix, toks []string) bool {
	for i := range prefix {
		if prefix[i] != toks[i] {
			return false
		}
	}
	return true
}

// patchFailure is a JSON Patch operation that does not apply to the document.
func (op *jsonPatchOp) fail(format string, args ...any) error {
	return &Error{Code: CodeUnprocessable,
		Message:    fmt.Sprintf("JSON Patch operation [%d] (%s %s): ", op.index, op.op, op.raw) + fmt.Sprintf(format, args...),
		Expression: fmt.Sprintf("/%d", op.index)}
}

// applyJSONPatch applies ops in order to doc, stopping at the first that fails (RFC
// 6902 §5: the patch is atomic; the caller discards doc then).
func applyJSONPatch(ops []jsonPatchOp, doc map[string]any) (map[string]any, error) {
	var root any = doc
	copied := 0
	for i := range ops {
		op := &ops[i]
		var err error
		switch op.op {
		case "add":
			root, err = op.add(root, op.path, deepCopy(op.value, &copied), false)
		case "remove":
			root, _, err = op.remove(root, op.path)
		case "replace":
			if _, err = op.get(root, op.path); err == nil {
				root, err = op.add(root, op.path, deepCopy(op.value, &copied), true)
			}
		case "move":
			var v any
			if root, v, err = op.remove(root, op.from); err == nil {
				root, err = op.add(root, op.path, v, false)
			}
		case "copy":
			var v any
			if v, err = op.get(root, op.from); err == nil {
				root, err = op.add(root, op.path, deepCopy(v, &copied), false)
			}
		case "test":
			var v any
			if v, err = op.get(root, op.path); err == nil && !jsonEqual(v, op.value) {
				err = op.fail("the value there is %s, not %s", describeValue(v), describeValue(op.value))
			}
		}
		if err != nil {
			return nil, err
		}
		if copied > maxPatchCopies {
			return nil, op.fail("the patch copies more than %d values", maxPatchCopies)
		}
	}
	out, ok := root.(map[string]any)
	if !ok {
		return nil, &Error{Code: CodeUnprocessable, Message: fmt.Sprintf("the JSON Patch makes the document %s, not a resource", describeValue(root))}
	}
	return out, nil
}

// get returns the value at toks.
func (op *jsonPatchOp) get(node any, toks []string) (any, error) {
	for i, t := range toks {
		switch n := node.(type) {
		case map[string]any:
			v, ok := n[t]
			if !ok {
				return nil, op.fail("%s does not exist", pointerText(toks[:i+1]))
			}
			node = v
		case []any:
			j, err := arrayIndex(t, len(n), false)
			if err != nil {
				return nil, op.fail("%s: %v", pointerText(toks[:i+1]), err)
			}
			node = n[j]
		default:
			return nil, op.fail("%s does not exist: %s is %s", pointerText(toks[:i+1]), pointerText(toks[:i]), describeValue(node))
		}
	}
	return node, nil
}

// update applies f to the container holding toks' last token and returns node with
// the result in place: arrays may grow or shrink, so each level stores back what the
// level below returned.
func (op *jsonPatchOp) update(node any, toks []string, f func(container any, last string) (any, error)) (any, error) {
	return op.updateAt(node, toks, 0, f)
}

// updateAt is update below the first depth tokens of toks, node being what they lead to.
func (op *jsonPatchOp) updateAt(node any, toks []string, depth int, f func(container any, last string) (any, error)) (any, error) {
	if depth == len(toks)-1 {
		return f(node, toks[depth])
	}
	t := toks[depth]
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[t]
		if !ok {
			return nil, op.fail("%s does not exist", pointerText(toks[:depth+1]))
		}
		c, err := op.updateAt(child, toks, depth+1, f)
		if err != nil {
			return nil, err
		}
		n[t] = c
		return n, nil
	case []any:
		j, err := arrayIndex(t, len(n), false)
		if err != nil {
			return nil, op.fail("%s: %v", pointerText(toks[:depth+1]), err)
		}
		c, err := op.updateAt(n[j], toks, depth+1, f)
		if err != nil {
			return nil, err
		}
		n[j] = c
		return n, nil
	}
	return nil, op.fail("%s does not exist: %s is %s", pointerText(toks[:depth+1]), pointerText(toks[:depth]), describeValue(node))
}

// add puts v at toks: a new or replaced member of an object, an element inserted
// into an array (- appends); the whole document when toks is empty. With replace set
// it is replace's second half instead: an array element is overwritten, not inserted
// (replace has checked that the value exists).
func (op *jsonPatchOp) add(root any, toks []string, v any, replace bool) (any, error) {
	if len(toks) == 0 {
		return v, nil
	}
	return op.update(root, toks, func(c any, last string) (any, error) {
		switch n := c.(type) {
		case map[string]any:
			n[last] = v
			return n, nil
		case []any:
			j := len(n)
			if last != "-" || replace {
				var err error
				if j, err = arrayIndex(last, len(n), !replace); err != nil {
					return nil, op.fail("%v", err)
				}
			}
			if !replace {
				n = append(n, nil)
				copy(n[j+1:], n[j:])
			}
			n[j] = v
			return n, nil
		}
		return nil, op.fail("the parent of %s is %s, not an object or array", pointerText(toks), describeValue(c))
	})
}

// remove takes the value at toks out of the document and returns it.
func (op *jsonPatchOp) remove(root any, toks []string) (any, any, error) {
	if len(toks) == 0 {
		return nil, nil, op.fail("cannot remove the whole document")
	}
	var removed any
	out, err := op.update(root, toks, func(c any, last string) (any, error) {
		switch n := c.(type) {
		case map[string]any:
			v, ok := n[last]
			if !ok {
				return nil, op.fail("%s does not exist", pointerText(toks))
			}
			removed = v
			delete(n, last)
			return n, nil
		case []any:
			j, err := arrayIndex(last, len(n), false)
			if err != nil {
				return nil, op.fail("%v", err)
			}
			removed = n[j]
			return append(n[:j], n[j+1:]...), nil
		}
		return nil, op.fail("%s does not exist: its parent is %s", pointerText(toks), describeValue(c))
	})
	return out, removed, err
}

// arrayIndex reads an array index token of an array of length elements: decimal
// digits without a leading zero (RFC 6901 §4; "-" and negative numbers are no index),
// below length, or equal to it when atEnd allows inserting there.
func arrayIndex(t string, length int, atEnd bool) (int, error) {
	if t == "" || len(t) > 9 || (len(t) > 1 && t[0] == '0') || strings.Trim(t, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not an array index", t)
	}
	j, _ := strconv.Atoi(t)
	if j > length || (j == length && !atEnd) {
		return 0, fmt.Errorf("index %d is past the end of the array (%d elements)", j, length)
	}
	return j, nil
}

// pointerText writes reference tokens back as a JSON Pointer.
func pointerText(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}
