package postgres

import (
	"context"
	"time"

	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
)

// The jobs and files of bulk data export (sqlstore/export.go), on gorm over the pool.

// CreateExportJob stores a new job.
func (s *Store) CreateExportJob(ctx context.Context, j *exportjob.Job) error {
	return dialect.CreateExportJob(ctx, s.gdb, j)
}

// ExportJob reads a job: CodeNotFound when there is none.
func (s *Store) ExportJob(ctx context.Context, id string) (*exportjob.Job, error) {
	return dialect.ExportJob(ctx, s.gdb, id)
}

// ClaimExportJob gives owner the oldest claimable job (nil: none). Instances claiming
// at once skip each other's locked rows (FOR UPDATE SKIP LOCKED): a job goes to one.
func (s *Store) ClaimExportJob(ctx context.Context, owner string, now, leaseUntil, expires time.Time) (*exportjob.Job, error) {
	return dialect.ClaimExportJob(ctx, s.gdb, owner, now, leaseUntil, expires, "FOR UPDATE SKIP LOCKED")
}

// RenewExportLease extends owner's lease on a job; false: it is no longer owner's.
func (s *Store) RenewExportLease(ctx context.Context, id, owner string, attempt int, until, expires time.Time, progress string) (bool, error) {
	return dialect.RenewExportLease(ctx, s.gdb, id, owner, attempt, until, expires, progress)
}

// AddExportFile stores one output file.
func (s *Store) AddExportFile(ctx context.Context, f *exportjob.File) error {
	return dialect.AddExportFile(ctx, s.gdb, f)
}

// FinishExportJob ends owner's job; false: it is no longer owner's.
func (s *Store) FinishExportJob(ctx context.Context, id, owner string, attempt int, state string, manifest []byte, errText string, expires time.Time) (bool, error) {
	return dialect.FinishExportJob(ctx, s.gdb, id, owner, attempt, state, manifest, errText, expires)
}

// DeleteExportJob removes a job and its files; false: there was none.
func (s *Store) DeleteExportJob(ctx context.Context, id string) (bool, error) {
	return dialect.DeleteExportJob(ctx, s.gdb, id)
}

// ExportFile reads one output file: CodeNotFound when there is none.
func (s *Store) ExportFile(ctx context.Context, jobID string, attempt, seq int) (*exportjob.File, error) {
	return dialect.ExportFile(ctx, s.gdb, jobID, attempt, seq)
}

// PurgeExportJobs removes the jobs expired before now with their files.
func (s *Store) PurgeExportJobs(ctx context.Context, now time.Time) (int, error) {
	return dialect.PurgeExportJobs(ctx, s.gdb, now)
}
