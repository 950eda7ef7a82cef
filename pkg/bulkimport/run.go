package bulkimport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// Outcome is what became of one resource.
type Outcome int

// The outcomes.
const (
	// Failed: not stored (Result.Err says why).
	Failed Outcome = iota
	// Created: stored under an id that had no live resource.
	Created
	// Updated: stored as a new version of the resource of its id.
	Updated
	// Unchanged: the resource of its id was the same already; nothing written.
	Unchanged
)

// Result is the outcome of one item.
type Result struct {
	Outcome Outcome
	Err     error
}

// Sink stores batches: the database (Store) or a server (Remote).
type Sink interface {
	// WriteBatch stores items and returns one result for each; an item with Err set
	// holds no resource and fails with that error. An error means that
	// nothing more can be stored (the database or server is unreachable): the import
	// stops, and the results say what of the batch was stored.
	WriteBatch(ctx context.Context, items []*Item) ([]Result, error)
}

// Options configures Run.
type Options struct {
	// BatchSize is the most resources of one batch (default 500).
	BatchSize int
	// Workers is how many batches are written at once (default 1).
	Workers int
	// Failed is called, one call at a time, for each item that was not stored.
	Failed func(where string, err error)
	// Progress is called, one call at a time, after each batch.
	Progress func(Progress)
}

// Progress is where an import stands.
type Progress struct {
	// Read is the bytes of the files read so far, of Total.
	Read, Total int64
	Counts
	Elapsed time.Duration
}

// Counts are the resources by outcome.
type Counts struct {
	Created, Updated, Unchanged, Failed int64
}

// Done is the number of resources decided, whatever the outcome.
func (c Counts) Done() int64 { return c.Created + c.Updated + c.Unchanged + c.Failed }

// Rate is resources decided a second over elapsed.
func (c Counts) Rate(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(c.Done()) / elapsed.Seconds()
}

// Summary is what an import did.
type Summary struct {
	Counts
	Files   int
	Read    int64
	Elapsed time.Duration
	// Interrupted says the import stopped before the end of its files (ctx ended): what
	// the counts say was committed; a re-run stores the rest.
	Interrupted bool
}

// Run imports the files into sink in batches until they end or ctx does. When ctx ends
// (Ctrl-C), the batches being written are finished, nothing more is read, and the
// summary says so: everything counted is stored, and a re-run finds it unchanged. An
// error is one that stopped the import (the database or server gone, a refused token);
// the summary then still counts what was stored before it.
func Run(ctx context.Context, files []string, total int64, sink Sink, opt Options) (Summary, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	start := time.Now()
	var read atomic.Int64
	sum := Summary{Files: len(files)}
	var mu sync.Mutex // guards sum and the callbacks
	var fatal error
	// report counts a batch's results; those failed by the error that stops the import
	// (stop) were not tried, and are neither counted nor reported one by one.
	report := func(items []*Item, res []Result, stop error) {
		mu.Lock()
		defer mu.Unlock()
		for i, r := range res {
			if stop != nil && r.Err == stop {
				continue
			}
			switch r.Outcome {
			case Created:
				sum.Created++
			case Updated:
				sum.Updated++
			case Unchanged:
				sum.Unchanged++
			default:
				sum.Failed++
				if opt.Failed != nil {
					opt.Failed(items[i].Where, r.Err)
				}
			}
		}
		if opt.Progress != nil {
			opt.Progress(Progress{Read: read.Load(), Total: total, Counts: sum.Counts, Elapsed: time.Since(start)})
		}
	}

	// The writes outlive ctx: a batch begun is finished, so that Ctrl-C never leaves one
	// half done (it would be rolled back anyway) and the summary is exact.
	wctx, stopWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWrites()
	batches := make(chan []*Item, opt.Workers)
	var wg sync.WaitGroup
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				res, err := sink.WriteBatch(wctx, b)
				report(b, res, err)
				if err != nil {
					mu.Lock()
					if fatal == nil {
						fatal = err
					}
					mu.Unlock()
					stopWrites()
				}
			}
		}()
	}
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fatal != nil || ctx.Err() != nil
	}

	// A batch holds the places that hold no resource too, in their order, so that
	// failures are reported in the order of the file; sinks fail them with their Err.
	var batch []*Item
	send := func() bool {
		if len(batch) == 0 {
			return !stopped()
		}
		if stopped() {
			return false
		}
		select {
		case batches <- batch:
		case <-ctx.Done():
			return false
		}
		batch = nil
		return true
	}
	for _, f := range files {
		err := ReadFile(f, &read, func(it *Item) bool {
			batch = append(batch, it)
			return len(batch) < opt.BatchSize || send()
		})
		if err != nil {
			// A file that cannot be read on (a truncated gzip stream, a disk error) is one
			// failure; what it held until then is imported, and so are the other files.
			batch = append(batch, &Item{Where: f, Err: err})
		}
		if stopped() {
			break
		}
	}
	send()
	close(batches)
	wg.Wait()
	sum.Read, sum.Elapsed = read.Load(), time.Since(start)
	sum.Interrupted = ctx.Err() != nil
	return sum, fatal
}

// Line is a one-line account of p, for progress lines when no terminal shows a bar.
func (p Progress) Line() string {
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Read) / float64(p.Total)
	}
	return fmt.Sprintf("import: %.0f%% of %s, %s resources (%s stored, %s updated, %s unchanged, %s failed), %s/s",
		pct, Bytes(p.Total), resources.Thousands(p.Done()), resources.Thousands(p.Created), resources.Thousands(p.Updated), resources.Thousands(p.Unchanged), resources.Thousands(p.Failed),
		resources.Thousands(int64(p.Rate(p.Elapsed))))
}

// Bytes formats n bytes for people: 12.3 MB.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Reason is err as an import reports it: the engine's message for a resource it
// refused, the whole error otherwise (the operator of an import may see a database's
// own words, which a client of the server never does).
func Reason(err error) string {
	var e *resources.Error
	if errors.As(err, &e) && e.Code != resources.CodeInternal {
		return e.Message
	}
	return err.Error()
}
