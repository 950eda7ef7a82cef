package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", []time.Duration{7}, 50, 7},
		{"one p99", []time.Duration{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 1..100", hundred, 100, 100 * time.Millisecond},
		{"p1 of 1..100", hundred, 1, time.Millisecond},
		{"p50 of 4", []time.Duration{1, 2, 3, 4}, 50, 2},
		{"p99 of 4", []time.Duration{1, 2, 3, 4}, 99, 4},
		{"p0 is the minimum", []time.Duration{1, 2, 3}, 0, 1},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	// Workers' latencies arrive unsorted and are merged before the percentiles.
	s, all := summarize([][]time.Duration{{5, 1, 9}, {3}, nil, {7, 2, 8, 4, 6, 10}}, 2, 2*time.Second)
	if !slices.IsSorted(all) || len(all) != 10 {
		t.Errorf("latencies %v", all)
	}
	if s.OK != 10 || s.Errors != 2 || s.P50 != 5 || s.P99 != 10 {
		t.Errorf("summary %+v", s)
	}
	if s.RPS() != 5 {
		t.Errorf("RPS = %v, want 5", s.RPS())
	}
	if r := s.ErrorRate(); r < 0.166 || r > 0.167 {
		t.Errorf("ErrorRate = %v, want 2/12", r)
	}
	if (Summary{}).RPS() != 0 || (Summary{}).ErrorRate() != 0 {
		t.Error("an empty summary has rates")
	}
}

// Rounds merge into one phase: requests, errors and time add up, and the percentiles
// are those of all the latencies together, not an average of the rounds'.
func TestResultMerge(t *testing.T) {
	round := func(lats []time.Duration, errs int, kinds map[string]int) Result {
		s, all := summarize([][]time.Duration{lats}, errs, time.Second)
		return Result{Summary: s, ErrorKinds: kinds, lats: all}
	}
	var r Result
	r = r.Merge(round([]time.Duration{1, 2, 3, 4}, 1, map[string]int{"a": 1}))
	r = r.Merge(round([]time.Duration{100, 100, 100, 100, 100, 100}, 0, nil))
	r = r.Merge(round([]time.Duration{5, 6}, 2, map[string]int{"a": 1, "b": 1}))
	if r.OK != 12 || r.Errors != 3 || r.Elapsed != 3*time.Second || r.P50 != 6 || r.P99 != 100 {
		t.Errorf("merged %+v", r.Summary)
	}
	if r.RPS() != 4 || r.ErrorKinds["a"] != 2 || r.ErrorKinds["b"] != 1 {
		t.Errorf("RPS %v, kinds %v", r.RPS(), r.ErrorKinds)
	}
}

func TestRunnerCountsErrorsApart(t *testing.T) {
	n := 0
	r := Runner{Conc: 1, Seed: 1}.Run(context.Background(), 50*time.Millisecond, 1, func(ctx context.Context, rng *rand.Rand) error {
		n++
		time.Sleep(time.Millisecond)
		if n%4 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if r.OK+r.Errors != n || r.Errors != n/4 || r.ErrorKinds["boom"] != r.Errors {
		t.Errorf("%d requests: %d ok, %d errors, kinds %v", n, r.OK, r.Errors, r.ErrorKinds)
	}
	if r.P50 < time.Millisecond {
		t.Errorf("p50 %v below the op's own sleep", r.P50)
	}
}

func TestParseRSS(t *testing.T) {
	m := []byte("# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\n" +
		"process_resident_memory_bytes_other 1\n" +
		"process_resident_memory_bytes 4.2336256e+07\n")
	v, err := parseRSS(m)
	if err != nil || v != 42336256 {
		t.Errorf("parseRSS = %v, %v", v, err)
	}
	if _, err := parseRSS([]byte("go_goroutines 3\n")); err == nil {
		t.Error("parseRSS found RSS where there is none")
	}
}

func TestLikeEscape(t *testing.T) {
	if got := likeEscape(`a_b%c\d`); got != `a\_b\%c\\d` {
		t.Errorf("likeEscape = %q", got)
	}
}
