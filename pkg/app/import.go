package app

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/bulkimport"
	"github.com/fhirbox/fhirbox/resources"
)

// ImportStore returns the sink of `fhirbox import` on st: the resource engine as the
// server builds it for writes — R4 validation per validation, the checks of
// AccessPolicies, Clients and SearchParameters, the stored SearchParameters indexed —
// writing as a client would (not as the server's own writes: every resource is
// validated, hidden fields are not taken from files). Servers on the same PostgreSQL database learn of what
// their caches hold through the change feed, as for any write.
func ImportStore(ctx context.Context, st Store, validation resources.ValidationMode, log *slog.Logger) (*bulkimport.Store, error) {
	svc := resources.NewService(resources.DefaultRegistry(), st, resources.Options{Validation: validation})
	compiler := &accesspolicy.Compiler{}
	if r, ok := st.(accesspolicy.SQLRunner); ok {
		compiler.SQL = r
	}
	svc.AddValidator(accesspolicy.ResourceType, func(ctx context.Context, doc map[string]any) error {
		_, err := compiler.Compile(ctx, doc)
		return err
	})
	svc.AddValidator("Client", func(_ context.Context, doc map[string]any) error {
		return auth.ValidateClient(doc)
	})
	// As the server does: stored SearchParameters are indexed, and imported ones are
	// checked and made draft; their indexing runs in the background while the import
	// lasts, and a server's next start (or fhirbox reindex) finishes what it did not.
	if err := svc.EnableSearchParameters(ctx, log); err != nil && resources.ErrorCode(err) != resources.CodeUnprocessable {
		return nil, err
	} else if err != nil {
		log.Error("a stored SearchParameter cannot be applied; the others are", "err", err)
	}
	return &bulkimport.Store{Service: svc, Lookup: lookup(st)}, nil
}

// lookup reads the current rows of a batch's ids in one statement.
func lookup(st Store) bulkimport.Lookup {
	db := st.SQL()
	return func(ctx context.Context, typ string, ids []string) (map[string]*resources.Resource, error) {
		var q strings.Builder
		q.WriteString(`SELECT id, version_id, deleted, content FROM resource WHERE resource_type = $1 AND id IN (`)
		args := make([]any, 0, len(ids)+1)
		args = append(args, typ)
		for i, id := range ids {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("$" + strconv.Itoa(i+2))
			args = append(args, id)
		}
		q.WriteByte(')')
		rows, err := db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, resources.Internal(err)
		}
		defer rows.Close()
		out := make(map[string]*resources.Resource, len(ids))
		for rows.Next() {
			r := &resources.Resource{Type: typ}
			var content []byte
			if err := rows.Scan(&r.ID, &r.VersionID, &r.Deleted, &content); err != nil {
				return nil, resources.Internal(err)
			}
			r.Content = content
			out[r.ID] = r
		}
		if err := rows.Err(); err != nil {
			return nil, resources.Internal(err)
		}
		return out, nil
	}
}
