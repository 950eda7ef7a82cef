package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
)

type synObservation struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Subject struct{ Reference string }
	Code    struct {
		Coding []struct{ System, Code string }
	}
	Effective string `json:"effectiveDateTime"`
	Value     *struct {
		Value  json.Number
		System string
		Code   string
	} `json:"valueQuantity"`
}

// TestObservationSearch loads the Synthea observations of a few patients and checks
// reference, token, date and quantity searches against answers computed from the data.
func TestObservationSearch(t *testing.T) { forEachBackend(t, testObservationSearch) }

func testObservationSearch(t *testing.T) {
	e := newEnv(t)
	pats := readNDJSON(t, "patients.ndjson", 12)
	subjects := map[string]bool{}
	for _, raw := range pats {
		var p synPatient
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		e.must(201, put("/Patient/"+p.ID, string(raw)))
		subjects["Patient/"+p.ID] = true
	}
	var obs []synObservation
	for _, raw := range readNDJSON(t, "observations.ndjson", 0) {
		var o synObservation
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		if subjects[o.Subject.Reference] {
			obs = append(obs, o)
			e.must(201, put("/Observation/"+o.ID, string(raw)))
		}
	}
	if len(obs) < 100 {
		t.Fatalf("only %d observations for the first patients", len(obs))
	}
	expect := func(keep func(o synObservation) bool) []string {
		var ids []string
		for _, o := range obs {
			if keep(o) {
				ids = append(ids, o.ID)
			}
		}
		sort.Strings(ids)
		return ids
	}
	hasCode := func(o synObservation, system, code string) bool {
		for _, c := range o.Code.Coding {
			if c.Code == code && (system == "" || c.System == system) {
				return true
			}
		}
		return false
	}
	one := obs[len(obs)/2]
	subj := one.Subject.Reference
	pid := strings.TrimPrefix(subj, "Patient/")
	code := one.Code.Coding[0]
	var withValue synObservation
	for _, o := range obs {
		if o.Value != nil && o.Value.Code != "" {
			withValue = o
			break
		}
	}
	threshold, _ := withValue.Value.Value.Float64()
	tests := []struct {
		name, query string
		want        []string
	}{
		{"subject reference", "subject=" + subj, expect(func(o synObservation) bool { return o.Subject.Reference == subj })},
		{"subject typed id", "subject:Patient=" + pid, expect(func(o synObservation) bool { return o.Subject.Reference == subj })},
		{"patient id", "patient=" + pid, expect(func(o synObservation) bool { return o.Subject.Reference == subj })},
		{"patient and code", "patient=" + pid + "&code=" + url.QueryEscape(code.System+"|"+code.Code),
			expect(func(o synObservation) bool { return o.Subject.Reference == subj && hasCode(o, code.System, code.Code) })},
		{"code without system", "code=" + code.Code, expect(func(o synObservation) bool { return hasCode(o, "", code.Code) })},
		{"code with empty system", "code=" + url.QueryEscape("|"+code.Code), nil},
		{"date ge", "patient=" + pid + "&date=ge" + one.Effective[:10],
			expect(func(o synObservation) bool {
				return o.Subject.Reference == subj && o.Effective[:10] >= one.Effective[:10]
			})},
		{"status", "status=final&patient=" + pid, expect(func(o synObservation) bool { return o.Status == "final" && o.Subject.Reference == subj })},
		{"value-quantity ge", "value-quantity=" + url.QueryEscape("ge"+withValue.Value.Value.String()+"|"+withValue.Value.System+"|"+withValue.Value.Code),
			expect(func(o synObservation) bool {
				if o.Value == nil || o.Value.Code != withValue.Value.Code || o.Value.System != withValue.Value.System {
					return false
				}
				v, _ := o.Value.Value.Float64()
				return v >= threshold
			})},
		{"missing value", "value-quantity:missing=true&patient=" + pid, expect(func(o synObservation) bool { return o.Value == nil && o.Subject.Reference == subj })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.in(t)
			if len(tt.want) == 0 && tt.name != "code with empty system" {
				t.Fatalf("the data has no match for %s: the case tests nothing", tt.query)
			}
			ids, total := allPages(t, e, "/Observation?_count=500&"+tt.query)
			sort.Strings(ids)
			if total != len(tt.want) || strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("%s: found %d (total %d), want %d", tt.query, len(ids), total, len(tt.want))
			}
		})
	}
}

// Concurrent updates of one resource never lose a write: without If-Match each one
// becomes its own version; with the same If-Match exactly one wins and the others get
// 412 (or 409).
func TestConcurrentUpdates(t *testing.T) { forEachBackend(t, testConcurrentUpdates) }

func testConcurrentUpdates(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/c", `{"resourceType":"Patient"}`))
	const workers, each = 8, 5
	var wg sync.WaitGroup
	statuses := make(chan int, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				statuses <- e.do(put("/Patient/c", `{"resourceType":"Patient","active":true}`)).status
			}
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("concurrent update answered %d", s)
		}
	}
	r := e.must(200, get("/Patient/c"))
	if v := at(r.doc, "meta", "versionId"); v != "41" {
		t.Errorf("after %d updates the version is %v, want 41", workers*each, v)
	}
	if h := e.must(200, get("/Patient/c/_history?_count=1")); at(h.doc, "total") != 41.0 {
		t.Errorf("history total %v, want 41", at(h.doc, "total"))
	}

	results := make(chan int, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- e.do(put("/Patient/c", `{"resourceType":"Patient"}`, "If-Match", `W/"41"`)).status
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for s := range results {
		switch s {
		case http.StatusOK:
			won++
		case http.StatusPreconditionFailed, http.StatusConflict:
		default:
			t.Errorf("conditional concurrent update answered %d", s)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d updates with the same If-Match won, want exactly 1", won, workers)
	}
}
