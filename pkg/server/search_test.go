package server_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// syntheaDir is the repository's Synthea sample (testdata/synthea), relative to this
// package.
var syntheaDir = filepath.Join("..", "..", "testdata", "synthea")

// readNDJSON returns the raw lines of a Synthea file (name.gz in syntheaDir), at most
// limit (0: all).
func readNDJSON(t testing.TB, name string, limit int) []json.RawMessage {
	t.Helper()
	f, err := os.Open(filepath.Join(syntheaDir, name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []json.RawMessage
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() && (limit == 0 || len(out) < limit) {
		out = append(out, json.RawMessage(slices.Clone(sc.Bytes())))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type synPatient struct {
	ID         string                           `json:"id"`
	Gender     string                           `json:"gender"`
	BirthDate  string                           `json:"birthDate"`
	Name       []struct{ Family string }        `json:"name"`
	Identifier []struct{ System, Value string } `json:"identifier"`
}

// loadPatients PUTs every Synthea patient through the API, four at a time.
func loadPatients(t *testing.T, e *env) []synPatient {
	t.Helper()
	lines := readNDJSON(t, "patients.ndjson", 0)
	pats := make([]synPatient, len(lines))
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := json.Unmarshal(lines[i], &pats[i]); err != nil {
					t.Error(err)
					continue
				}
				if r := e.do(put("/Patient/"+pats[i].ID, string(lines[i]))); r.status != http.StatusCreated {
					t.Errorf("load %s: %d %s", pats[i].ID, r.status, r.raw)
				}
			}
		}()
	}
	for i := range lines {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return pats
}

// pagePath turns an absolute link into a request path.
func pagePath(t *testing.T, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, testBase+"/") {
		t.Fatalf("link %q is not absolute under %s", link, testBase)
	}
	return strings.TrimPrefix(link, testBase)
}

// allPages follows next links from path and returns every entry's id and the total.
func allPages(t *testing.T, e *env, path string) (ids []string, total int) {
	t.Helper()
	total = -1
	for path != "" && len(ids) < 10000 {
		r := e.must(200, get(path))
		if total < 0 {
			total = int(at(r.doc, "total").(float64))
		}
		ids = append(ids, entryIDs(r)...)
		next := link(r, "next")
		if next == "" {
			break
		}
		path = pagePath(t, next)
	}
	return ids, total
}

func TestSearchSynthea(t *testing.T) { forEachBackend(t, testSearchSynthea) }

func testSearchSynthea(t *testing.T) {
	e := newEnv(t)
	pats := loadPatients(t, e)
	byID := map[string]synPatient{}
	for _, p := range pats {
		byID[p.ID] = p
	}
	expect := func(keep func(p synPatient) bool) []string {
		var ids []string
		for _, p := range pats {
			if keep(p) {
				ids = append(ids, p.ID)
			}
		}
		sort.Strings(ids)
		return ids
	}
	famPrefix := func(prefix string) func(synPatient) bool {
		prefix = resources.NormalizeString(prefix)
		return func(p synPatient) bool {
			for _, n := range p.Name {
				if strings.HasPrefix(resources.NormalizeString(n.Family), prefix) {
					return true
				}
			}
			return false
		}
	}
	some := pats[7]
	someFamily := some.Name[0].Family
	var mrn struct{ System, Value string }
	for _, id := range some.Identifier {
		if id.System != "" && id.Value != "" {
			mrn = id
			break
		}
	}

	// conformance F9: each query finds exactly the patients computed from the data itself.
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all", "", expect(func(synPatient) bool { return true })},
		{"gender token", "gender=female", expect(func(p synPatient) bool { return p.Gender == "female" })},
		{"gender :not", "gender:not=female", expect(func(p synPatient) bool { return p.Gender != "female" })},
		{"family prefix, any case", "family=" + strings.ToUpper(someFamily[:3]), expect(famPrefix(someFamily[:3]))},
		{"family :exact", "family:exact=" + someFamily, expect(func(p synPatient) bool {
			return slices.ContainsFunc(p.Name, func(n struct{ Family string }) bool { return n.Family == someFamily })
		})},
		{"birthdate ge", "birthdate=ge1980-01-01", expect(func(p synPatient) bool { return p.BirthDate >= "1980-01-01" })},
		{"birthdate year", "birthdate=" + some.BirthDate[:4], expect(func(p synPatient) bool { return strings.HasPrefix(p.BirthDate, some.BirthDate[:4]) })},
		{"birthdate range AND", "birthdate=ge1950&birthdate=lt1960", expect(func(p synPatient) bool { return p.BirthDate >= "1950" && p.BirthDate < "1960" })},
		{"gender OR list", "gender=female,male", expect(func(p synPatient) bool { return p.Gender == "female" || p.Gender == "male" })},
		{"identifier system|value", "identifier=" + url.QueryEscape(mrn.System+"|"+mrn.Value), []string{some.ID}},
		{"_id", "_id=" + some.ID + "," + pats[9].ID, expect(func(p synPatient) bool { return p.ID == some.ID || p.ID == pats[9].ID })},
		{"AND across params", "gender=male&birthdate=lt1970", expect(func(p synPatient) bool { return p.Gender == "male" && p.BirthDate < "1970" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := "_count=100"
			if tt.query != "" {
				q += "&" + tt.query
			}
			e := e.in(t)
			ids, total := allPages(t, e, "/Patient?"+q)
			if total != len(tt.want) {
				t.Errorf("total %d, want %d", total, len(tt.want))
			}
			sort.Strings(ids)
			if !slices.Equal(ids, tt.want) {
				t.Errorf("found %d patients, want %d (first difference in %v)", len(ids), len(tt.want), firstDiff(ids, tt.want))
			}
			// conformance F9: POST _search with a form body gives the same results.
			r := e.must(200, req{method: http.MethodPost, path: "/Patient/_search", body: q,
				hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}})
			if got := int(at(r.doc, "total").(float64)); got != len(tt.want) {
				t.Errorf("POST _search total %d, want %d", got, len(tt.want))
			}
		})
	}

	t.Run("F9 bundle shape", func(t *testing.T) {
		e := e.in(t)
		r := e.must(200, get("/fhir/Patient?gender=female&_count=5"))
		if at(r.doc, "type") != "searchset" || at(r.doc, "resourceType") != "Bundle" {
			t.Fatalf("not a searchset: %s", r.raw)
		}
		for i := range 5 {
			full, _ := at(r.doc, "entry", i, "fullUrl").(string)
			id, _ := at(r.doc, "entry", i, "resource", "id").(string)
			if full != testBase+"/fhir/Patient/"+id {
				t.Errorf("fullUrl %q for id %q", full, id)
			}
			if at(r.doc, "entry", i, "search", "mode") != "match" {
				t.Errorf("entry %d search.mode %v", i, at(r.doc, "entry", i, "search", "mode"))
			}
		}
		self, _ := url.Parse(link(r, "self"))
		if self == nil || self.Query().Get("gender") != "female" {
			t.Errorf("self link %q", link(r, "self"))
		}
		if link(r, "next") == "" {
			t.Error("no next link on a partial page")
		}
		r2 := e.must(200, get(pagePath(t, link(r, "next"))))
		if link(r2, "previous") == "" {
			t.Error("no previous link on page 2")
		}
		if slices.ContainsFunc(entryIDs(r2), func(id string) bool { return slices.Contains(entryIDs(r), id) }) {
			t.Error("page 2 repeats entries of page 1")
		}
	})

	t.Run("F10 count", func(t *testing.T) {
		e := e.in(t)
		r := e.must(200, get("/Patient?_count=3"))
		if len(entryIDs(r)) != 3 || link(r, "next") == "" || int(at(r.doc, "total").(float64)) != len(pats) {
			t.Errorf("_count=3: %d entries, next %q, total %v", len(entryIDs(r)), link(r, "next"), at(r.doc, "total"))
		}
		for _, q := range []string{"_count=0", "_summary=count"} {
			r = e.must(200, get("/Patient?gender=male&"+q))
			if at(r.doc, "entry") != nil || int(at(r.doc, "total").(float64)) != len(expect(func(p synPatient) bool { return p.Gender == "male" })) {
				t.Errorf("%s: %s", q, r.raw)
			}
		}
		e.must(400, get("/Patient?_count=abc"))
	})

	t.Run("F11 sort", func(t *testing.T) {
		e := e.in(t)
		ids, _ := allPages(t, e, "/Patient?_sort=gender,-birthdate&_count=200")
		if len(ids) != len(pats) {
			t.Fatalf("sorted walk found %d of %d", len(ids), len(pats))
		}
		for i := 1; i < len(ids); i++ {
			a, b := byID[ids[i-1]], byID[ids[i]]
			if a.Gender > b.Gender || (a.Gender == b.Gender && a.BirthDate < b.BirthDate) {
				t.Fatalf("out of order at %d: %s/%s before %s/%s", i, a.Gender, a.BirthDate, b.Gender, b.BirthDate)
			}
		}
		e.must(400, get("/Patient?_sort=nosuchparam"))
	})

	t.Run("F12 elements", func(t *testing.T) {
		e := e.in(t)
		r := e.must(200, get("/Patient?_elements=birthDate&_count=3"))
		for i := range 3 {
			res, _ := at(r.doc, "entry", i, "resource").(map[string]any)
			for k := range res {
				if k != "id" && k != "meta" && k != "resourceType" && k != "birthDate" {
					t.Errorf("element %q kept by _elements=birthDate", k)
				}
			}
			if res["birthDate"] == nil {
				t.Error("birthDate dropped")
			}
			if !strings.Contains(string(mustJSON(t, res["meta"])), "SUBSETTED") {
				t.Errorf("no SUBSETTED tag: %v", res["meta"])
			}
		}
	})

	t.Run("F13 unknown parameters", func(t *testing.T) {
		e := e.in(t)
		r := e.must(200, get("/Patient?gender=female&colour=blue&_count=1"))
		if strings.Contains(link(r, "self"), "colour") {
			t.Errorf("self link keeps the ignored parameter: %s", link(r, "self"))
		}
		if !strings.Contains(link(r, "self"), "gender=female") {
			t.Errorf("self link drops a used parameter: %s", link(r, "self"))
		}
		msg := outcomeText(t, e.must(400, get("/Patient?gender=female&colour=blue", "Prefer", "handling=strict")))
		if !strings.Contains(msg, "colour") {
			t.Errorf("strict error %q does not name the parameter", msg)
		}
		e.must(400, get("/Patient?birthdate=notadate"))
		e.must(400, get("/Patient?gender:fuzzy=x"))
	})

	t.Run("F17 both bases", func(t *testing.T) {
		e := e.in(t)
		a := e.must(200, get("/Patient?gender=male&_sort=_id&_count=10"))
		b := e.must(200, get("/fhir/Patient?gender=male&_sort=_id&_count=10"))
		if !slices.Equal(entryIDs(a), entryIDs(b)) {
			t.Error("/Patient and /fhir/Patient found different patients")
		}
		if f, _ := at(a.doc, "entry", 0, "fullUrl").(string); !strings.HasPrefix(f, testBase+"/Patient/") {
			t.Errorf("/ base fullUrl %q", f)
		}
		if a.header.Get("Content-Type") == b.header.Get("Content-Type") {
			t.Logf("both bases answer %s", a.header.Get("Content-Type"))
		}
	})
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return "got " + x + " want " + y
		}
	}
	return "none"
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// conformance F16: the CapabilityStatement names FHIR 4.0.1 and the types and parameters
// served.
func TestMetadataListsTypesAndSearchParams(t *testing.T) {
	forEachBackend(t, testMetadataListsTypesAndSearchParams)
}

func testMetadataListsTypesAndSearchParams(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/metadata", "/fhir/metadata"} {
		r := e.must(200, req{method: http.MethodGet, path: path, anonymous: true})
		if at(r.doc, "resourceType") != "CapabilityStatement" || at(r.doc, "fhirVersion") != "4.0.1" {
			t.Fatalf("%s: %s", path, r.raw[:min(len(r.raw), 300)])
		}
		var patient map[string]any
		for _, res := range at(r.doc, "rest", 0, "resource").([]any) {
			if at(res, "type") == "Patient" {
				patient = res.(map[string]any)
			}
		}
		if patient == nil {
			t.Fatalf("%s: Patient not listed", path)
		}
		var names []string
		for _, sp := range at(patient, "searchParam").([]any) {
			names = append(names, at(sp, "name").(string))
		}
		for _, want := range []string{"family", "birthdate", "identifier", "gender", "_id"} {
			if !slices.Contains(names, want) {
				t.Errorf("%s: Patient searchParam %q missing from %v", path, want, names)
			}
		}
	}
}
