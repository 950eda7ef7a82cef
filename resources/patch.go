package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// PatchKind is the kind of a patch document, chosen by the request's Content-Type
// (conformance F30).
type PatchKind string

// The patch kinds fhirbox applies.
const (
	// JSONPatch is RFC 6902: an array of add, remove, replace, move, copy and test
	// operations at JSON Pointers (RFC 6901).
	JSONPatch PatchKind = "json-patch"
	// MergePatch is RFC 7396: an object merged into the resource, null removing.
	MergePatch PatchKind = "merge-patch"
	// FHIRPathPatch is FHIR R4's FHIRPath Patch: a Parameters resource of add, insert,
	// delete, replace and move operations at FHIRPath paths.
	FHIRPathPatch PatchKind = "fhirpath-patch"
)

// Patch is a parsed patch document: its operations were checked when it was parsed,
// so that a malformed patch is refused before any resource is read.
type Patch struct {
	Kind  PatchKind
	json  []jsonPatchOp
	merge map[string]any
	fhir  []fhirPatchOp
}

// maxPatchCopies bounds the values that copy operations (and moves of FHIRPath Patch)
// may duplicate in one patch: each copy of a document into itself doubles it, so a few
// dozen small operations would otherwise build gigabytes.
const maxPatchCopies = 1 << 20

// maxPatchOperations bounds the operations of one JSON Patch or FHIRPath Patch. Each
// FHIRPath operation evaluates an expression over the whole document, which children()
// chains make cost up to its size per step; real patches have a handful.
const maxPatchOperations = 1000

// ParsePatch checks body as a patch of kind: a []any for JSONPatch, a map[string]any
// (the merge document, or the Parameters resource) for the others. A malformed patch
// is a CodeInvalid error naming the operation at fault.
func ParsePatch(kind PatchKind, body any) (*Patch, error) {
	p := &Patch{Kind: kind}
	var err error
	switch kind {
	case JSONPatch:
		arr, ok := body.([]any)
		if !ok {
			return nil, Errorf(CodeInvalid, "a JSON Patch (application/json-patch+json) is an array of operations, not an object")
		}
		p.json, err = parseJSONPatch(arr)
	case MergePatch:
		m, ok := body.(map[string]any)
		if !ok {
			return nil, Errorf(CodeInvalid, "a merge patch (application/merge-patch+json) on a resource is a JSON object")
		}
		p.merge = m
	case FHIRPathPatch:
		m, ok := body.(map[string]any)
		if !ok || m["resourceType"] != "Parameters" {
			return nil, Errorf(CodeInvalid, "a FHIRPath Patch is a Parameters resource")
		}
		p.fhir, err = parseFHIRPathPatch(m)
	default:
		return nil, Errorf(CodeInvalid, "unknown patch kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Apply applies the patch to doc, a resource of type typ, and returns the result
// (doc itself, changed, unless the patch replaces the whole document). A patch that
// does not apply is a CodeUnprocessable error naming the operation at fault; doc may
// then be half changed, so callers apply patches to a copy.
func (p *Patch) Apply(typ string, doc map[string]any) (map[string]any, error) {
	switch p.Kind {
	case JSONPatch:
		return applyJSONPatch(p.json, doc)
	case MergePatch:
		out, _ := mergePatch(doc, p.merge).(map[string]any)
		return out, nil
	case FHIRPathPatch:
		return doc, applyFHIRPathPatch(p.fhir, typ, doc)
	}
	return nil, Errorf(CodeInvalid, "unknown patch kind %q", p.Kind)
}

// mergePatch is RFC 7396's MergePatch(target, patch): an object merges key by key,
// null removing a key; anything else replaces the target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// Patch applies p to the current version of typ/id and stores the result as the next
// version through Update, so it is checked, validated and indexed as any update is
// (conformance F30). The patch sees the resource as a read shows it: secret and hidden
// fields are absent (a test operation must not probe a password hash), and the stored
// ones are kept unless the patch sets them. ifMatch, when given, must name the current
// version (else 412, before the patch is tried); without it the version read is
// required at the write, and a write in between makes the patch start again on the
// newer version, so no update is lost. A missing resource is CodeNotFound, a deleted one
// CodeGone, as for Read; id and resourceType may not change.
func (s *Service) Patch(ctx context.Context, typ, id string, p *Patch, ifMatch string) (*Resource, error) {
	want := int64(0)
	if ifMatch != "" {
		var err error
		if want, err = ParseETag(ifMatch); err != nil {
			return nil, err
		}
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		cur, err := s.Read(ctx, typ, id)
		if err != nil {
			return nil, err
		}
		if ifMatch != "" && cur.VersionID != want {
			return nil, Errorf(CodePreconditionFailed, "If-Match %s does not match the current version of %s/%s (%s)", ifMatch, typ, id, ETag(cur.VersionID))
		}
		doc, err := s.patchBase(cur)
		if err != nil {
			return nil, err
		}
		if doc, err = p.Apply(typ, doc); err != nil {
			return nil, err
		}
		if err := checkPatchedIdentity(typ, id, doc); err != nil {
			return nil, err
		}
		res, _, err := s.Update(ctx, typ, id, doc, ETag(cur.VersionID))
		if ErrorCode(err) == CodePreconditionFailed && ifMatch == "" && attempt < attempts {
			continue // written in between: patch the newer version
		}
		return res, err
	}
}

// patchBase decodes what a patch of cur starts from: the resource as a read shows it.
func (s *Service) patchBase(cur *Resource) (map[string]any, error) {
	raw, err := s.Public(cur, View{})
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := decodeNumbers(raw, &doc); err != nil {
		return nil, Internal(err)
	}
	return doc, nil
}

// checkPatchedIdentity refuses a patch result that is no longer typ/id: a patch may
// change what a resource says, never which resource it is.
func checkPatchedIdentity(typ, id string, doc map[string]any) error {
	if doc == nil {
		return &Error{Code: CodeUnprocessable, Message: "the patch leaves no resource (the result is not a JSON object)"}
	}
	if rt := doc["resourceType"]; rt != typ {
		return &Error{Code: CodeUnprocessable, Message: fmt.Sprintf("the patch changes resourceType to %s: a patch may not change it (%s)", describeValue(rt), typ), Expression: "resourceType"}
	}
	if v := doc["id"]; v != id {
		return &Error{Code: CodeUnprocessable, Message: fmt.Sprintf("the patch changes id to %s: a patch may not change it (%q)", describeValue(v), id), Expression: "id"}
	}
	return nil
}

// describeValue shows a JSON value in a message, "nothing" for absent.
func describeValue(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) > 80 {
		return fmt.Sprintf("a %T", v)
	}
	return string(b)
}

// deepCopy copies a JSON value, so that one value a patch adds twice, or copies, is
// not shared by two places of the document. n counts the values copied.
func deepCopy(v any, n *int) any {
	*n++
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = deepCopy(x, n)
		}
		return m
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = deepCopy(x, n)
		}
		return a
	}
	return v
}

// JSONEqual reports whether two decoded JSON values are equal as RFC 6902's test
// operation has it (numbers by value): what fhirbox import compares a stored document
// with the one it would write.
func JSONEqual(a, b any) bool { return jsonEqual(a, b) }

// jsonEqual is RFC 6902's equality of the test operation: same type; numbers equal by
// value (1.0 is 1); objects with the same members, arrays with the same elements in
// order, each equal.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], ba[i]) {
				return false
			}
		}
		return true
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return false
		}
		return numberEqual(a, bn)
	case string, bool, nil:
		return a == b
	}
	return false
}

// numberEqual compares two JSON numbers by value, exactly: 1.0 is 1, but
// 0.10000000000000001 is not 0.1 although both are the same float64. Numbers past a
// float64's range, or with exponents beyond it, are equal only as the same text (the
// server refuses such numbers in documents anyway; an exact comparison would cost
// their full expansion).
func numberEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	fa, errA := strconv.ParseFloat(string(a), 64)
	fb, errB := strconv.ParseFloat(string(b), 64)
	if errA != nil || errB != nil || fa != fb || !smallExponent(a) || !smallExponent(b) {
		return false
	}
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

// smallExponent reports whether n is short and its exponent, if any, within ±400.
func smallExponent(n json.Number) bool {
	s := string(n)
	if len(s) > 128 {
		return false
	}
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return true
	}
	e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	return err == nil && e >= -400 && e <= 400
}
