package resources

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"
)

// How a SearchParameter resource becomes a search parameter (docs/search.md, "Your own
// search parameters and reindexing"):
//
//   - A write is checked (ParseSearchParameter) inside its transaction, and its status
//     set by the server: draft when its definition (code, base, type, expression,
//     target) is new, as it stays until the resources that existed before are indexed;
//     then the reindex job writes it again as active. A write that keeps the definition
//     keeps the status.
//   - Once committed, the parameter joins the registry of the process at once, and of
//     the other processes on the database through the change feed (OnWrite); each
//     process loads every stored SearchParameter at start.
//   - The process that took the write reindexes the base types in the background
//     (runJob); a process that starts while one is draft reindexes it too, so a job
//     cut short by a crash is finished by the next start.
//   - Deleting the SearchParameter removes the parameter, and a job removes its index
//     rows.

// statusSlack is how far back the second pass of a job looks: resources last updated
// since its start, less this, are re-extracted again, since another server may have
// written them before it learnt of the parameter (through the change feed, within
// milliseconds) or with a clock a little behind.
const statusSlack = time.Minute

type indexedKey struct{}

// EnableSearchParameters makes SearchParameter resources define search parameters:
// it registers the checks and hooks of their writes, loads the stored ones into the
// registry and resumes the indexing of those still draft. Background jobs run until
// ctx ends. log receives their progress.
func (s *Service) EnableSearchParameters(ctx context.Context, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	s.AddAmender(SearchParameterType, s.amendSearchParameter)
	s.OnCommit(SearchParameterType, func(_ context.Context, prev, next *Resource) {
		s.searchParameterCommitted(ctx, log, prev, next)
	})
	s.OnWrite(func(ev WriteEvent) {
		switch {
		case ev.Reset:
			if err := s.LoadSearchParameters(ctx); err != nil {
				// A reset comes when the change feed reconnects, often while the
				// database is still coming back: the outage is logged by the store, so
				// this is a warning, and the reload is retried until it succeeds, since
				// changes made meanwhile would otherwise stay unknown here.
				log.Warn("reloading SearchParameters failed; retrying", "err", err)
				go s.retryLoadSearchParameters(ctx, log)
			}
		case ev.Type == SearchParameterType:
			if err := s.reloadSearchParameter(ctx, ev.ID); err != nil {
				log.Error("reloading a SearchParameter failed", "id", ev.ID, "err", err)
			}
		}
	})
	if err := s.LoadSearchParameters(ctx); err != nil {
		return err
	}
	for _, c := range s.reg.Customs() {
		if !c.Active {
			s.startJob(ctx, log, c, c.Base, []string{c.Code})
		}
	}
	return nil
}

// retryLoadSearchParameters reloads the stored SearchParameters until it succeeds or ctx
// ends, one try a second; only one retry loop runs at a time.
func (s *Service) retryLoadSearchParameters(ctx context.Context, log *slog.Logger) {
	if !s.reloading.CompareAndSwap(false, true) {
		return
	}
	defer s.reloading.Store(false)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.LoadSearchParameters(ctx); err == nil {
			log.Debug("SearchParameters reloaded")
			return
		}
	}
}

// amendSearchParameter checks a SearchParameter being written and sets its status.
func (s *Service) amendSearchParameter(ctx context.Context, cur *Resource, doc map[string]any) error {
	id := ""
	var prev *CustomParam
	prevStatus := ""
	if cur != nil {
		id = cur.ID
		if !cur.Deleted {
			var pd map[string]any
			if err := json.Unmarshal(cur.Content, &pd); err == nil {
				prev, _ = s.reg.parseSearchParameter(id, pd)
				prevStatus, _ = pd["status"].(string)
			}
		}
	}
	c, err := s.reg.ParseSearchParameter(id, doc)
	if err != nil {
		return err
	}
	status := "draft"
	switch def, _ := ctx.Value(indexedKey{}).(string); {
	case def != "" && def == c.Definition():
		status = "active" // the reindex job, done
	case prev != nil && prev.Definition() == c.Definition() && (prevStatus == "active" || prevStatus == "draft"):
		status = prevStatus
	}
	doc["status"] = status
	return nil
}

// searchParameterCommitted applies a SearchParameter written by this process and
// starts indexing it when its definition is new; prev is the version it replaced.
func (s *Service) searchParameterCommitted(ctx context.Context, log *slog.Logger, prev, next *Resource) {
	// The definition replaced is read from the version replaced, not from the registry,
	// which the change feed may have brought up to date already.
	var old *CustomParam
	if prev != nil && !prev.Deleted {
		var doc map[string]any
		if json.Unmarshal(prev.Content, &doc) == nil {
			old, _ = s.reg.parseSearchParameter(prev.ID, doc)
		}
	}
	if next.Deleted {
		s.stopJob(next.ID, "")
		s.reg.RemoveCustom(next.ID)
		if old != nil {
			s.startJob(ctx, log, &CustomParam{ID: old.ID, Version: next.VersionID, Code: old.Code}, old.Base, []string{old.Code})
		}
		return
	}
	c, err := s.customOf(next)
	if err != nil {
		log.Error("a SearchParameter was stored but cannot be applied", "id", next.ID, "err", err)
		return
	}
	if err := s.reg.SetCustom(c); err != nil {
		log.Error("a SearchParameter was stored but cannot be applied", "id", next.ID, "err", err)
		return
	}
	if c.Active || s.jobRunning(c.ID, c.Definition()) {
		return
	}
	s.stopJob(c.ID, "")
	types, params := c.Base, []string{c.Code}
	if old != nil && old.Definition() != c.Definition() {
		// The old definition's rows go as the new one's come.
		types = sortedUnique(append(slices.Clone(types), old.Base...))
		params = sortedUnique(append(params, old.Code))
	}
	s.startJob(ctx, log, c, types, params)
}

// customOf reads the parameter a stored SearchParameter version defines.
func (s *Service) customOf(r *Resource) (*CustomParam, error) {
	var doc map[string]any
	if err := json.Unmarshal(r.Content, &doc); err != nil {
		return nil, Internal(err)
	}
	c, err := s.reg.ParseSearchParameter(r.ID, doc)
	if err != nil {
		return nil, err
	}
	c.Version = r.VersionID
	return c, nil
}

// reloadSearchParameter applies the stored state of SearchParameter id, written by
// any process: a job of this process indexing another definition stops.
func (s *Service) reloadSearchParameter(ctx context.Context, id string) error {
	cur, err := s.Current(ctx, SearchParameterType, id)
	if err != nil {
		return err
	}
	if cur == nil {
		s.reg.RemoveCustom(id)
		return nil
	}
	c, err := s.customOf(cur)
	if err != nil {
		return err
	}
	s.stopJob(id, c.Definition())
	return s.reg.SetCustom(c)
}

// LoadSearchParameters puts every stored SearchParameter into the registry, and takes
// out those no longer stored. A SearchParameter that no longer fits (a clash with
// another, written at the same moment) is left out, and the first error returned once
// the others are in.
func (s *Service) LoadSearchParameters(ctx context.Context) error {
	seen := map[string]bool{}
	var first error
	const page = 500
	for off := 0; ; off += page {
		td, _ := s.reg.Type(SearchParameterType)
		res, err := s.store.Search(ctx, &Query{Type: SearchParameterType, Count: page, Offset: off, Total: TotalNone,
			Sort: []SortKey{{Param: td.Param("_id")}}})
		if err != nil {
			return err
		}
		for _, r := range res.Entries {
			seen[r.ID] = true
			c, err := s.customOf(r)
			if err == nil {
				err = s.reg.SetCustom(c)
			}
			if err != nil && first == nil {
				first = err
			}
		}
		if len(res.Entries) < page {
			break
		}
	}
	for _, c := range s.reg.Customs() {
		if !seen[c.ID] {
			s.reg.RemoveCustom(c.ID)
		}
	}
	return first
}

// jobRunning reports whether a job of this process indexes definition def of
// SearchParameter id.
func (s *Service) jobRunning(id, def string) bool {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	j := s.jobs.running[id]
	return j != nil && j.def == def
}

// stopJob stops the job of SearchParameter id, unless it indexes definition keep.
func (s *Service) stopJob(id, keep string) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if j := s.jobs.running[id]; j != nil && (keep == "" || j.def != keep) {
		j.cancel()
		delete(s.jobs.running, id)
		s.endJob(j, "superseded", "")
	}
}

// endJob records the end of j; jobs.mu is held.
func (s *Service) endJob(j *ReindexJob, state, msg string) {
	if j.State != "running" {
		return
	}
	j.State, j.Error, j.Ended = state, msg, FormatInstant(time.Now())
	s.jobs.ended = append(s.jobs.ended, j)
	if n := len(s.jobs.ended); n > maxEndedJobs {
		s.jobs.ended = slices.Delete(s.jobs.ended, 0, n-maxEndedJobs)
	}
}

// startJob indexes the parameters params of types in the background for c: the
// parameter of a SearchParameter (marked active once done) or, when c defines nothing
// (a deletion), the removal of its rows.
func (s *Service) startJob(ctx context.Context, log *slog.Logger, c *CustomParam, types, params []string) {
	jctx, cancel := context.WithCancel(ctx)
	now := time.Now()
	j := &ReindexJob{
		id: c.ID, SearchParameter: SearchParameterType + "/" + c.ID, Version: c.Version, Code: c.Code,
		Types: types, State: "running", Started: FormatInstant(now), Pass: "all",
		cancel: cancel, start: now,
	}
	if c.Type != "" {
		j.def = c.Definition()
	}
	s.jobs.mu.Lock()
	if s.jobs.running == nil {
		s.jobs.running = map[string]*ReindexJob{}
	}
	s.jobs.running[c.ID] = j
	s.jobs.mu.Unlock()
	go s.runJob(jctx, log, j, types, params)
}

// runJob runs j: every resource of types, then those written since shortly before it
// began, and finally marks the SearchParameter active.
func (s *Service) runJob(ctx context.Context, log *slog.Logger, j *ReindexJob, types, params []string) {
	log.Info("reindex started", "searchParameter", j.SearchParameter, "version", j.Version, "code", j.Code, "types", types)
	lastLog := time.Now()
	progress := func(p ReindexProgress) {
		s.jobs.mu.Lock()
		if j.Pass == "all" {
			run := ReindexTypeRun{Type: p.Type, Done: p.Done, Total: p.Total, Rate: rate(p.Done, p.Elapsed), Skipped: p.Skipped}
			if p.Total > 0 {
				run.Percent = min(100, float64(int64(1000*float64(p.Done)/float64(p.Total)))/10)
			}
			if i := slices.IndexFunc(j.Progress, func(r ReindexTypeRun) bool { return r.Type == p.Type }); i >= 0 {
				j.Progress[i] = run
			} else {
				j.Progress = append(j.Progress, run)
			}
		}
		s.jobs.mu.Unlock()
		if p.Finished || time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			log.Info(p.Line(), "searchParameter", j.SearchParameter, "pass", j.Pass)
		}
	}
	opts := ReindexOptions{Types: types, Params: params, Progress: progress, Log: log}
	sum, err := s.Reindex(ctx, opts)
	if err == nil {
		s.jobs.mu.Lock()
		j.Pass = "recent"
		s.jobs.mu.Unlock()
		opts.Since = j.start.Add(-statusSlack)
		_, err = s.Reindex(ctx, opts)
	}
	if err == nil && j.def != "" {
		err = s.markIndexed(ctx, j.id, j.def)
	}
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	if s.jobs.running[j.id] == j {
		delete(s.jobs.running, j.id)
	}
	switch {
	case err == nil:
		s.endJob(j, "done", "")
		log.Info("reindex done", "searchParameter", j.SearchParameter, "resources", sum.Resources, "seconds", sum.Elapsed.Seconds(), "per_second", sum.Rate())
	case ctx.Err() != nil:
		s.endJob(j, "stopped", "")
	default:
		s.endJob(j, "failed", err.Error())
		log.Error("reindex failed", "searchParameter", j.SearchParameter, "err", err)
	}
}

// MarkSearchParametersIndexed marks active the draft SearchParameters whose base types
// are all among types (none: every type), once those have been reindexed.
func (s *Service) MarkSearchParametersIndexed(ctx context.Context, types []string) error {
	for _, c := range s.reg.Customs() {
		if c.Active {
			continue
		}
		covered := true
		for _, b := range c.Base {
			covered = covered && (len(types) == 0 || slices.Contains(types, b))
		}
		if covered {
			if err := s.markIndexed(ctx, c.ID, c.Definition()); err != nil {
				return err
			}
		}
	}
	return nil
}

// markIndexed writes SearchParameter id again with status active, if it still has the
// definition def that was indexed; a write that came between is read again.
func (s *Service) markIndexed(ctx context.Context, id, def string) error {
	for attempt := 0; attempt < 10; attempt++ {
		cur, err := s.Current(ctx, SearchParameterType, id)
		if err != nil || cur == nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(cur.Content, &doc); err != nil {
			return Internal(err)
		}
		c, err := s.reg.parseSearchParameter(id, doc)
		if err != nil || c.Definition() != def || doc["status"] == "active" {
			return nil // changed meanwhile: its own job reports
		}
		doc["status"] = "active"
		_, _, err = s.Update(context.WithValue(WithTrusted(ctx), indexedKey{}, def), SearchParameterType, id, doc, ETag(cur.VersionID))
		if ErrorCode(err) != CodePreconditionFailed {
			return err
		}
	}
	return Errorf(CodeConflict, "SearchParameter/%s changed too often to be marked active", id)
}
