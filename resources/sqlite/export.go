package sqlite

import (
	"context"
	"time"

	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
)

// The jobs and files of bulk data export (sqlstore/export.go), on gorm: writes on the
// write connection, reads of jobs and files on the read pool.

// CreateExportJob stores a new job.
func (s *Store) CreateExportJob(ctx context.Context, j *exportjob.Job) error {
	return dialect.CreateExportJob(ctx, s.gwrite, j)
}

// ExportJob reads a job: CodeNotFound when there is none.
func (s *Store) ExportJob(ctx context.Context, id string) (*exportjob.Job, error) {
	return dialect.ExportJob(ctx, s.gread, id)
}

// ClaimExportJob gives owner the oldest claimable job (nil: none), in one UPDATE on
// the one write connection: two claims never interleave.
func (s *Store) ClaimExportJob(ctx context.Context, owner string, now, leaseUntil, expires time.Time) (*exportjob.Job, error) {
	return dialect.ClaimExportJob(ctx, s.gwrite, owner, now, leaseUntil, expires, "")
}

// RenewExportLease extends owner's lease on a job; false: it is no longer owner's.
func (s *Store) RenewExportLease(ctx context.Context, id, owner string, attempt int, until, expires time.Time, progress string) (bool, error) {
	return dialect.RenewExportLease(ctx, s.gwrite, id, owner, attempt, until, expires, progress)
}

// AddExportFile stores one output file.
func (s *Store) AddExportFile(ctx context.Context, f *exportjob.File) error {
	return dialect.AddExportFile(ctx, s.gwrite, f)
}

// FinishExportJob ends owner's job; false: it is no longer owner's.
func (s *Store) FinishExportJob(ctx context.Context, id, owner string, attempt int, state string, manifest []byte, errText string, expires time.Time) (bool, error) {
	return dialect.FinishExportJob(ctx, s.gwrite, id, owner, attempt, state, manifest, errText, expires)
}

// DeleteExportJob removes a job and its files; false: there was none.
func (s *Store) DeleteExportJob(ctx context.Context, id string) (bool, error) {
	return dialect.DeleteExportJob(ctx, s.gwrite, id)
}

// ExportFile reads one output file: CodeNotFound when there is none.
func (s *Store) ExportFile(ctx context.Context, jobID string, attempt, seq int) (*exportjob.File, error) {
	return dialect.ExportFile(ctx, s.gread, jobID, attempt, seq)
}

// PurgeExportJobs removes the jobs expired before now with their files.
func (s *Store) PurgeExportJobs(ctx context.Context, now time.Time) (int, error) {
	return dialect.PurgeExportJobs(ctx, s.gwrite, now)
}
