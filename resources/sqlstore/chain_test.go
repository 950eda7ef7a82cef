package sqlstore

import (
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

var (
	tName    = &resources.SearchParam{Name: "name", Type: resources.TypeString}
	tGender  = &resources.SearchParam{Name: "gender", Type: resources.TypeToken}
	tSubject = &resources.SearchParam{Name: "subject", Type: resources.TypeReference}
	tOrg     = &resources.SearchParam{Name: "organization", Type: resources.TypeReference}
)

// whereSQL is the condition b.where writes for q, the first clause driving a MatchIn
// search.
func whereSQL(t *testing.T, q *resources.Query, matchIn bool) string {
	t.Helper()
	b := &builder{d: &Dialect{Name: "test", MatchIn: matchIn}}
	if matchIn {
		b.driver = &q.Clauses[0]
	}
	if err := b.where(q); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The SQL of searches without chains is what it was before chains (their plans are
// measured, BENCHMARKS.md): the resource alias is r, the index alias s.
func TestPlainSearchSQL(t *testing.T) {
	q := &resources.Query{Type: "Patient", Clauses: []resources.Clause{
		{Param: tName, Values: []resources.Value{{Str: "a"}}},
		{Param: tGender, Modifier: "not", Values: []resources.Value{{Code: "x", MatchCode: true}}},
	}}
	for in, want := range map[bool]string{
		false: `r.resource_type = $1 AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_string s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = $2 AND ((s.value LIKE $3 ESCAPE '\'))) AND NOT EXISTS (SELECT 1 FROM search_token s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = $4 AND ((s.code = $5)))`,
		true:  `r.resource_type = $1 AND NOT r.deleted AND r.id IN (SELECT s.id FROM search_string s WHERE s.resource_type = $2 AND s.param = $3 AND ((s.value LIKE $4 ESCAPE '\'))) AND NOT EXISTS (SELECT 1 FROM search_token s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = $5 AND ((s.code = $6)))`,
	} {
		if got := whereSQL(t, q, in); got != want {
			t.Errorf("MatchIn %v:\n got %s\nwant %s", in, got, want)
		}
	}
}

// Each link of a chain has an alias of its own level; a last clause that requires an
// index row selects the ids from the index, any other tests the level's live resources.
func TestChainSQL(t *testing.T) {
	forward := resources.Clause{Param: tName, Values: []resources.Value{{Str: "peter"}}, Chain: []resources.ChainLink{
		{Param: tSubject, Types: []string{"Patient"}},
		{Param: tOrg, Types: []string{"Organization"}},
	}}
	reverse := resources.Clause{Param: tGender, Modifier: "missing", Missing: true, Chain: []resources.ChainLink{
		{Param: tSubject, Types: []string{"Observation"}, Reverse: true},
	}}
	for _, tc := range []struct {
		name    string
		typ     string
		c       resources.Clause
		matchIn bool
		want    string
	}{
		{"forward", "Observation", forward, false, `r.resource_type = $1 AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = r.resource_type AND c1.id = r.id AND c1.param = $2 AND (c1.target_type = $3 AND c1.target_id IN (SELECT c2.id FROM search_reference c2 WHERE c2.resource_type = $4 AND c2.param = $5 AND (c2.target_type = $6 AND c2.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = $7 AND s.param = $8 AND ((s.value LIKE $9 ESCAPE '\')))))))`},
		{"forward MatchIn", "Observation", forward, true, `r.resource_type = $1 AND NOT r.deleted AND r.id IN (SELECT c1.id FROM search_reference c1 WHERE c1.resource_type = $2 AND c1.param = $3 AND (c1.target_type = $4 AND c1.target_id IN (SELECT c2.id FROM search_reference c2 WHERE c2.resource_type = $5 AND c2.param = $6 AND (c2.target_type = $7 AND c2.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = $8 AND s.param = $9 AND ((s.value LIKE $10 ESCAPE '\')))))))`},
		{"reverse, negated last clause", "Patient", reverse, false, `r.resource_type = $1 AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = $2 AND c1.param = $3 AND c1.target_type = $4 AND c1.target_id = r.id AND c1.id IN (SELECT r1.id FROM resource r1 WHERE r1.resource_type = $5 AND NOT r1.deleted AND NOT EXISTS (SELECT 1 FROM search_token s WHERE s.resource_type = r1.resource_type AND s.id = r1.id AND s.param = $6)))`},
		{"reverse MatchIn", "Patient", reverse, true, `r.resource_type = $1 AND NOT r.deleted AND r.id IN (SELECT c1.target_id FROM search_reference c1 WHERE c1.resource_type = $2 AND c1.param = $3 AND c1.target_type = $4 AND c1.id IN (SELECT r1.id FROM resource r1 WHERE r1.resource_type = $5 AND NOT r1.deleted AND NOT EXISTS (SELECT 1 FROM search_token s WHERE s.resource_type = r1.resource_type AND s.id = r1.id AND s.param = $6)))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			got := whereSQL(t, &resources.Query{Type: tc.typ, Clauses: []resources.Clause{c}}, tc.matchIn)
			if got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
			if strings.Contains(got, "peter") {
				t.Errorf("a value is written into the SQL")
			}
		})
	}
}

// A link to several target types is one IN over (type, id) pairs, each type's matches
// selected with their type; with MatchIn (SQLite) an OR of one IN per type.
func TestChainSQLTypes(t *testing.T) {
	c := resources.Clause{Param: tName, Values: []resources.Value{{Str: "p"}}, Chain: []resources.ChainLink{
		{Param: tSubject, Types: []string{"Patient", "Practitioner"}},
	}}
	got := whereSQL(t, &resources.Query{Type: "Observation", Clauses: []resources.Clause{c}}, false)
	want := `r.resource_type = $1 AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = r.resource_type AND c1.id = r.id AND c1.param = $2 AND (c1.target_type, c1.target_id) IN (SELECT s.resource_type, s.id FROM search_string s WHERE s.resource_type = $3 AND s.param = $4 AND ((s.value LIKE $5 ESCAPE '\')) UNION ALL SELECT s.resource_type, s.id FROM search_string s WHERE s.resource_type = $6 AND s.param = $7 AND ((s.value LIKE $8 ESCAPE '\'))))`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	got = whereSQL(t, &resources.Query{Type: "Observation", Clauses: []resources.Clause{c}}, true)
	want = `r.resource_type = $1 AND NOT r.deleted AND r.id IN (SELECT c1.id FROM search_reference c1 WHERE c1.resource_type = $2 AND c1.param = $3 AND ((c1.target_type = $4 AND c1.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = $5 AND s.param = $6 AND ((s.value LIKE $7 ESCAPE '\')))) OR (c1.target_type = $8 AND c1.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = $9 AND s.param = $10 AND ((s.value LIKE $11 ESCAPE '\'))))))`
	if got != want {
		t.Errorf("MatchIn:\n got %s\nwant %s", got, want)
	}
}
