package resources

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseHistory(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		query   string
		strict  bool
		check   func(q HistoryQuery) bool
		errWith string // "" when no error is expected
	}{
		{"", false, func(q HistoryQuery) bool {
			return q.Count == 20 && q.Since.IsZero() && q.AtHigh.IsZero() && q.After == nil
		}, ""},
		{"_count=5000", false, func(q HistoryQuery) bool { return q.Count == 1000 && q.Used.Get("_count") == "1000" }, ""},
		{"_count=3&_page=3", false, func(q HistoryQuery) bool { return q.Offset == 6 }, ""},
		{"_since=2024-05-01T10:00:00%2B02:00", false, func(q HistoryQuery) bool { return q.Since.Equal(at("2024-05-01T08:00:00Z")) }, ""},
		{"_at=2024-05", false, func(q HistoryQuery) bool {
			return q.AtLow.Equal(at("2024-05-01T00:00:00Z")) && q.AtHigh.Equal(at("2024-06-01T00:00:00Z"))
		}, ""},
		{"_at=2024-05-01T10:00:00.250Z", false, func(q HistoryQuery) bool { return q.AtHigh.Sub(q.AtLow) == time.Millisecond }, ""},
		{"_cursor=1714557600000000_3_Patient_a.b-c", false, func(q HistoryQuery) bool {
			c := q.After
			return c != nil && c.LastUpdated.Equal(at("2024-05-01T10:00:00Z")) && c.VersionID == 3 && c.Type == "Patient" && c.ID == "a.b-c"
		}, ""},
		{"colour=blue&_list=x&_format=json", false, func(q HistoryQuery) bool {
			return len(q.Ignored) == 2 && q.Ignored[0].Param == "_list" && strings.Contains(q.Ignored[0].Reason, "not supported") && q.Ignored[1].Param == "colour"
		}, ""},
		{"colour=blue", true, nil, "colour"},
		{"_since=soon", false, nil, "_since"},
		{"_at=2024-02-30", false, nil, "_at"},
		{"_count=-2", false, nil, "_count"},
		{"_page=0", false, nil, "_page"},
		{"_count=1000&_page=9999999", false, nil, "_page"},
		{"_cursor=1_1_Patient", false, nil, "_cursor"},
		{"_cursor=1_1_Pat_ient_x", false, nil, "_cursor"},
		{"_cursor=-1_1_Patient_x", false, nil, "_cursor"},
		{"_at=2024&_at=2025", false, nil, "_at"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			params, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := parseHistory(params, tt.strict, 20, 1000)
			if tt.errWith != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvalid || !strings.Contains(e.Message, tt.errWith) || e.Expression != tt.errWith {
					t.Fatalf("error %v, want a CodeInvalid naming %s", err, tt.errWith)
				}
				return
			}
			if err != nil || !tt.check(q) {
				t.Fatalf("parseHistory = %+v, %v", q, err)
			}
		})
	}
}

// A cursor written for a version reads back as the same place.
func TestHistoryCursorRoundTrip(t *testing.T) {
	r := &Resource{Type: "Observation", ID: "x.1-y", VersionID: 12, LastUpdated: time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)}
	c, err := ParseHistoryCursor(CursorOf(r).String())
	if err != nil || *c != *CursorOf(r) {
		t.Fatalf("round trip: %+v, %v", c, err)
	}
}

func FuzzParseHistory(f *testing.F) {
	for _, s := range []string{
		"_count=5&_page=2&_since=2024-05-01T10:00:00Z",
		"_at=2024-05&_cursor=1714557600000000_3_Patient_a",
		"_cursor=1_1_Patient_x_y&colour=blue&_list=l",
		"_since=2024-05-01T10:00:00 02:00&_at=2024",
		"_cursor=%ff_1_%00_x&_count=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		params, _ := url.ParseQuery(raw)
		for _, strict := range []bool{false, true} {
			q, err := parseHistory(params, strict, 20, 1000)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvalid {
					t.Fatalf("%q: error %v is not a client error", raw, err)
				}
				continue
			}
			if q.Count < 0 || q.Count > 1000 || q.Offset < 0 || (q.AtLow.After(q.AtHigh)) {
				t.Fatalf("%q: %+v", raw, q)
			}
			if q.After != nil {
				c, err := ParseHistoryCursor(q.After.String())
				if err != nil || *c != *q.After {
					t.Fatalf("%q: cursor %+v does not round-trip: %v", raw, q.After, err)
				}
			}
		}
	})
}
