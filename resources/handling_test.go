package resources

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Lenient parsing lists each parameter it ignores once, with its reason; strict parsing
// refuses the same search with one error naming all of them (conformance F13).
func TestParseSearchIgnored(t *testing.T) {
	reg := DefaultRegistry()
	params := url.Values{
		"gender":         {"female"},
		"colour":         {"blue", "red"},
		"_foo":           {"1"},
		"_filter":        {"name eq x"},
		"_query":         {"q1"},
		"name:weird":     {""}, // empty: absent, neither applied nor reported
		"_format":        {"json"},
		"_pretty":        {"true"},
		"_page":          {"2"},
		PageSetParam:     {"abc_DEF-123"},
		"subject.family": {"x"},
	}
	q, err := ParseSearch(reg, "Patient", params, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ig := range q.Ignored {
		got = append(got, ig.Param+": "+ig.Reason)
	}
	want := []string{
		`_filter: search parameter "_filter" is not supported by this server`,
		`_foo: unknown search parameter "_foo" for Patient`,
		`_query: search parameter "_query" is not supported by this server`,
		`colour: unknown search parameter "colour" for Patient`,
		`subject.family: unknown search parameter "subject.family" for Patient`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Ignored:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if q.Used.Get("gender") != "female" || q.Used.Has("colour") || q.Used.Has(PageSetParam) {
		t.Errorf("Used %v", q.Used)
	}
	if q.PageSet != "abc_DEF-123" || q.Offset != q.Count {
		t.Errorf("PageSet %q offset %d", q.PageSet, q.Offset)
	}
	if q.Original.Has("_page") || q.Original.Has(PageSetParam) || q.Original.Get("colour") != "blue" || q.Original.Get("_format") != "json" {
		t.Errorf("Original %v: the search as given, without its paging", q.Original)
	}

	_, err = ParseSearch(reg, "Patient", params, ParseOptions{Strict: true})
	msg := err.Error()
	for _, p := range []string{`"_foo"`, `"colour"`, `"_filter"`, `"_query"`, `"subject.family"`} {
		if !strings.Contains(msg, p) {
			t.Errorf("strict error %q does not name %s", msg, p)
		}
	}
	if ErrorCode(err) != CodeInvalid || strings.Contains(msg, "_format") {
		t.Errorf("strict error %v", err)
	}

	for _, bad := range []url.Values{
		{"gender:fuzzy": {"x"}},
		{"birthdate": {"notadate"}},
		{PageSetParam: {"has space"}},
		{PageSetParam: {strings.Repeat("k", 65)}},
	} {
		if _, err := ParseSearch(reg, "Patient", bad, ParseOptions{}); ErrorCode(err) != CodeInvalid {
			t.Errorf("lenient %v: %v, want invalid", bad, err)
		}
	}
}

func TestParseResultSetOptions(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "ttl=10m0s,max=10000"},
		{"ttl=30s", "ttl=30s,max=10000"},
		{"max=500, ttl=1h", "ttl=1h0m0s,max=500"},
		{"off", "off"},
	} {
		o, err := ParseResultSetOptions(tc.in)
		if err != nil || o.String() != tc.want {
			t.Errorf("%q: %v %v, want %s", tc.in, o, err, tc.want)
		}
	}
	for _, bad := range []string{"ttl=0", "ttl=48h", "max=0", "max=100001", "size=3", "ttl"} {
		if _, err := ParseResultSetOptions(bad); err == nil || !strings.Contains(err.Error(), ResultSetsSetting) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
