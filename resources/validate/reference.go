package validate

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	uuidURN = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	oidURN  = regexp.MustCompile(`^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$`)
	// scheme is an absolute URI's start (RFC 3986 §3.1).
	scheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// reference checks the shape of a Reference's reference and, where the element
// restricts them, the type it points to (conformance V4). Accepted shapes: a local
// reference to a contained resource (#id, or # for the container itself), a relative
// one (Type/id, Type/id/_history/vid) to an R4 type, an absolute URL, and
// urn:uuid:/urn:oid: (a Bundle's entries name each other so; a transaction rewrites
// them to ids before its entries are written).
func (c *checker) reference(path string, f *field, m map[string]any) {
	if t, ok := m["type"].(string); ok && f.targets != nil && c.v.resources[t] && !f.targets[t] {
		c.add(CodeValue, path+".type", fmt.Sprintf("%s may not point to a %s (allowed: %s)", lastName(path), t, targetList(f.targets)))
	}
	ref, ok := m["reference"].(string)
	if !ok || strings.TrimSpace(ref) == "" {
		return // its format was checked as a string; a display-only or identifier reference
	}
	rp := path + ".reference"
	switch {
	case strings.HasPrefix(ref, "#"):
		if id := ref[1:]; id != "" && !c.contained[id] {
			c.add(CodeValue, rp, fmt.Sprintf("%q names no contained resource", ref))
		}
		return
	case strings.HasPrefix(ref, "urn:uuid:"):
		if !uuidURN.MatchString(ref) {
			c.add(CodeValue, rp, fmt.Sprintf("%q is not a valid urn:uuid", clip(ref)))
		}
		return
	case strings.HasPrefix(ref, "urn:oid:"):
		if !oidURN.MatchString(ref) {
			c.add(CodeValue, rp, fmt.Sprintf("%q is not a valid urn:oid", clip(ref)))
		}
		return
	}
	absolute := scheme.MatchString(ref)
	if strings.ContainsAny(ref, " \t\r\n") {
		c.add(CodeValue, rp, fmt.Sprintf("%q is not a valid reference: it contains whitespace", clip(ref)))
		return
	}
	typ, ok := typeOfReference(ref)
	if !absolute {
		if !ok || !c.v.resources[typ] {
			c.add(CodeValue, rp, fmt.Sprintf("%q is not a valid reference: Type/id (an R4 resource type and an id), an absolute URL, #id of a contained resource or a urn:uuid:", clip(ref)))
			return
		}
	}
	if ok && c.v.resources[typ] && f.targets != nil && !f.targets[typ] {
		c.add(CodeValue, rp, fmt.Sprintf("%s may not point to a %s (allowed: %s)", lastName(path), typ, targetList(f.targets)))
	}
}

// typeOfReference returns the type of a reference ending in Type/id or
// Type/id/_history/vid, with a valid id.
func typeOfReference(ref string) (string, bool) {
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		return "", false
	}
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		if !ValidID(parts[n-1]) {
			return "", false
		}
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || !ValidID(parts[n-1]) {
		return "", false
	}
	if n > 2 && !scheme.MatchString(ref) {
		return "", false // a relative reference is Type/id and no more
	}
	return parts[n-2], true
}

// ValidID reports whether id is a valid FHIR logical id: [A-Za-z0-9\-.]{1,64},
// case-sensitive. It is checked on every request that names a resource, so by hand
// rather than by regexp.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func targetList(t map[string]bool) string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}
