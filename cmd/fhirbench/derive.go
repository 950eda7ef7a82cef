package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Data derivation: the benchmark's patients and observations are copies of the Synthea
// sample (485 patients, 16,067 observations) with new ids, names, birth dates and
// identifiers, so that any number of them keeps the shapes, sizes and value
// distributions of real-looking data instead of invented documents.
//
// Patient n is a copy of source patient n % len(sources), made with its own random
// stream seeded by (seed, n): deriving patient n never depends on the others, so the
// loader can derive in parallel, a re-run with the same seed derives the same documents,
// and -load 0 can recognise what an earlier run loaded from the id alone.

// benchPrefix starts the id of every resource the benchmark writes.
const benchPrefix = "bench-"

// familyEndings are appended to a source family name to make a new one that still
// starts with it. They are common English surname endings, so the results look like
// names ("Smithson", "Haleyman") rather than noise.
var familyEndings = []string{"son", "s", "er", "ton", "ley", "man", "berg", "ford"}

// latestBirth keeps shifted birth dates inside the era the sample was generated in
// (2019): a date after it would be a patient born after their own observations.
var latestBirth = time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)

// maxBirthShiftDays bounds the birth date shift: ±10 years keeps the age distribution
// of the sample while spreading 485 source dates over most days of the calendar.
const maxBirthShiftDays = 3652

// Source is the Synthea sample, parsed once and only read afterwards (derived documents
// share its unchanged parts).
type Source struct {
	Patients     []map[string]any
	Observations []map[string]any
	// obsBySubject lists the indexes in Observations of each source patient's
	// observations, by patient id.
	obsBySubject map[string][]int
}

// Ident is a system|value pair: a patient identifier or an observation code.
type Ident struct {
	System, Value string
}

// PatientInfo is what the benchmark remembers of a loaded patient to build requests.
type PatientInfo struct {
	// N is the derivation index, or -1 for a patient the benchmark did not derive.
	N  int
	ID string
	// Family is the official family name as stored; FamilyQuery is what a search for
	// the patient sends (see familyName).
	Family, FamilyQuery string
	BirthDate           string
	Identifiers         []Ident
	// Codes are the distinct codes of the patient's derived observations.
	Codes []Ident
}

// Deriver makes benchmark documents from a Source.
type Deriver struct {
	src  *Source
	seed uint64
}

// NewDeriver returns a Deriver of src with the given seed.
func NewDeriver(src *Source, seed uint64) *Deriver { return &Deriver{src: src, seed: seed} }

// FindDataDir returns the directory of the Synthea data: dir when given, else
// $FHIRBOX_SYNTHEA when set (a larger extract, say), else the repository's sample,
// testdata/synthea under the repository root (found by looking for go.mod upwards from
// the working directory).
func FindDataDir(dir string) (string, error) {
	if dir != "" {
		return dir, checkDataDir(dir)
	}
	if env := os.Getenv("FHIRBOX_SYNTHEA"); env != "" {
		return env, checkDataDir(env)
	}
	root, ok := repoRoot()
	if !ok {
		return "", fmt.Errorf("no Synthea data: not inside the repository (no go.mod above the working directory), and neither -data nor FHIRBOX_SYNTHEA is set")
	}
	dir = filepath.Join(root, "testdata", "synthea")
	return dir, checkDataDir(dir)
}

// checkDataDir reports whether dir holds the patients, gzipped (as the repository's
// sample) or not (as the full extract).
func checkDataDir(dir string) error {
	f, err := openNDJSON(dir, "patients.ndjson")
	if err != nil {
		return fmt.Errorf("no Synthea data in %s: %w", dir, err)
	}
	return f.Close()
}

func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// openNDJSON opens name.gz in dir, decompressing it, or else name; an error satisfying
// os.IsNotExist when neither is there.
func openNDJSON(dir, name string) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(dir, name+".gz"))
	if os.IsNotExist(err) {
		return os.Open(filepath.Join(dir, name))
	}
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s.gz: %w", name, err)
	}
	return gzipFile{zr, f}, nil
}

// gzipFile reads through the gzip reader and closes both it and the file.
type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}

// LoadSource reads patients and, when present, observations from dir (see openNDJSON).
func LoadSource(dir string) (*Source, error) {
	f, err := openNDJSON(dir, "patients.ndjson")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var obs io.Reader = strings.NewReader("")
	if g, err := openNDJSON(dir, "observations.ndjson"); err == nil {
		defer g.Close()
		obs = g
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return ParseSource(f, obs)
}

// ParseSource reads a Source from NDJSON patients and observations.
func ParseSource(patients, observations io.Reader) (*Source, error) {
	src := &Source{obsBySubject: map[string][]int{}}
	var err error
	if src.Patients, err = readNDJSON(patients); err != nil {
		return nil, fmt.Errorf("patients: %w", err)
	}
	if len(src.Patients) == 0 {
		return nil, fmt.Errorf("patients: no resources")
	}
	if src.Observations, err = readNDJSON(observations); err != nil {
		return nil, fmt.Errorf("observations: %w", err)
	}
	for i, o := range src.Observations {
		if ref, ok := dig(o, "subject", "reference").(string); ok {
			id := strings.TrimPrefix(ref, "Patient/")
			src.obsBySubject[id] = append(src.obsBySubject[id], i)
		}
	}
	return src, nil
}

func readNDJSON(r io.Reader) ([]map[string]any, error) {
	var docs []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		// Numbers stay as written (valueDecimal has 16 digits) when re-encoded.
		d.UseNumber()
		var doc map[string]any
		if err := d.Decode(&doc); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		docs = append(docs, doc)
	}
	return docs, sc.Err()
}

// PatientID is the id of derived patient n.
func PatientID(n int) string { return benchPrefix + strconv.Itoa(n) }

// ObservationID is the id of derived observation k of patient n.
func ObservationID(n, k int) string { return PatientID(n) + "-obs-" + strconv.Itoa(k) }

// ParsePatientID returns n of a derived patient id, or -1.
func ParsePatientID(id string) int {
	s, ok := strings.CutPrefix(id, benchPrefix)
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || PatientID(n) != id {
		return -1
	}
	return n
}

// stream is the random stream of one derived document; kind keeps the streams of a
// patient and of its observations apart.
func (d *Deriver) stream(kind uint64, n int) *rand.Rand {
	return rand.New(rand.NewPCG(d.seed^kind*0x9e3779b97f4a7c15, uint64(n)))
}

const (
	kindPatient     = 1
	kindObservation = 2
)

// PatientDoc returns derived patient n, with its id, and what requests need of it.
// Only the fields it changes are copied; the rest is shared with the Source, so the
// result must not be modified below its top level, its name and identifier lists and
// its text.
func (d *Deriver) PatientDoc(n int) (map[string]any, PatientInfo) {
	rng := d.stream(kindPatient, n)
	s := d.src.Patients[n%len(d.src.Patients)]
	copyNo := n / len(d.src.Patients)
	doc := shallow(s)
	info := PatientInfo{N: n, ID: PatientID(n)}
	doc["id"] = info.ID

	// Names: one decision per patient, applied to each of its names (official and
	// maiden), so a family and its variant always go together.
	ending, variant := familyVariant(copyNo, rng)
	if names, ok := s["name"].([]any); ok {
		out := make([]any, len(names))
		for i, nm := range names {
			m, ok := nm.(map[string]any)
			if !ok {
				out[i] = nm
				continue
			}
			m = shallow(m)
			if fam, ok := m["family"].(string); ok {
				full, query := familyName(fam, ending, copyNo, variant)
				m["family"] = full
				if info.Family == "" {
					info.Family, info.FamilyQuery = full, query
				}
			}
			out[i] = m
		}
		doc["name"] = out
	}
	// A new family name is a word few patients share at any population size: the
	// narrative names it, so that _text (search-text) has a long-tail word to find.
	// Synthea's narratives say only "Generated by Synthea…", the same words for every
	// patient. The other patients' narratives stay as they were.
	if variant && info.Family != "" {
		if t, ok := s["text"].(map[string]any); ok {
			if div, ok := t["div"].(string); ok {
				t = shallow(t)
				t["div"] = narrateFamily(div, info.Family)
				doc["text"] = t
			}
		}
	}

	shift := rng.IntN(2*maxBirthShiftDays+1) - maxBirthShiftDays
	if bd, ok := s["birthDate"].(string); ok {
		if t, err := time.Parse(time.DateOnly, bd); err == nil {
			nt := t.AddDate(0, 0, shift)
			if nt.After(latestBirth) {
				// Clamping only moves the date earlier, so a deceasedDateTime
				// shifted by the same days stays after it.
				nt = latestBirth.AddDate(0, 0, -rng.IntN(365))
			}
			info.BirthDate = nt.Format(time.DateOnly)
			doc["birthDate"] = info.BirthDate
		}
	}
	if dd, ok := s["deceasedDateTime"].(string); ok {
		if t, err := time.Parse(time.RFC3339, dd); err == nil {
			doc["deceasedDateTime"] = t.AddDate(0, 0, shift).Format(time.RFC3339)
		}
	}

	if ids, ok := s["identifier"].([]any); ok {
		out := make([]any, len(ids))
		// Synthea repeats one value under two systems (its own and the MR number):
		// the copies keep repeating it, as a new value.
		renamed := map[string]string{}
		for i, x := range ids {
			m, ok := x.(map[string]any)
			if !ok {
				out[i] = x
				continue
			}
			m = shallow(m)
			if v, ok := m["value"].(string); ok {
				nv, seen := renamed[v]
				if !seen {
					nv = newIdentifierValue(v, rng)
					renamed[v] = nv
				}
				m["value"] = nv
				sys, _ := m["system"].(string)
				info.Identifiers = append(info.Identifiers, Ident{sys, nv})
			}
			out[i] = m
		}
		doc["identifier"] = out
	}
	return doc, info
}

// familyVariant decides whether copy copyNo of a source patient keeps the source family
// name (variant false) or gets a new one made with ending. The original copies (copyNo
// 0) keep theirs. Afterwards half the copies keep it, which makes every source family a
// common name that grows with the population, as "Smith" does in real data; the other
// half spreads over new, rarer names.
func familyVariant(copyNo int, rng *rand.Rand) (ending string, variant bool) {
	ending = familyEndings[rng.IntN(len(familyEndings))]
	variant = copyNo > 0 && rng.IntN(2) == 0
	return ending, variant
}

// familyName returns a derived family name and the search value used for it.
//
// A variant of "Smith" is "Smithson-12": the ending makes a distinct surname that still
// starts with the source one and the copy number makes it one of a long tail of rare
// names, as real populations have. The search value drops the number ("Smith",
// "Smithson"): it is what a user types, and as a prefix search (FHIR's default for
// strings) "Smith" also finds every "Smithson-12", "Smithers-3" and any other source
// family it starts. So a family search matches about copies/2 patients plus its
// variants: the result set grows linearly with the population, as it would for a
// real surname, and the benchmark measures search cost at realistic match counts, not
// at a single exact hit.
func familyName(base, ending string, copyNo int, variant bool) (full, query string) {
	if !variant {
		return base, base
	}
	q := base + ending
	return q + "-" + strconv.Itoa(copyNo), q
}

// narrateFamily returns the narrative div with a paragraph naming the family, inside
// the div so that it stays one XHTML element.
func narrateFamily(div, family string) string {
	p := "<p>Family name: " + html.EscapeString(family) + "</p>"
	if i := strings.LastIndex(div, "</div>"); i >= 0 {
		return div[:i] + p + div[i:]
	}
	return div + p
}

// newIdentifierValue returns a new value in the shape of v: a fresh UUID for a UUID
// (unique, as medical record numbers are), otherwise v with every digit replaced.
func newIdentifierValue(v string, rng *rand.Rand) string {
	if isUUID(v) {
		return randomUUID(rng)
	}
	b := []byte(v)
	for i, c := range b {
		if c >= '0' && c <= '9' {
			b[i] = '0' + byte(rng.IntN(10))
		}
	}
	return string(b)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// randomUUID returns a version 4 UUID drawn from rng.
func randomUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// PatientJSON returns the JSON of derived patient n.
func (d *Deriver) PatientJSON(n int) ([]byte, PatientInfo, error) {
	doc, info := d.PatientDoc(n)
	b, err := json.Marshal(doc)
	return b, info, err
}

// CreateJSON returns derived patient n without an id, for POST: the server assigns
// one. The create scenario takes n beyond the loaded ones, so the new patients follow
// the same distributions as the loaded population.
func (d *Deriver) CreateJSON(n int) ([]byte, error) {
	doc, _ := d.PatientDoc(n)
	delete(doc, "id")
	return json.Marshal(doc)
}

// UpdateJSON returns derived patient n with a new phone number and active flag drawn
// from rng: a real change on every update (a server could skip an identical write),
// which leaves every searched value as it was.
func (d *Deriver) UpdateJSON(n int, rng *rand.Rand) ([]byte, error) {
	doc, _ := d.PatientDoc(n)
	doc["telecom"] = []any{map[string]any{
		"system": "phone",
		"value":  fmt.Sprintf("555-%03d-%04d", rng.IntN(1000), rng.IntN(10000)),
		"use":    "home",
	}}
	doc["active"] = rng.IntN(2) == 0
	return json.Marshal(doc)
}

// Observations returns k observations of derived patient n, as JSON with their ids,
// and the distinct codes among them. They are consecutive observations of the patient's
// source patient (the sample lists them by encounter, so a run of them is a realistic
// mix of vital signs and labs), or of the whole sample for the source patients that
// have none; the subject is the derived patient and the encounter reference, which
// would dangle, is dropped.
func (d *Deriver) Observations(n, k int) (ids []string, docs [][]byte, codes []Ident, err error) {
	if k <= 0 || len(d.src.Observations) == 0 {
		return nil, nil, nil, nil
	}
	rng := d.stream(kindObservation, n)
	s := d.src.Patients[n%len(d.src.Patients)]
	sid, _ := s["id"].(string)
	pool := d.src.obsBySubject[sid]
	from := len(pool)
	if from == 0 {
		from = len(d.src.Observations)
	}
	start := rng.IntN(from)
	seen := map[Ident]bool{}
	for i := range k {
		var o map[string]any
		if len(pool) > 0 {
			o = d.src.Observations[pool[(start+i)%len(pool)]]
		} else {
			o = d.src.Observations[(start+i)%len(d.src.Observations)]
		}
		o = shallow(o)
		id := ObservationID(n, i)
		o["id"] = id
		o["subject"] = map[string]any{"reference": "Patient/" + PatientID(n)}
		delete(o, "encounter")
		b, err := json.Marshal(o)
		if err != nil {
			return nil, nil, nil, err
		}
		ids = append(ids, id)
		docs = append(docs, b)
		sys, _ := dig(o, "code", "coding", 0, "system").(string)
		code, _ := dig(o, "code", "coding", 0, "code").(string)
		if c := (Ident{sys, code}); code != "" && !seen[c] {
			seen[c] = true
			codes = append(codes, c)
		}
	}
	return ids, docs, codes, nil
}

// shallow copies the top level of m.
func shallow(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// dig follows a path of object keys (string) and array indexes (int) through a decoded
// JSON value, returning nil where it leads nowhere.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}
