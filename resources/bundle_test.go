package resources

import (
	"encoding/json"
	"strings"
	"testing"
)

const testBundleBase = "http://fhirbox.test/fhir"

func bundleDoc(t testing.TB, s string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Each request URL is read as the interaction its single request would be
// (conformance F40); what no single request could be is a 400 naming the entry.
func TestParseBundleEntries(t *testing.T) {
	for _, tt := range []struct {
		method, url string
		want        Interaction
		typ, id     string
		vid, query  string
	}{
		{"GET", "Patient/1", InteractionRead, "Patient", "1", "", ""},
		{"HEAD", "/Patient/1", InteractionRead, "Patient", "1", "", ""},
		{"GET", testBundleBase + "/Patient/1/_history/2", InteractionVRead, "Patient", "1", "2", ""},
		{"GET", "Patient?name=x&_count=2", InteractionSearch, "Patient", "", "", "name=x&_count=2"},
		{"GET", "Patient/_history", InteractionHistoryType, "Patient", "", "", ""},
		{"GET", "Patient/1/_history?_count=1", InteractionHistoryInstance, "Patient", "1", "", "_count=1"},
		{"POST", "Patient", InteractionCreate, "Patient", "", "", ""},
		{"PUT", "Patient/1", InteractionUpdate, "Patient", "1", "", ""},
		{"PUT", "Patient?identifier=a|b", InteractionConditionalUpdate, "Patient", "", "", "identifier=a|b"},
		{"DELETE", "Patient/1", InteractionDelete, "Patient", "1", "", ""},
		{"delete", "Patient?name=x", InteractionConditionalDelete, "Patient", "", "", "name=x"},
		{"PATCH", "Patient/1", InteractionPatch, "Patient", "1", "", ""},
	} {
		res := ""
		if tt.want == InteractionCreate || tt.want == InteractionUpdate || tt.want == InteractionConditionalUpdate {
			res = `,"resource":{"resourceType":"Patient"}`
		}
		doc := bundleDoc(t, `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"`+tt.method+`","url":"`+tt.url+`"}`+res+`}]}`)
		b, err := ParseBundle(doc, testBundleBase, 0)
		if err != nil {
			t.Errorf("%s %s: %v", tt.method, tt.url, err)
			continue
		}
		e := b.Entries[0]
		if e.Interaction != tt.want || e.Type != tt.typ || e.ID != tt.id || e.VersionID != tt.vid || e.Query != tt.query {
			t.Errorf("%s %s: got %s %s/%s/%s ?%s", tt.method, tt.url, e.Interaction, e.Type, e.ID, e.VersionID, e.Query)
		}
	}
	for _, tt := range []struct{ method, url, want string }{
		{"GET", "", "required"},
		{"POST", "Patient/1", "not allowed"},
		{"PUT", "Patient", "needs an id"},
		{"GET", "_history", "names no resource type"},
		{"GET", "?_type=Patient", "names no resource type"},
		{"GET", "Patient/1/$everything", "no resource interaction"},
		{"GET", "Patient//1", "empty path segment"},
		{"GET", "https://elsewhere/fhir/Patient/1", "not under this server's base"},
		{"GET", "Patient/1?x=%zz", "malformed query"},
		{"GET", "Patient/1/_history/2?x=1", "takes no query"},
		{"CONNECT", "Patient", "not allowed"},
	} {
		doc := bundleDoc(t, `{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"urn:uuid:e0"},{"request":{"method":"`+tt.method+`","url":"`+tt.url+`"}}]}`)
		doc["entry"] = doc["entry"].([]any)[1:]
		_, err := ParseBundle(doc, testBundleBase, 0)
		if err == nil || ErrorCode(err) != CodeInvalid || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "entry 0") {
			t.Errorf("%s %q: %v, want a 400 naming entry 0 and saying %q", tt.method, tt.url, err, tt.want)
		}
	}
}

// The spec's order: deletes, creates, updates and patches, then reads, each group in the
// Bundle's order (conformance F42).
func TestProcessingOrder(t *testing.T) {
	b := &Bundle{}
	for _, m := range []string{"GET", "PUT", "POST", "DELETE", "PATCH", "POST", "HEAD", "DELETE"} {
		b.Entries = append(b.Entries, &BundleEntry{Method: m})
	}
	got := b.ProcessingOrder()
	want := []int{3, 7, 2, 5, 1, 4, 0, 6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// Every "reference" string is offered, wherever it sits; other strings that look like
// one are not (conformance F43).
func TestRewriteReferences(t *testing.T) {
	doc := bundleDoc(t, `{"resourceType":"Observation","subject":{"reference":"urn:uuid:a"},
		"note":[{"text":"urn:uuid:a"}],
		"contained":[{"resourceType":"Provenance","target":[{"reference":"urn:uuid:a"}]}],
		"extension":[{"url":"x","valueReference":{"reference":"urn:oid:1.2"}},{"url":"urn:uuid:a","valueUri":"urn:uuid:a"}]}`)
	ids := map[string]string{"urn:uuid:a": "Patient/1", "urn:oid:1.2": "Device/2"}
	var paths []string
	err := RewriteReferences(doc, func(path, ref string) (string, error) {
		paths = append(paths, path)
		return ids[ref], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Errorf("offered %v, want the 3 references", paths)
	}
	out, _ := json.Marshal(doc)
	for _, want := range []string{`"subject":{"reference":"Patient/1"}`, `"target":[{"reference":"Patient/1"}]`, `"valueReference":{"reference":"Device/2"}`, `"valueUri":"urn:uuid:a"`, `"text":"urn:uuid:a"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	for ref, want := range map[string]bool{"Patient?identifier=a|b": true, "Patient/1": false, "Patient?": false, "http://x/Patient?a=b": false, "?a=b": false} {
		if _, _, ok := ConditionalReference(ref); ok != want {
			t.Errorf("ConditionalReference(%q) = %v, want %v", ref, ok, want)
		}
	}
}

// FuzzParseBundle feeds ParseBundle and the reference rewriting with arbitrary JSON
// (what a client POSTs to the base): neither may panic; a Bundle that parses has
// entries whose interaction, type and method are set, and every reference the walk
// offers is replaced.
func FuzzParseBundle(f *testing.F) {
	f.Add(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","link":[{"other":{"reference":"urn:uuid:1"}}]}}]}`)
	f.Add(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/1/_history/2"}},{"request":{"method":"DELETE","url":"Patient?x=1"}}]}`)
	f.Add(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"PUT","url":"http://fhirbox.test/fhir/Patient/1","ifMatch":"W/\"1\""},"resource":{"contained":[{"reference":"Patient?a=b"}]}}]}`)
	f.Add(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"/"}},null,{"request":[]}]}`)
	f.Add(`{"resourceType":"Bundle","type":"searchset"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var doc map[string]any
		if json.Unmarshal([]byte(body), &doc) != nil || doc == nil {
			return
		}
		b, err := ParseBundle(doc, testBundleBase, 50)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("error of code %s: %v", ErrorCode(err), err)
			}
			return
		}
		for _, e := range b.Entries {
			if e.Interaction == "" || e.Type == "" || e.Method == "" {
				t.Fatalf("entry %d parsed incompletely: %+v", e.Index, e)
			}
			_ = b.ProcessingOrder()
			if e.Resource == nil {
				continue
			}
			err := RewriteReferences(e.Resource, func(path, ref string) (string, error) {
				ConditionalReference(ref)
				return "Patient/x", nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = RewriteReferences(e.Resource, func(path, ref string) (string, error) {
				if ref != "Patient/x" {
					t.Fatalf("%s kept %q", path, ref)
				}
				return ref, nil
			})
		}
	})
}
