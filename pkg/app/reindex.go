package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlite"
)

// Reindex re-extracts the search index of every live resource of types (none: every
// type) with this version's search parameters and those of the stored
// SearchParameters, without new versions: `fhirbox reindex`. On PostgreSQL servers may
// run meanwhile; a SQLite file is the one process's (see IsInUse). A SearchParameter
// still draft whose base types were all reindexed is marked active. progress is called
// after every batch; log receives the resources that cannot be indexed.
func Reindex(ctx context.Context, st Store, types []string, log *slog.Logger, progress func(resources.ReindexProgress)) (resources.ReindexSummary, error) {
	svc := resources.NewService(resources.DefaultRegistry(), st, resources.Options{})
	if err := svc.LoadSearchParameters(ctx); err != nil && resources.ErrorCode(err) != resources.CodeUnprocessable {
		return resources.ReindexSummary{}, err
	} else if err != nil {
		log.Error("a stored SearchParameter cannot be applied; the others are", "err", err)
	}
	sum, err := svc.Reindex(ctx, resources.ReindexOptions{Types: types, Progress: progress, Log: log})
	if err != nil {
		return sum, err
	}
	return sum, svc.MarkSearchParametersIndexed(ctx, types)
}

// IsInUse reports whether err is OpenStore's on a SQLite file that a running server
// (or another command) has open.
func IsInUse(err error) bool { return errors.Is(err, sqlite.ErrInUse) }
