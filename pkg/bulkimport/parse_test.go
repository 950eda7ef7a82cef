package bulkimport

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/format"
)

func readAll(t testing.TB, data string) []*Item {
	t.Helper()
	var items []*Item
	if err := ReadNDJSON("f", strings.NewReader(data), func(it *Item) bool { items = append(items, it); return true }); err != nil {
		t.Fatal(err)
	}
	return items
}

// Lines are numbered from 1 whatever their ending; blank lines are skipped, not
// reported; each bad line says why; a line longer than the buffer is read whole.
func TestReadNDJSON(t *testing.T) {
	long := `{"resourceType":"Patient","id":"long","text":{"status":"generated","div":"` + strings.Repeat("x", 600<<10) + `"}}`
	data := "{\"resourceType\":\"Patient\",\"id\":\"a\"}\r\n\n  \n" +
		"{\"resourceType\":\"Patient\"}\n" +
		"{\"id\":\"x\"}\n" +
		"{\"resourceType\":\"Patient\",\"id\":\"bad id!\"}\n" +
		"[1]\n" + long + "\n" +
		"{\"resourceType\":\"Patient\",\"id\":\"last\"}"
	items := readAll(t, data)
	want := []struct{ where, id, err string }{
		{"f:1", "a", ""},
		{"f:4", "", "has no id"},
		{"f:5", "", "no resourceType"},
		{"f:6", "", "invalid id"},
		{"f:7", "", "object"},
		{"f:8", "long", ""},
		{"f:9", "last", ""},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.Where != w.where || it.ID != w.id || (w.err == "") != (it.Err == nil) || (it.Err != nil && !strings.Contains(it.Err.Error(), w.err)) {
			t.Errorf("item %d: %s %q %v, want %s %q %q", i, it.Where, it.ID, it.Err, w.where, w.id, w.err)
		}
	}
}

// A line over MaxLine is reported, not kept, and the lines after it are read.
func TestReadNDJSONTooLong(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 16 MiB")
	}
	data := strings.Repeat("x", MaxLine+10) + "\n{\"resourceType\":\"Patient\",\"id\":\"a\"}\n"
	items := readAll(t, data)
	if len(items) != 2 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), "longer than") || items[1].ID != "a" || items[1].Where != "f:2" {
		t.Fatalf("%+v", items)
	}
}

// A transaction Bundle's entries keep the ids their urn:uuid fullUrls name, references
// to them become Type/id, and an entry without a resource is reported.
func TestParseBundle(t *testing.T) {
	b := `{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
{"fullUrl":"urn:uuid:22222222-2222-4222-8222-222222222222","resource":{"resourceType":"Observation","id":"o1","subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"},"focus":[{"reference":"Patient/other"}]}},
{"request":{"method":"DELETE","url":"Patient/x"}}]}`
	items := parseBundle("b.json", []byte(b))
	if len(items) != 3 || items[0].ID != "11111111-1111-4111-8111-111111111111" || items[1].ID != "o1" || items[2].Err == nil || items[2].Where != "b.json: entry 2" {
		t.Fatalf("%+v", items)
	}
	doc, err := format.DecodeJSON(items[1].Raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc["subject"].(map[string]any)["reference"]; got != "Patient/11111111-1111-4111-8111-111111111111" {
		t.Errorf("subject %v", got)
	}
	if got := doc["focus"].([]any)[0].(map[string]any)["reference"]; got != "Patient/other" {
		t.Errorf("focus %v", got)
	}
	for _, c := range []struct{ doc, want string }{
		{`{"resourceType":"Bundle","type":"document"}`, `type "document"`},
		{`{"resourceType":"Patient"}`, "has no id"},
		{`not json`, "invalid JSON"},
	} {
		items := parseBundle("x.json", []byte(c.doc))
		if len(items) != 1 || items[0].Err == nil || !strings.Contains(items[0].Err.Error(), c.want) {
			t.Errorf("%s: %+v, want %q", c.doc, items, c.want)
		}
	}
	if items := parseBundle("p.json", []byte(`{"resourceType":"Patient","id":"p"}`)); len(items) != 1 || items[0].Err != nil || items[0].ID != "p" {
		t.Errorf("a single resource: %+v", items)
	}
}

// Directories are walked recursively, sorted, keeping only the kinds imported.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b/2.ndjson", "b/1.ndjson.gz", "a.json", "c.txt", "b/sub/0.JSON", "d.jsonl"} {
		p := filepath.Join(dir, f)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, total, err := Files([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(dir, f)
		rel = append(rel, r)
	}
	if got := strings.Join(rel, " "); got != "a.json b/1.ndjson.gz b/2.ndjson b/sub/0.JSON d.jsonl" || total != 10 {
		t.Errorf("%s (%d bytes)", got, total)
	}
	if _, _, err := Files([]string{filepath.Join(dir, "c.txt")}); err == nil {
		t.Error("a .txt file named is accepted")
	}
}

// The comparison behind "unchanged": meta's versionId and lastUpdated aside, and
// numbers by value, documents must be equal.
func TestSameDoc(t *testing.T) {
	dec := func(s string) map[string]any {
		d, err := format.DecodeJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	stored := `{"resourceType":"Observation","id":"o","meta":{"versionId":"3","lastUpdated":"2026-01-01T00:00:00.000Z"},"valueQuantity":{"value":100}}`
	for _, c := range []struct {
		doc  string
		same bool
	}{
		{`{"resourceType":"Observation","id":"o","valueQuantity":{"value":100}}`, true},
		{`{"resourceType":"Observation","id":"o","valueQuantity":{"value":1e2}}`, true},
		{`{"resourceType":"Observation","id":"o","meta":{"versionId":"1"},"valueQuantity":{"value":100}}`, true},
		{`{"resourceType":"Observation","id":"o","meta":{"source":"x"},"valueQuantity":{"value":100}}`, false},
		{`{"resourceType":"Observation","id":"o","valueQuantity":{"value":101}}`, false},
		{`{"resourceType":"Observation","id":"o","status":"final","valueQuantity":{"value":100}}`, false},
		{`{"resourceType":"Observation","id":"o"}`, false},
	} {
		if got := sameDoc(dec(stored), dec(c.doc)); got != c.same {
			t.Errorf("%s: same %v, want %v", c.doc, got, c.same)
		}
	}
}

// FuzzReadNDJSON: no input makes the reader panic, every item either holds a resource
// with a type and a valid id or says why not, and lines are numbered in order.
func FuzzReadNDJSON(f *testing.F) {
	f.Add([]byte("{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\n{\"resourceType\":\"Patient\"}\r\n[]"))
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:x","resource":{"resourceType":"Patient"}}]}`))
	f.Add([]byte("\xff\xfe{\"a\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		last := 0
		check := func(it *Item) {
			if it.Err == nil && (it.Type == "" || it.ID == "" || it.Doc == nil || len(it.Raw) == 0) {
				t.Fatalf("an item without a resource or a reason: %+v", it)
			}
		}
		err := ReadNDJSON("f", bytes.NewReader(data), func(it *Item) bool {
			check(it)
			var n int
			if _, err := lineOf(it.Where, &n); err != nil || n <= last {
				t.Fatalf("line %q after %d", it.Where, last)
			}
			last = n
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range parseBundle("b.json", data) {
			check(it)
			if it.Err == nil && !json.Valid(it.Raw) {
				t.Fatalf("a Bundle entry's Raw is not JSON: %s", it.Raw)
			}
		}
	})
}

// lineOf reads the line number of a "f:N" place.
func lineOf(where string, n *int) (int, error) {
	_, num, _ := strings.Cut(where, ":")
	v := 0
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, os.ErrInvalid
		}
		v = v*10 + int(c-'0')
	}
	*n = v
	return 1, nil
}
