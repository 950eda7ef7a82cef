package app

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// An import's look-up of a batch's ids reads each by the primary key, on a table the
// import has grown since PostgreSQL last analyzed it: the IN list it replaced was
// planned from the statistics, and during imports as a read of the type's whole
// last_updated index, once a batch.
func TestImportLookupPlan(t *testing.T) {
	ctx := context.Background()
	db, err := ParseDatabase(testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.SQL().Exec(`INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
SELECT 'Observation', 'o' || g, 1, now(), false, jsonb_build_object('text', repeat('x', 1000)) FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = fmt.Sprintf("o%d", 40*i+1)
	}
	q, args := lookupQuery(true, "Observation", ids)
	rows, err := st.SQL().Query("EXPLAIN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	// Each id looked up by the key (an index scan per id), not a bitmap of what an
	// index yields for the whole list, whose cost rests on the statistics.
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "Index Scan using resource_pkey") || strings.Contains(p, "Bitmap") {
		t.Errorf("the look-up does not read each id by the primary key:\n%s", p)
	}
	found, err := lookup(st)(ctx, "Observation", append(ids[:2:2], "missing"))
	if err != nil || len(found) != 2 || found["o1"] == nil || found["o41"] == nil {
		t.Errorf("look-up: %v %v", found, err)
	}
}
