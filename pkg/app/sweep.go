package app

import (
	"context"
	"time"

	"github.com/fhirbox/fhirbox/pkg/auth"
)

// DefaultSessionRetention is how long an ended or closed Session stays readable, as the
// record of who signed in when, before the sweeper removes it.
const DefaultSessionRetention = 7 * 24 * time.Hour

// codeRetention is how long a spent or expired authorization code is kept: it records
// nothing worth keeping, and anyone may have one made (GET /auth/authorize).
const codeRetention = time.Hour

// sweepBatch is how many resources one transaction of the sweeper removes.
const sweepBatch = 500

// Sweep removes, with their history, the Sessions that ended or were closed more than
// the retention ago and the authorization codes that expired or were spent more than an
// hour ago: every token issued writes one, and nothing else would ever remove them. A
// Session whose refresh token has no expiry never ends by itself and is kept until it is
// closed. SMART launch contexts go an hour after they expire, as codes do. It also
// removes the expired result sets of searches (resources/resultset.go), and the $export
// jobs, and their files, kept past FHIRBOX_EXPORT_TTL. It returns how many resources it
// removed.
func (a *App) Sweep(ctx context.Context) (int, error) {
	now := a.now()
	total := 0
	for _, j := range []struct {
		typ, param string
		keep       time.Duration
	}{
		{auth.SessionType, "ends", a.retention},
		{auth.CodeType, "exp", codeRetention},
		// Expired SMART launch contexts, as long after as codes.
		{auth.LaunchType, "exp", codeRetention},
	} {
		cut := now.Add(-j.keep)
		for {
			n, err := a.Store.Purge(ctx, j.typ, j.param, cut, cut, sweepBatch)
			total += n
			if err != nil {
				return total, err
			}
			if n < sweepBatch {
				break
			}
		}
	}
	// Expired result sets of stable paging go too; they are not resources, so they are
	// not counted (a page request refuses an expired set before it is swept).
	if _, err := a.Store.PurgeResultSets(ctx, now); err != nil {
		return total, err
	}
	// $export jobs past their time go with their files; not resources either.
	if _, err := a.Store.PurgeExportJobs(ctx, now); err != nil {
		return total, err
	}
	return total, nil
}

// SweepEvery runs Sweep at once and then every interval until ctx ends. Several
// instances on one database may all sweep: a resource removed twice is removed once.
func (a *App) SweepEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := a.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("removing ended sessions failed", "removed", n, "err", err)
		case n > 0:
			a.log.Info("removed ended sessions and authorization codes", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
