package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Loader writes derived patients and their observations through the HTTP API.
type Loader struct {
	API   *API
	Der   *Deriver
	DB    *DB // optional: finds what an earlier run loaded in one query
	Conc  int
	ObsPP int
}

// Load makes sure derived patients 0..n-1, and ObsPP observations of each, are on the
// server, and returns what the run needs to know of the patients.
//
// Every write is a PUT of a fixed id, so loading twice stores the same documents; the
// resources already there are skipped all the same, because each PUT would add a
// version and index rewrite for nothing. With a database they are found in one query,
// without one by a GET each.
func (l *Loader) Load(ctx context.Context, n int) ([]PatientInfo, error) {
	infos := make([]PatientInfo, n)
	have, err := l.existing(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	prog := StartProgress("loading patients", n)
	var written, skipped atomic.Int64
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range l.Conc {
		wg.Go(func() {
			for i := range jobs {
				w, s, err := l.one(ctx, i, &infos[i], have)
				written.Add(int64(w))
				skipped.Add(int64(s))
				if err != nil {
					cancel(err)
					return
				}
				prog.Add(1)
			}
		})
	}
	start := time.Now()
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	prog.Stop()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	fmt.Printf("loaded       %d patients, %d resources written, %d already there, in %s\n",
		n, written.Load(), skipped.Load(), time.Since(start).Round(time.Millisecond))
	return infos, nil
}

// existing returns the derived resources already stored, or nil without a database.
func (l *Loader) existing(ctx context.Context) (map[string]bool, error) {
	if l.DB == nil {
		return nil, nil
	}
	rows, err := l.DB.Query(ctx, `SELECT resource_type || '/' || id FROM resource
WHERE resource_type IN ('Patient', 'Observation') AND id LIKE 'bench-%' AND NOT deleted`)
	if err != nil {
		return nil, fmt.Errorf("listing loaded resources: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		have[k] = true
	}
	return have, rows.Err()
}

// one loads patient i and its observations, the patient first (the observations refer
// to it).
func (l *Loader) one(ctx context.Context, i int, info *PatientInfo, have map[string]bool) (written, skipped int, err error) {
	body, pi, err := l.Der.PatientJSON(i)
	if err != nil {
		return 0, 0, err
	}
	ids, docs, codes, err := l.Der.Observations(i, l.ObsPP)
	if err != nil {
		return 0, 0, err
	}
	pi.Codes = codes
	*info = pi
	put := func(typ, id string, doc []byte) error {
		if have != nil {
			if have[typ+"/"+id] {
				skipped++
				return nil
			}
		} else {
			st, _, err := l.API.Do(ctx, http.MethodGet, "/"+typ+"/"+id, "/"+typ+"/{id}", nil, false)
			if err == nil {
				skipped++
				return nil
			}
			if st != http.StatusNotFound && st != http.StatusGone {
				return err
			}
		}
		if err := retry(ctx, func() error {
			_, _, err := l.API.Do(ctx, http.MethodPut, "/"+typ+"/"+id, "/"+typ+"/{id}", doc, false)
			return err
		}); err != nil {
			return fmt.Errorf("loading %s/%s: %w", typ, id, err)
		}
		written++
		return nil
	}
	if err := put("Patient", pi.ID, body); err != nil {
		return written, skipped, err
	}
	for k, id := range ids {
		if err := put("Observation", id, docs[k]); err != nil {
			return written, skipped, err
		}
	}
	return written, skipped, nil
}

// retry runs f up to three times while it fails with a network error, a 409 (a write
// conflict) or a 5xx: a load of 100,000 resources should not die of one hiccup, but a
// request the server refuses (4xx) fails at once.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return err
			}
		}
		if err = f(); err == nil {
			return nil
		}
		var se *StatusError
		if errors.As(err, &se) && se.Status < 500 && se.Status != http.StatusConflict {
			return err
		}
	}
	return err
}

// Progress shows a count on stderr, only when stderr is a terminal: a log file would
// collect one line per refresh.
type Progress struct {
	label string
	total int
	done  atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// StartProgress starts showing progress towards total.
func StartProgress(label string, total int) *Progress {
	p := &Progress{label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	if !isTerminal(os.Stderr) || total == 0 {
		return p
	}
	p.wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.draw(false)
			case <-p.stop:
				p.draw(true)
				return
			}
		}
	})
	return p
}

// Add counts n more done.
func (p *Progress) Add(n int) { p.done.Add(int64(n)) }

// Stop draws the final state and ends the line.
func (p *Progress) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
}

func (p *Progress) draw(final bool) {
	done := int(p.done.Load())
	el := time.Since(p.start)
	rate := float64(done) / el.Seconds()
	eta := "?"
	if rate > 0 {
		eta = time.Duration(float64(p.total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	const width = 30
	fill := width * done / p.total
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(os.Stderr, "\r%s [%s] %d/%d %3.0f%% %.0f/s eta %s  ",
		p.label, bar, done, p.total, 100*float64(done)/float64(p.total), rate, eta)
	if final {
		fmt.Fprintln(os.Stderr)
	}
}

// isTerminal reports whether f is a character device, which is what a terminal is to
// the standard library; a pipe or a file is not one.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
