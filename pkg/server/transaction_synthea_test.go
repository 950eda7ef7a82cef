package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
)

// syntheaBundle is one Synthea patient as an EHR sends it: a transaction of the Patient
// and all its Observations, which refer to it by its urn:uuid fullUrl.
type syntheaBundle struct {
	patientID string // the id in the sample, not the one the server assigns
	entries   int
	body      []byte
}

// syntheaTransactions builds the transaction (or batch, typ) Bundle of every Synthea
// patient that has Observations, the largest first. The patient's id goes, POST assigns
// one; each Observation's subject becomes the Patient's urn:uuid.
func syntheaTransactions(t testing.TB, typ string) []syntheaBundle {
	t.Helper()
	patients := map[string]map[string]any{}
	for _, raw := range readNDJSON(t, "patients.ndjson", 0) {
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		patients[p["id"].(string)] = p
	}
	obs := map[string][]map[string]any{}
	for _, raw := range readNDJSON(t, "observations.ndjson", 0) {
		var o map[string]any
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		ref, _ := at(o, "subject", "reference").(string)
		obs[ref] = append(obs[ref], o)
	}
	var out []syntheaBundle
	for id, p := range patients {
		list := obs["Patient/"+id]
		if len(list) == 0 {
			continue
		}
		urn := "urn:uuid:" + uuid.NewString()
		delete(p, "id")
		entries := []any{map[string]any{"fullUrl": urn, "resource": p, "request": map[string]any{"method": "POST", "url": "Patient"}}}
		for _, o := range list {
			delete(o, "id")
			o["subject"] = map[string]any{"reference": urn}
			if typ == "batch" {
				o["subject"] = map[string]any{"reference": "Patient/" + id}
			}
			entries = append(entries, map[string]any{"fullUrl": "urn:uuid:" + uuid.NewString(), "resource": o,
				"request": map[string]any{"method": "POST", "url": "Observation"}})
		}
		b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, syntheaBundle{patientID: id, entries: len(entries), body: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].entries > out[j].entries })
	return out
}

// The transaction Bundles of realistic Synthea patients load whole: the largest (473
// entries) and a median one (89); every Observation ends up referring to the Patient's
// new id.
func TestTransactionSynthea(t *testing.T) { forEachBackend(t, testTransactionSynthea) }

func testTransactionSynthea(t *testing.T) {
	e := newEnv(t)
	all := syntheaTransactions(t, "transaction")
	for _, b := range []syntheaBundle{all[0], all[len(all)/2]} {
		start := time.Now()
		r := e.must(http.StatusOK, post("/fhir", string(b.body)))
		took := time.Since(start)
		entries, _ := at(r.doc, "entry").([]any)
		if len(entries) != b.entries {
			t.Fatalf("patient %s: %d response entries, want %d", b.patientID, len(entries), b.entries)
		}
		for i := range entries {
			if s := entryStatus(r, i); s != "201 Created" {
				t.Fatalf("patient %s entry %d: %s", b.patientID, i, s)
			}
		}
		pid := entryIDs(r)[0]
		if n := e.total("/fhir/Observation?_summary=count&subject=Patient/" + pid); n != b.entries-1 {
			t.Errorf("patient %s: %d Observations refer to Patient/%s, want %d", b.patientID, n, pid, b.entries-1)
		}
		t.Logf("%s: %d entries in %v", backendOf(t), b.entries, took.Round(time.Millisecond))
	}
}

// BenchmarkBundles loads Synthea patients of about 300 entries (Patient and its
// Observations) as transactions, as batches, and as single creates, one request at a
// time through the router, and reports the p50 per Bundle and the entries a second of
// each. Bounded: 12 Bundles per kind and run.
func BenchmarkBundles(b *testing.B) { benchEachBackend(b, benchBundles) }

func benchBundles(b *testing.B) {
	e := newEnv(b)
	tx := syntheaTransactions(b, "transaction")
	batch := syntheaTransactions(b, "batch")
	// The patients closest to 300 entries.
	near := func(list []syntheaBundle) []syntheaBundle {
		sorted := slices.Clone(list)
		sort.Slice(sorted, func(i, j int) bool { return abs(sorted[i].entries-300) < abs(sorted[j].entries-300) })
		return sorted[:12]
	}
	txs, batches := near(tx), near(batch)
	for i := 0; i < b.N; i++ {
		for _, kind := range []struct {
			name string
			list []syntheaBundle
		}{{"transaction", txs}, {"batch", batches}} {
			var times []time.Duration
			entries := 0
			for _, bb := range kind.list {
				start := time.Now()
				e.must(http.StatusOK, post("/fhir", string(bb.body)))
				times = append(times, time.Since(start))
				entries += bb.entries
			}
			report(b, kind.name, times, entries)
		}
		// Single creates of the same Observations, one request each.
		var times []time.Duration
		entries := 0
		for _, bb := range batches[:3] {
			var doc struct {
				Entry []struct{ Resource json.RawMessage } `json:"entry"`
			}
			if err := json.Unmarshal(bb.body, &doc); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for _, en := range doc.Entry[1:] {
				e.must(http.StatusCreated, post("/fhir/Observation", string(en.Resource)))
			}
			times = append(times, time.Since(start))
			entries += len(doc.Entry) - 1
		}
		report(b, "single", times, entries)
	}
}

func report(b *testing.B, kind string, times []time.Duration, entries int) {
	var total time.Duration
	for _, d := range times {
		total += d
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), kind+"-p50-ms")
	b.ReportMetric(float64(entries)/total.Seconds(), kind+"-entries/s")
	b.Logf("%s %s: %d bundles, %d entries, p50 %v, max %v, %.0f entries/s", backendOf(b), kind, len(times), entries,
		times[len(times)/2].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), float64(entries)/total.Seconds())
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
