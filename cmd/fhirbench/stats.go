package main

import (
	"math"
	"slices"
	"time"
)

// Latencies are kept whole (a sorted slice, not buckets): a 10 s run at a few thousand
// requests a second is well under a million durations, and exact percentiles leave no
// bucket width to explain.

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank
// method: the smallest value that at least p% of the values are less than or equal to.
// It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary is the outcome of one measured phase.
type Summary struct {
	OK, Errors int
	Elapsed    time.Duration
	P50, P99   time.Duration
}

// RPS is the rate of successful requests.
func (s Summary) RPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.OK) / s.Elapsed.Seconds()
}

// ErrorRate is the share of failed requests among all.
func (s Summary) ErrorRate() float64 {
	if s.OK+s.Errors == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.OK+s.Errors)
}

// summarize merges the latencies of successful requests of every worker, and returns
// them sorted with their summary.
func summarize(perWorker [][]time.Duration, errors int, elapsed time.Duration) (Summary, []time.Duration) {
	var all []time.Duration
	for _, l := range perWorker {
		all = append(all, l...)
	}
	slices.Sort(all)
	return Summary{
		OK:      len(all),
		Errors:  errors,
		Elapsed: elapsed,
		P50:     Percentile(all, 50),
		P99:     Percentile(all, 99),
	}, all
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round rounds f to digits decimals, which keeps the JSON line readable.
func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}
