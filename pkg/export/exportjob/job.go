// Package exportjob holds the row types of bulk data export that pkg/export and the
// stores share: a leaf, so that neither imports the other (as pkg/auth/signingkey).
package exportjob

import "time"

// The states of a job.
const (
	// Queued: kicked off, waiting for an instance to claim it.
	Queued = "queued"
	// Running: claimed by Owner until LeaseUntil; past it, another instance may claim it.
	Running = "running"
	// Done: Manifest holds the output manifest.
	Done = "done"
	// Failed: Error says why.
	Failed = "failed"
)

// The kinds of export (FHIR Bulk Data Access IG: system, patient and group level).
const (
	System  = "system"
	Patient = "patient"
	Group   = "group"
)

// Job is one export request and where it stands.
type Job struct {
	ID    string
	State string
	Kind  string
	// GroupID is the Group of a group-level export.
	GroupID string
	// Request is the kick-off URL, as the manifest repeats it.
	Request string
	// Types are the types to export, in order; Refused those the caller asked for (or
	// would have got) that its policies do not let it search, for the manifest's error.
	Types   []string
	Refused []string
	// Since (zero: none) keeps resources last updated at or after it.
	Since        time.Time
	OutputFormat string
	// The caller the job runs as: jobs are read, and their files served, to it alone.
	ClientID, UserID, SessionID string
	Created                     time.Time
	// TransactionTime is the instant the export reflects: nothing written after it is
	// exported.
	TransactionTime time.Time
	Owner           string
	LeaseUntil      time.Time
	// Attempt counts the claims: the files of the current attempt are the job's.
	Attempt  int
	Progress string
	Error    string
	// Manifest is the output manifest's JSON once Done.
	Manifest []byte
	// Expires is when the sweep removes the job and its files.
	Expires time.Time
}

// File is one NDJSON output file of a job's attempt.
type File struct {
	JobID   string
	Attempt int
	// Seq numbers the job's files from 1, in the order they were written.
	Seq     int
	Type    string
	Count   int
	Content []byte
}
