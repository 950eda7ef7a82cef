package format

import (
	"runtime"
	"strings"
	"testing"
)

// repeat builds a document of about size bytes: head, then unit repeated, then tail.
func repeat(head, unit, tail string, size int) []byte {
	var sb strings.Builder
	sb.WriteString(head)
	for sb.Len() < size-len(tail)-len(unit) {
		sb.WriteString(unit)
	}
	sb.WriteString(strings.TrimSuffix(unit, ","))
	sb.WriteString(tail)
	return []byte(sb.String())
}

// A body whose values are tiny ("[1,1,1,…", "[{},{},…") would cost 30-40 times its size
// decoded; past 65,536 values plus one per 8 bytes it is refused, while real data of the
// same size passes.
func TestDecodeBoundsValues(t *testing.T) {
	const mb = 1 << 20
	realistic := repeat(`{"resourceType":"Bundle","entry":[`, `{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"valueQuantity":{"value":172.5,"unit":"cm"}}},`, `]}`, 4*mb)
	tests := []struct {
		name string
		doc  []byte
		yaml bool
		ok   bool
	}{
		{"realistic 4 MB JSON", realistic, false, true},
		{"numbers, 10 MB", repeat(`{"x":[`, `1,`, `]}`, 10*mb), false, false},
		{"empty objects, 10 MB", repeat(`{"x":[`, `{},`, `]}`, 10*mb), false, false},
		{"numbers, small document", repeat(`{"x":[`, `1,`, `]}`, 100_000), false, true},
		{"YAML flow numbers, 1 MB", repeat("x: [", "1,", "]\n", mb), true, false},
		{"YAML block list, 512 kB", repeat("x:\n", "- 1\n", "", mb/2), true, true},
		{"YAML nulls, 4 MB", repeat("x:\n", "  k:\n", "", 4*mb), true, false},
	}
	for _, tt := range tests {
		var err error
		if tt.yaml {
			_, err = DecodeYAML(tt.doc)
		} else {
			_, err = DecodeJSON(tt.doc)
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s (%d bytes): err = %v, want ok=%v", tt.name, len(tt.doc), err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "values") {
			t.Errorf("%s: the error does not say what is wrong: %v", tt.name, err)
		}
	}
}

// The worst 10 MB JSON body costs a bounded amount of memory before it is refused (it
// cost 360-380 MB in use, 1.2 GB allocated, before the bound).
func TestDecodeMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB")
	}
	for _, unit := range []string{"1,", "{},", "[],", `"",`} {
		doc := repeat(`{"x":[`, unit, `]}`, 10<<20)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := DecodeJSON(doc)
		runtime.ReadMemStats(&after)
		grew := int64(after.HeapInuse) - int64(before.HeapInuse)
		t.Logf("%q × 10 MB: refused=%v, heap in use +%d MB, allocated %d MB", unit, err != nil, grew>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
		if grew > 200<<20 {
			t.Errorf("%q × 10 MB: heap in use grew by %d MB, want under 200 MB", unit, grew>>20)
		}
	}
}
