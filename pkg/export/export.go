// Package export is FHIR Bulk Data export (Bulk Data Access IG v2): the jobs that
// kick-off requests create, the runner that claims them one instance at a time and
// writes their NDJSON files into the database, and the manifest a finished job
// answers with. The HTTP surface (pkg/server/export.go) and the resources a job reads
// (through resources.Service, as the caller) are the server's; the rows are the
// stores' (resources/sqlstore/export.go).
package export

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
)

// Store keeps the jobs and their files: both SQL stores are one.
type Store interface {
	CreateExportJob(ctx context.Context, j *exportjob.Job) error
	// ExportJob reads a job: a resources.CodeNotFound error when there is none.
	ExportJob(ctx context.Context, id string) (*exportjob.Job, error)
	// ClaimExportJob makes the oldest job that is queued, or running on a lease ended
	// before now, owner's until leaseUntil, in one atomic step; nil when there is none.
	ClaimExportJob(ctx context.Context, owner string, now, leaseUntil, expires time.Time) (*exportjob.Job, error)
	RenewExportLease(ctx context.Context, id, owner string, attempt int, until, expires time.Time, progress string) (bool, error)
	AddExportFile(ctx context.Context, f *exportjob.File) error
	FinishExportJob(ctx context.Context, id, owner string, attempt int, state string, manifest []byte, errText string, expires time.Time) (bool, error)
	DeleteExportJob(ctx context.Context, id string) (bool, error)
	ExportFile(ctx context.Context, jobID string, attempt, seq int) (*exportjob.File, error)
	PurgeExportJobs(ctx context.Context, now time.Time) (int, error)
}

// Defaults of Options.
const (
	DefaultTTL           = time.Hour
	DefaultFileResources = 10000
	DefaultFileBytes     = 64 << 20
	DefaultLease         = 30 * time.Second
	DefaultPoll          = 2 * time.Second
	DefaultPageSize      = 1000
)

// Options configures the jobs.
type Options struct {
	// TTL is how long a job and its files are kept after it ends, or after its runner
	// last renewed its lease (FHIRBOX_EXPORT_TTL; 0: DefaultTTL).
	TTL time.Duration
	// FileResources and FileBytes end an output file at that many resources or bytes,
	// whichever comes first; the next resources of the type go to a new one (0: the
	// defaults).
	FileResources int
	FileBytes     int
	// Lease is how long a claim holds without renewal: an instance that dies leaves
	// its job to another after at most this (0: DefaultLease). It is renewed every
	// third of it.
	Lease time.Duration
	// Poll is how often an idle runner looks for a job (0: DefaultPoll); a kick-off on
	// the same instance wakes it at once.
	Poll time.Duration
	// PageSize is how many resources one read of a type returns (0: DefaultPageSize).
	PageSize int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Owner names this instance in the jobs it claims (empty: a random name).
	Owner string
}

func (o Options) withDefaults() Options {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.FileResources <= 0 {
		o.FileResources = DefaultFileResources
	}
	if o.FileBytes <= 0 {
		o.FileBytes = DefaultFileBytes
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Owner == "" {
		o.Owner = "instance-" + randomHex(8)
	}
	return o
}

// NewJobID returns an unguessable job id: the status and file URLs carry it.
func NewJobID() string { return randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
