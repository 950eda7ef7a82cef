package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// Round trip: everything exported from one backend, loaded into an empty server of
// the other (PUT by id, in batch Bundles), and exported again, is the same resources
// with the same content (meta aside: the second server writes its own versions).
func TestExportRoundTrip(t *testing.T) { forEachBackend(t, testExportRoundTrip) }

func testExportRoundTrip(t *testing.T) {
	other := testdb.SQLite
	if backendOf(t) == testdb.SQLite {
		other = testdb.Postgres
	}
	src := newEnv(t)
	dst := newStoreEnv(t, storeEnv{url: other.DatabaseURL(t)})
	put := func(e *env, docs []json.RawMessage) {
		for len(docs) > 0 {
			n := min(len(docs), 500)
			var entries []string
			for _, d := range docs[:n] {
				var h struct{ ResourceType, ID string }
				if err := json.Unmarshal(d, &h); err != nil {
					t.Fatal(err)
				}
				entries = append(entries, fmt.Sprintf(`{"resource":%s,"request":{"method":"PUT","url":"%s/%s"}}`, d, h.ResourceType, h.ID))
			}
			r := e.must(200, post("/fhir", `{"resourceType":"Bundle","type":"batch","entry":[`+strings.Join(entries, ",")+`]}`))
			for i, en := range at(r.doc, "entry").([]any) {
				if s, _ := at(en, "response", "status").(string); !strings.HasPrefix(s, "20") {
					t.Fatalf("entry %d: %s", i, s)
				}
			}
			docs = docs[n:]
		}
	}
	put(src, readNDJSON(t, "patients.ndjson", 0))
	put(src, readNDJSON(t, "observations.ndjson", 1500))

	exportAll := func(e *env) map[string]map[string]any {
		status := e.kickoff(get("/fhir/$export"))
		e.runExports()
		r := e.must(200, get(status))
		var m struct{ Output []struct{ Type, URL string } }
		if err := json.Unmarshal(r.raw, &m); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for _, f := range m.Output {
			body := e.must(200, get(strings.TrimPrefix(f.URL, testBase))).raw
			sc := bufio.NewScanner(bytes.NewReader(body))
			sc.Buffer(nil, 1<<24)
			for sc.Scan() {
				var doc map[string]any
				if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
					t.Fatal(err)
				}
				delete(doc, "meta")
				out[f.Type+"/"+doc["id"].(string)] = doc
			}
		}
		return out
	}
	first := exportAll(src)
	var lines []json.RawMessage
	for _, doc := range first {
		b, _ := json.Marshal(doc)
		lines = append(lines, b)
	}
	put(dst, lines)
	second := exportAll(dst)
	if len(first) != 485+1500 {
		t.Errorf("exported %d resources, want %d", len(first), 485+1500)
	}
	if len(second) != len(first) {
		t.Fatalf("the round trip has %d resources, the first export %d", len(second), len(first))
	}
	for k, v := range first {
		if !reflect.DeepEqual(second[k], v) {
			t.Errorf("%s differs after the round trip", k)
			break
		}
	}
}
