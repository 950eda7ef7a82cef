package resources

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// IndexRewriter is a Store that rewrites the search index of stored resources in place,
// without making new versions: what a new search parameter, or a new version of
// fhirbox with new parameters, needs for the resources stored before it. Both stores
// are one.
type IndexRewriter interface {
	// CountLive returns how many live resources of typ there are, only those last
	// updated at or after since when since is not zero.
	CountLive(ctx context.Context, typ string, since time.Time) (int64, error)
	// RewriteIndex rewrites the index of one batch of resources (see RewriteBatch) in
	// one transaction. It returns the id of the last resource read (empty when none
	// was left) and how many were read: fewer than b.Limit means the end.
	RewriteIndex(ctx context.Context, b RewriteBatch) (last string, n int, err error)
}

// RewriteBatch is one batch of RewriteIndex: up to Limit live resources of Type whose
// ids sort after After, in id order (and last updated at or after Since, when not
// zero). The store holds each resource of the batch against concurrent writes from
// before Extract reads it until its new index rows are committed (PostgreSQL: SELECT …
// FOR UPDATE; SQLite: on its one write connection), so that a write is either
// re-extracted here or comes after and extracts itself: never is a newer version's
// index replaced by an older one's.
type RewriteBatch struct {
	Type  string
	After string
	Since time.Time
	Limit int
	// Params, when not empty, restricts the rewrite to the index rows of these
	// parameters: only they are deleted, and Extract returns only theirs.
	Params []string
	// Extract returns the index of one resource; nil leaves its rows as they are.
	Extract func(*Resource) (*Index, error)
}

// ReindexOptions says what Service.Reindex re-extracts.
type ReindexOptions struct {
	// Types to walk (empty: every type of the registry).
	Types []string
	// Params restricts the rewrite to these parameters' rows (empty: every row).
	Params []string
	// Since restricts it to resources last updated at or after it (zero: all).
	Since time.Time
	// BatchSize is the number of resources per transaction (default 500).
	BatchSize int
	// Progress, when set, is called after every batch and once at the end of each type.
	Progress func(ReindexProgress)
	// Log receives a warning for each resource whose content the index cannot hold
	// (its rows are left as they were); nil: slog.Default().
	Log *slog.Logger
}

// ReindexProgress is where a reindex stands in one type.
type ReindexProgress struct {
	Type string
	// Done of Total resources of the type are re-extracted (Total was counted at the
	// start of the type, so Done may pass it when resources are added meanwhile).
	Done, Total int64
	// Skipped resources could not be indexed (see ReindexOptions.Log).
	Skipped int64
	// Elapsed is the time spent on the type so far.
	Elapsed time.Duration
	// Finished is set on the last call for the type.
	Finished bool
}

// Line is the progress as a log line: "reindex Patient: 12,000/100,000 (12%), 4,100/s".
func (p ReindexProgress) Line() string {
	pct := 100.0
	if p.Total > 0 {
		pct = min(100, 100*float64(p.Done)/float64(p.Total))
	}
	s := fmt.Sprintf("reindex %s: %s/%s (%.0f%%), %s/s", p.Type, Thousands(p.Done), Thousands(p.Total), pct, Thousands(rate(p.Done, p.Elapsed)))
	if p.Skipped > 0 {
		s += fmt.Sprintf(", %s skipped", Thousands(p.Skipped))
	}
	return s
}

// ReindexSummary is what a reindex did.
type ReindexSummary struct {
	Types     int
	Resources int64
	Skipped   int64
	Elapsed   time.Duration
}

// Rate is the resources re-extracted per second.
func (s ReindexSummary) Rate() int64 { return rate(s.Resources, s.Elapsed) }

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// Thousands writes n with commas between groups of three digits.
func Thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Reindex re-extracts the search index of the stored live resources of opts.Types with
// the registry as it is now, batch by batch, without new versions, while the store
// keeps serving reads and writes. A CodeUnprocessable error: the store cannot rewrite
// its index.
func (s *Service) Reindex(ctx context.Context, opts ReindexOptions) (ReindexSummary, error) {
	var sum ReindexSummary
	rw, ok := s.store.(IndexRewriter)
	if !ok {
		return sum, Errorf(CodeUnprocessable, "this store cannot rewrite its search index")
	}
	types := opts.Types
	if len(types) == 0 {
		types = s.reg.Types()
	}
	for _, t := range types {
		if _, ok := s.reg.Type(t); !ok {
			return sum, Errorf(CodeNotFound, "unknown resource type %q", t)
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	start := time.Now()
	for _, typ := range types {
		total, err := rw.CountLive(ctx, typ, opts.Since)
		if err != nil {
			return sum, err
		}
		if total == 0 {
			continue
		}
		sum.Types++
		p := ReindexProgress{Type: typ, Total: total}
		tstart := time.Now()
		b := RewriteBatch{Type: typ, Since: opts.Since, Limit: opts.BatchSize, Params: opts.Params}
		b.Extract = func(r *Resource) (*Index, error) {
			idx, err := s.reextract(r, opts.Params)
			if ErrorCode(err) == CodeUnprocessable {
				p.Skipped++
				log.Warn("reindex: the resource cannot be indexed; its index is left as it was", "resource", r.Type+"/"+r.ID, "err", err.(*Error).Message)
				return nil, nil
			}
			return idx, err
		}
		for {
			last, n, err := rw.RewriteIndex(ctx, b)
			if err != nil {
				return sum, err
			}
			p.Done += int64(n)
			p.Elapsed = time.Since(tstart)
			if n < b.Limit {
				break
			}
			b.After = last
			if opts.Progress != nil {
				opts.Progress(p)
			}
		}
		p.Finished = true
		if opts.Progress != nil {
			opts.Progress(p)
		}
		sum.Resources += p.Done
		sum.Skipped += p.Skipped
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// reextract extracts the index of a stored version with the registry as it is now,
// only the rows of params when params is not empty.
func (s *Service) reextract(r *Resource, params []string) (*Index, error) {
	var doc map[string]any
	if err := decodeNumbers(r.Content, &doc); err != nil {
		return nil, Internal(fmt.Errorf("%s/%s: stored content: %w", r.Type, r.ID, err))
	}
	idx, err := s.reg.Extract(r.Type, doc)
	if err != nil || len(params) == 0 {
		return idx, err
	}
	// A parameter's derived rows (range.go, derived.go) go with it.
	keep := func(p string) bool { return slices.Contains(params, BaseParam(p)) }
	return &Index{
		Strings:    keepRows(idx.Strings, func(e StringEntry) bool { return keep(e.Param) }),
		Tokens:     keepRows(idx.Tokens, func(e TokenEntry) bool { return keep(e.Param) }),
		Dates:      keepRows(idx.Dates, func(e DateEntry) bool { return keep(e.Param) }),
		Numbers:    keepRows(idx.Numbers, func(e NumberEntry) bool { return keep(e.Param) }),
		References: keepRows(idx.References, func(e ReferenceEntry) bool { return keep(e.Param) }),
	}, nil
}

// keepRows returns the rows of rows that keep accepts.
func keepRows[T any](rows []T, keep func(T) bool) []T {
	var out []T
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// ReindexJob is the state of one background reindex of this process, as
// GET /$reindex-status shows it.
type ReindexJob struct {
	// SearchParameter is the resource whose definition is being indexed
	// ("SearchParameter/mmn"), with the version that started the job.
	SearchParameter string   `json:"searchParameter"`
	Version         int64    `json:"version"`
	Code            string   `json:"code"`
	Types           []string `json:"types"`
	// State is running, done, superseded (a newer definition took over), stopped (the
	// server is shutting down) or failed.
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
	Started string `json:"started"`
	Ended   string `json:"ended,omitempty"`
	// Pass is "all" while every resource of the types is re-extracted, then "recent"
	// while those written since shortly before the job started are again (the ones
	// another server wrote before it learnt of the parameter).
	Pass     string           `json:"pass,omitempty"`
	Progress []ReindexTypeRun `json:"progress"`

	cancel context.CancelFunc
	id     string // the SearchParameter's id
	def    string
	start  time.Time
}

// ReindexTypeRun is a job's progress on one type.
type ReindexTypeRun struct {
	Type    string  `json:"type"`
	Done    int64   `json:"done"`
	Total   int64   `json:"total"`
	Percent float64 `json:"percent"`
	Rate    int64   `json:"perSecond"`
	Skipped int64   `json:"skipped,omitempty"`
}

// jobList holds the reindex jobs of a process: running ones by SearchParameter id, and
// the last ones ended, for the status.
type jobList struct {
	mu      sync.Mutex
	running map[string]*ReindexJob
	ended   []*ReindexJob
}

// maxEndedJobs bounds the ended jobs the status keeps.
const maxEndedJobs = 20

// ReindexJobs returns the background reindex jobs of this process: the running ones,
// then the last ones ended, newest first. The copies are the caller's.
func (s *Service) ReindexJobs() []ReindexJob {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	var out []ReindexJob
	for _, j := range s.jobs.running {
		out = append(out, j.copy())
	}
	slices.SortFunc(out, func(a, b ReindexJob) int { return strings.Compare(b.Started, a.Started) })
	for i := len(s.jobs.ended) - 1; i >= 0; i-- {
		out = append(out, s.jobs.ended[i].copy())
	}
	return out
}

// copy returns j with its own slices; jobs.mu is held.
func (j *ReindexJob) copy() ReindexJob {
	c := *j
	c.Types = slices.Clone(j.Types)
	c.Progress = slices.Clone(j.Progress)
	c.cancel = nil
	return c
}
