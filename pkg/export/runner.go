package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/resources"
)

// errLost ends a run whose job is no longer its instance's: cancelled by its caller,
// or claimed by another instance after this one's lease ran out.
var errLost = errors.New("the export job is no longer this instance's")

// ErrCallerGone, in the chain of a Walker's error, fails the whole job rather than
// one type: the caller it runs as is no more (its session was closed).
var ErrCallerGone = errors.New("the caller of the export is gone")

// Runner claims jobs and runs them: each job is run by one instance at a time (the
// store's claim is atomic), and a job whose instance died (its lease ran out) is
// claimed again and run from the start (conformance E8).
type Runner struct {
	store   Store
	walker  Walker
	opts    Options
	fileURL func(jobID string, seq int) string
	log     *slog.Logger
	wake    chan struct{}
}

// NewRunner returns a runner of the jobs of st that reads with w; fileURL is the URL
// of a job's file in the manifest.
func NewRunner(st Store, w Walker, opts Options, fileURL func(jobID string, seq int) string, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{store: st, walker: w, opts: opts.withDefaults(), fileURL: fileURL, log: log, wake: make(chan struct{}, 1)}
}

// Options returns the runner's options, defaults filled in.
func (r *Runner) Options() Options { return r.opts }

// Store returns the store of the runner's jobs.
func (r *Runner) Store() Store { return r.store }

// Wake makes an idle Run look for a job now rather than at its next poll.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Poll)
	defer t.Stop()
	for ctx.Err() == nil {
		ran, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Error("export job", "err", err)
		}
		if ran {
			continue
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-r.wake:
		}
	}
}

// RunOnce claims one job and runs it to its end, and reports whether there was one.
func (r *Runner) RunOnce(ctx context.Context) (bool, error) {
	now := r.opts.Now()
	job, err := r.store.ClaimExportJob(ctx, r.opts.Owner, now, now.Add(r.opts.Lease), now.Add(r.opts.Lease+r.opts.TTL))
	if err != nil || job == nil {
		return false, err
	}
	return true, r.run(ctx, job)
}

// run runs a claimed job, renewing its lease every third of it until it ends.
func (r *Runner) run(parent context.Context, job *exportjob.Job) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var progress atomic.Value
	progress.Store("starting")
	renew := func() (bool, error) {
		now := r.opts.Now()
		return r.store.RenewExportLease(parent, job.ID, r.opts.Owner, job.Attempt, now.Add(r.opts.Lease), now.Add(r.opts.Lease+r.opts.TTL), progress.Load().(string))
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(r.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if ok, err := renew(); err == nil && !ok {
				cancel(errLost)
				return
			}
		}
	}()

	m, err := r.write(ctx, job, &progress)
	if err != nil {
		if errors.Is(context.Cause(ctx), errLost) || parent.Err() != nil {
			return nil // cancelled, taken over, or shutting down: the lease decides
		}
		if ok, rerr := renew(); rerr == nil && !ok {
			return nil // cancelled meanwhile (its file was refused)
		}
		if transient(err) {
			// The database is away: the lease runs out and the job is run again.
			return err
		}
		r.log.Error("export job failed", "job", job.ID, "err", err)
		_, ferr := r.store.FinishExportJob(parent, job.ID, r.opts.Owner, job.Attempt, exportjob.Failed, nil,
			resources.ErrorMessage(err), r.opts.Now().Add(r.opts.TTL))
		return ferr
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = r.store.FinishExportJob(parent, job.ID, r.opts.Owner, job.Attempt, exportjob.Done, body, "", r.opts.Now().Add(r.opts.TTL))
	return err
}

func transient(err error) bool {
	switch resources.ErrorCode(err) {
	case resources.CodeUnavailable, resources.CodeTimeout:
		return true
	}
	return false
}

// write writes the job's files and returns its manifest. A type whose walk fails
// with a client's kind of error (a search the caller may not make) is left out and
// reported in the manifest's error file, as the types the caller may not search are.
func (r *Runner) write(ctx context.Context, job *exportjob.Job, progress *atomic.Value) (*Manifest, error) {
	w := &fileWriter{ctx: ctx, store: r.store, job: job, opts: r.opts}
	var outcomes [][]byte
	for _, typ := range job.Refused {
		outcomes = append(outcomes, outcome("forbidden", fmt.Sprintf("%s was not exported: no access policy lets the caller search it", typ)))
	}
	total := 0
	for i, typ := range job.Types {
		n := 0
		err := r.walker.Walk(ctx, job, typ, func(content []byte) error {
			n++
			if n%1000 == 0 {
				progress.Store(fmt.Sprintf("%s: %d resources (type %d of %d, %d resources before it)", typ, n, i+1, len(job.Types), total))
			}
			return w.add(typ, content)
		})
		switch code := resources.ErrorCode(err); {
		case err == nil:
		case code != resources.CodeInternal && !transient(err) && !errors.Is(err, ErrCallerGone):
			if ferr := w.discard(typ); ferr != nil {
				return nil, ferr
			}
			outcomes = append(outcomes, outcome(string(code), fmt.Sprintf("%s was not exported: %s", typ, resources.ErrorMessage(err))))
			continue
		default:
			return nil, err
		}
		if err := w.flush(); err != nil {
			return nil, err
		}
		total += n
	}
	if len(outcomes) > 0 {
		for _, o := range outcomes {
			if err := w.add("OperationOutcome", o); err != nil {
				return nil, err
			}
		}
		if err := w.flush(); err != nil {
			return nil, err
		}
	}
	if err := w.wait(); err != nil {
		return nil, err
	}
	m := &Manifest{
		TransactionTime:     resources.FormatInstant(job.TransactionTime),
		Request:             job.Request,
		RequiresAccessToken: true,
		Output:              []ManifestFile{},
		Error:               []ManifestFile{},
	}
	for _, f := range w.files {
		mf := ManifestFile{Type: f.Type, URL: r.fileURL(job.ID, f.Seq), Count: f.Count}
		if f.Type == "OperationOutcome" && len(outcomes) > 0 {
			m.Error = append(m.Error, mf)
		} else {
			m.Output = append(m.Output, mf)
		}
	}
	return m, nil
}

// outcome is one line of the error file: an OperationOutcome of one issue.
func outcome(code, text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []any{map[string]any{"severity": "error", "code": code, "diagnostics": text}},
	})
	return b
}

// fileWriter cuts a job's resources into NDJSON files of at most FileResources
// resources and about FileBytes bytes, one type per file, and stores each.
type fileWriter struct {
	ctx   context.Context
	store Store
	job   *exportjob.Job
	opts  Options
	typ   string
	buf   bytes.Buffer
	n     int
	seq   int
	// pending is the result of the file being stored (nil: none); files are those
	// stored, without their content.
	pending chan error
	mu      sync.Mutex
	files   []exportjob.File
}

func (w *fileWriter) add(typ string, content []byte) error {
	if typ != w.typ {
		if err := w.flush(); err != nil {
			return err
		}
		w.typ = typ
	}
	w.buf.Write(Line(content))
	w.buf.WriteByte('\n')
	w.n++
	if w.n >= w.opts.FileResources || w.buf.Len() >= w.opts.FileBytes {
		return w.flush()
	}
	return nil
}

// discard drops what is buffered of typ, and the files of typ already stored from the
// manifest (their rows go when the job ends: FinishExportJob keeps only the attempt's
// own, which these are, so they are left unlisted, and removed with the job).
func (w *fileWriter) discard(typ string) error {
	if err := w.wait(); err != nil {
		return err
	}
	if w.typ == typ {
		w.buf.Reset()
		w.n = 0
	}
	kept := w.files[:0]
	for _, f := range w.files {
		if f.Type != typ {
			kept = append(kept, f)
		}
	}
	w.files = kept
	return nil
}

// flush stores what is buffered as the next file, in the background: the walk goes
// on while the file is written (one file in flight, so memory holds at most two).
func (w *fileWriter) flush() error {
	if w.n == 0 {
		return nil
	}
	if err := w.wait(); err != nil {
		return err
	}
	w.seq++
	f := exportjob.File{JobID: w.job.ID, Attempt: w.job.Attempt, Seq: w.seq, Type: w.typ, Count: w.n}
	f.Content = bytes.Clone(w.buf.Bytes())
	w.buf.Reset()
	w.n = 0
	done := make(chan error, 1)
	w.pending = done
	go func() {
		err := w.store.AddExportFile(w.ctx, &f)
		f.Content = nil
		if err == nil {
			w.mu.Lock()
			w.files = append(w.files, f)
			w.mu.Unlock()
		}
		done <- err
	}()
	return nil
}

// wait waits for the file in flight, if any, and returns its error.
func (w *fileWriter) wait() error {
	if w.pending == nil {
		return nil
	}
	err := <-w.pending
	w.pending = nil
	return err
}

// Line is content as one NDJSON line, without its newline: a document stored with
// line breaks in it is compacted (JSON strings hold none: they are escaped).
func Line(content []byte) []byte {
	if bytes.IndexByte(content, '\n') < 0 {
		return content
	}
	var c bytes.Buffer
	if err := json.Compact(&c, content); err != nil {
		return bytes.ReplaceAll(content, []byte("\n"), []byte(" "))
	}
	return c.Bytes()
}
