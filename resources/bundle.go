package resources

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Bundle types that POST [base] processes (conformance F40).
const (
	BundleBatch       = "batch"
	BundleTransaction = "transaction"
)

// DefaultBundleMaxEntries is the most entries a batch or transaction Bundle may hold
// unless the server is configured otherwise (FHIRBOX_BUNDLE_MAX_ENTRIES).
const DefaultBundleMaxEntries = 1000

// Interaction is what one entry of a batch or transaction asks for, as the single
// request of its method and URL would.
type Interaction string

// The interactions a Bundle entry may ask for.
const (
	InteractionRead              Interaction = "read"
	InteractionVRead             Interaction = "vread"
	InteractionSearch            Interaction = "search-type"
	InteractionHistoryInstance   Interaction = "history-instance"
	InteractionHistoryType       Interaction = "history-type"
	InteractionCreate            Interaction = "create"
	InteractionUpdate            Interaction = "update"
	InteractionDelete            Interaction = "delete"
	InteractionPatch             Interaction = "patch"
	InteractionConditionalUpdate Interaction = "conditional-update"
	InteractionConditionalDelete Interaction = "conditional-delete"
)

// BundleEntry is one entry of a batch or transaction, its request parsed.
type BundleEntry struct {
	// Index is the entry's position in Bundle.entry, from 0.
	Index   int
	FullURL string
	// Resource is the entry's resource (POST, PUT), nil for the other methods.
	Resource map[string]any
	// Method is request.method in upper case; HEAD is kept as HEAD.
	Method string
	// URL is request.url as sent; Type, ID, VersionID and Query are what it names.
	URL                 string
	Type, ID, VersionID string
	Query               string
	Interaction         Interaction
	// The request's conditional headers.
	IfMatch, IfNoneMatch, IfNoneExist, IfModifiedSince string
}

// Label names the entry in messages: its position, and its fullUrl when it has one.
func (e *BundleEntry) Label() string {
	if e.FullURL != "" {
		return fmt.Sprintf("entry %d (%s %s, fullUrl %s)", e.Index, e.Method, e.URL, e.FullURL)
	}
	return fmt.Sprintf("entry %d (%s %s)", e.Index, e.Method, e.URL)
}

// Path is the entry's request path, relative to the base, without the query.
func (e *BundleEntry) Path() string {
	p := e.Type
	if e.ID != "" {
		p += "/" + e.ID
	}
	switch e.Interaction {
	case InteractionHistoryInstance, InteractionHistoryType:
		p += "/_history"
	case InteractionVRead:
		p += "/_history/" + e.VersionID
	}
	return p
}

// Bundle is a batch or transaction Bundle, its entries parsed.
type Bundle struct {
	Type    string
	Entries []*BundleEntry
}

// entryError is the error of one entry, as a 400 naming it and the element at fault.
func entryError(i int, fullURL, elem, format string, args ...any) *Error {
	who := fmt.Sprintf("entry %d", i)
	if fullURL != "" {
		who += " (fullUrl " + fullURL + ")"
	}
	path := fmt.Sprintf("Bundle.entry[%d]", i)
	if elem != "" {
		path += "." + elem
	}
	return &Error{Code: CodeInvalid, Message: who + ": " + fmt.Sprintf(format, args...), Expression: path}
}

// ParseBundle reads a batch or transaction Bundle (conformance F40): its type, and each
// entry's request (method, url and conditional headers) and resource. base is the
// server's absolute base URL for the Bundle: an entry URL may start with it and is then
// read as relative; any other absolute URL is refused. More than maxEntries entries
// is refused as well. Every mistake is a CodeInvalid error naming the entry.
func ParseBundle(doc map[string]any, base string, maxEntries int) (*Bundle, error) {
	if rt, _ := doc["resourceType"].(string); rt != "Bundle" {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("POST to the base takes a Bundle of type batch or transaction, not a %v", describeEntryValue(doc["resourceType"])), Expression: "resourceType"}
	}
	typ, _ := doc["type"].(string)
	if typ != BundleBatch && typ != BundleTransaction {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("POST to the base takes a Bundle of type batch or transaction, not %s", describeEntryValue(doc["type"])), Expression: "Bundle.type"}
	}
	b := &Bundle{Type: typ}
	raw, ok := doc["entry"]
	if !ok || raw == nil {
		return b, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &Error{Code: CodeInvalid, Message: "Bundle.entry must be a list", Expression: "Bundle.entry"}
	}
	if maxEntries > 0 && len(list) > maxEntries {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("the Bundle has %d entries; the limit is %d: split it", len(list), maxEntries), Expression: "Bundle.entry"}
	}
	fullURLs := map[string]int{}
	for i, v := range list {
		e, err := parseEntry(i, v, base)
		if err != nil {
			return nil, err
		}
		if e.FullURL != "" {
			if j, dup := fullURLs[e.FullURL]; dup {
				return nil, entryError(i, e.FullURL, "fullUrl", "entry %d has the same fullUrl", j)
			}
			fullURLs[e.FullURL] = i
		}
		b.Entries = append(b.Entries, e)
	}
	return b, nil
}

// describeEntryValue names a JSON value in messages: a string quoted, anything else by its kind.
func describeEntryValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "(missing)"
	case string:
		return fmt.Sprintf("%q", v)
	default:
		return fmt.Sprintf("%T", v)
	}
}

// parseEntry reads entry i of a Bundle.
func parseEntry(i int, v any, base string) (*BundleEntry, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, entryError(i, "", "", "an entry must be an object")
	}
	e := &BundleEntry{Index: i}
	if fu, ok := m["fullUrl"]; ok {
		s, ok := fu.(string)
		if !ok || s == "" {
			return nil, entryError(i, "", "fullUrl", "fullUrl must be a non-empty string")
		}
		e.FullURL = s
	}
	req, ok := m["request"].(map[string]any)
	if !ok {
		return nil, entryError(i, e.FullURL, "request", "request (method and url) is missing or not an object")
	}
	for k, val := range req {
		s, ok := val.(string)
		if !ok {
			return nil, entryError(i, e.FullURL, "request."+k, "request.%s must be a string", k)
		}
		switch k {
		case "method":
			e.Method = strings.ToUpper(s)
		case "url":
			e.URL = s
		case "ifMatch":
			e.IfMatch = s
		case "ifNoneMatch":
			e.IfNoneMatch = s
		case "ifNoneExist":
			e.IfNoneExist = s
		case "ifModifiedSince":
			e.IfModifiedSince = s
		case "id":
		default:
			return nil, entryError(i, e.FullURL, "request."+k, "request has no element %s", k)
		}
	}
	if e.Method == "" || e.URL == "" {
		return nil, entryError(i, e.FullURL, "request", "request.method and request.url are required")
	}
	if r, ok := m["resource"]; ok && r != nil {
		doc, ok := r.(map[string]any)
		if !ok {
			return nil, entryError(i, e.FullURL, "resource", "resource must be an object")
		}
		e.Resource = doc
	}
	if err := e.parseURL(base); err != nil {
		return nil, entryError(i, e.FullURL, "request.url", "%s", err)
	}
	needsBody := e.Interaction == InteractionCreate || e.Interaction == InteractionUpdate || e.Interaction == InteractionConditionalUpdate
	switch {
	case needsBody && e.Resource == nil:
		return nil, entryError(i, e.FullURL, "resource", "%s %s needs a resource", e.Method, e.URL)
	case !needsBody && e.Interaction != InteractionPatch && e.Resource != nil:
		return nil, entryError(i, e.FullURL, "resource", "%s %s takes no resource", e.Method, e.URL)
	case e.IfNoneExist != "" && e.Interaction != InteractionCreate:
		return nil, entryError(i, e.FullURL, "request.ifNoneExist", "ifNoneExist applies to POST (create) only")
	case e.IfMatch != "" && e.Interaction != InteractionUpdate && e.Interaction != InteractionPatch && e.Interaction != InteractionConditionalUpdate:
		return nil, entryError(i, e.FullURL, "request.ifMatch", "ifMatch applies to PUT and PATCH only")
	case (e.IfNoneMatch != "" || e.IfModifiedSince != "") && e.Interaction != InteractionRead:
		return nil, entryError(i, e.FullURL, "request", "ifNoneMatch and ifModifiedSince apply to a read (GET [type]/[id]) only")
	}
	return e, nil
}

// parseURL reads the entry's method and URL into its interaction, type, id, version and
// query.
func (e *BundleEntry) parseURL(base string) error {
	u := e.URL
	if strings.Contains(u, "://") {
		b := strings.TrimRight(base, "/") + "/"
		if base == "" || !strings.HasPrefix(u, b) {
			return fmt.Errorf("%q is not under this server's base %s: use a URL relative to the base", u, strings.TrimRight(base, "/"))
		}
		u = strings.TrimPrefix(u, b)
	}
	u = strings.TrimPrefix(u, "/")
	path, query, _ := strings.Cut(u, "?")
	e.Query = query
	if _, err := url.ParseQuery(query); err != nil {
		return fmt.Errorf("%q has a malformed query: %v", e.URL, err)
	}
	segs := strings.Split(path, "/")
	if path == "" || segs[0] == "" || segs[0][0] == '_' || segs[0][0] == '$' {
		return fmt.Errorf("%q names no resource type: system-level interactions and operations are not supported in a Bundle", e.URL)
	}
	e.Type = segs[0]
	for _, s := range segs[1:] {
		if s == "" {
			return fmt.Errorf("%q has an empty path segment", e.URL)
		}
	}
	withQuery := func(ok bool, what string) error {
		if !ok && query != "" {
			return fmt.Errorf("%s takes no query (%q)", what, e.URL)
		}
		return nil
	}
	m := e.Method
	switch {
	case len(segs) == 1:
		switch m {
		case "GET", "HEAD":
			e.Interaction = InteractionSearch
		case "POST":
			e.Interaction = InteractionCreate
			return withQuery(false, "POST [type]")
		case "PUT", "DELETE", "PATCH":
			if query == "" {
				return fmt.Errorf("%s %q needs an id, or search criteria for a conditional %s", m, e.URL, strings.ToLower(m))
			}
			e.Interaction = map[string]Interaction{"PUT": InteractionConditionalUpdate, "DELETE": InteractionConditionalDelete, "PATCH": InteractionPatch}[m]
		default:
			return e.badMethod()
		}
	case len(segs) == 2 && segs[1] == "_history":
		if m != "GET" && m != "HEAD" {
			return e.badMethod()
		}
		e.Interaction = InteractionHistoryType
	case len(segs) == 2 && (strings.HasPrefix(segs[1], "_") || strings.HasPrefix(segs[1], "$")):
		return fmt.Errorf("%q: %s is not supported in a Bundle entry", e.URL, segs[1])
	case len(segs) == 2:
		e.ID = segs[1]
		switch m {
		case "GET", "HEAD":
			e.Interaction = InteractionRead
		case "PUT":
			e.Interaction = InteractionUpdate
		case "DELETE":
			e.Interaction = InteractionDelete
		case "PATCH":
			e.Interaction = InteractionPatch
		default:
			return e.badMethod()
		}
		return withQuery(false, m+" [type]/[id]")
	case len(segs) == 3 && segs[2] == "_history":
		if m != "GET" && m != "HEAD" {
			return e.badMethod()
		}
		e.ID, e.Interaction = segs[1], InteractionHistoryInstance
	case len(segs) == 4 && segs[2] == "_history":
		if m != "GET" && m != "HEAD" {
			return e.badMethod()
		}
		e.ID, e.VersionID, e.Interaction = segs[1], segs[3], InteractionVRead
		return withQuery(false, "vread")
	default:
		return fmt.Errorf("%q is no resource interaction fhirbox serves in a Bundle", e.URL)
	}
	return nil
}

func (e *BundleEntry) badMethod() error {
	return fmt.Errorf("method %s is not allowed on %q", e.Method, e.URL)
}

// ProcessingOrder is the order in which a transaction processes its entries (FHIR R4
// http.html#trules, conformance F42): deletes, then creates, then updates and patches,
// then reads and searches; the Bundle's order within each group. It returns indexes into
// b.Entries.
func (b *Bundle) ProcessingOrder() []int {
	rank := func(e *BundleEntry) int {
		switch e.Method {
		case "DELETE":
			return 0
		case "POST":
			return 1
		case "PUT", "PATCH":
			return 2
		}
		return 3
	}
	order := make([]int, len(b.Entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return rank(b.Entries[order[i]]) < rank(b.Entries[order[j]]) })
	return order
}

// IsPlaceholder reports whether ref is a urn:uuid: or urn:oid: identifier, which a
// transaction resolves to the resource its entry creates (conformance F43).
func IsPlaceholder(ref string) bool {
	return strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:")
}

// ConditionalReference splits a conditional reference ("Patient?identifier=s|v") into
// its type and query; ok is false for any other reference.
func ConditionalReference(ref string) (typ, query string, ok bool) {
	typ, query, found := strings.Cut(ref, "?")
	if !found || typ == "" || query == "" || strings.ContainsAny(typ, "/:#") {
		return "", "", false
	}
	return typ, query, true
}

// RewriteReferences calls fn on every Reference.reference of doc (the string value of
// each "reference" key, however deep: in contained resources, extensions and backbone
// elements alike) with the element's path (name.given style, lists indexed) and
// replaces it with what fn returns. The first error of fn stops the walk.
func RewriteReferences(doc map[string]any, fn func(path, ref string) (string, error)) error {
	return rewrite(doc, "", fn)
}

func rewrite(v any, path string, fn func(path, ref string) (string, error)) error {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if s, ok := c.(string); ok && k == "reference" {
				n, err := fn(p, s)
				if err != nil {
					return err
				}
				v[k] = n
				continue
			}
			if err := rewrite(c, p, fn); err != nil {
				return err
			}
		}
	case []any:
		for i, c := range v {
			if err := rewrite(c, fmt.Sprintf("%s[%d]", path, i), fn); err != nil {
				return err
			}
		}
	}
	return nil
}
