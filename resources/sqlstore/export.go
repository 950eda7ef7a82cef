package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"gorm.io/gorm"

	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
)

// The jobs of bulk data export are small relational rows, like the signing keys: they
// go through gorm (a row type, Create, First, conditional Updates). The files' bytes
// are rows too, so that whichever instance a client reaches can serve them.

// exportJobRow is a row of export_job (migrations/*/00010_export_jobs.sql). Instants
// are microseconds since the Unix epoch on both databases.
type exportJobRow struct {
	ID              string `gorm:"column:id;primaryKey"`
	State           string `gorm:"column:state"`
	Kind            string `gorm:"column:kind"`
	GroupID         string `gorm:"column:group_id"`
	Request         string `gorm:"column:request"`
	Types           string `gorm:"column:types"`
	Refused         string `gorm:"column:refused"`
	Since           int64  `gorm:"column:since"`
	OutputFormat    string `gorm:"column:output_format"`
	ClientID        string `gorm:"column:client_id"`
	UserID          string `gorm:"column:user_id"`
	SessionID       string `gorm:"column:session_id"`
	Created         int64  `gorm:"column:created_at"`
	TransactionTime int64  `gorm:"column:transaction_time"`
	Owner           string `gorm:"column:owner"`
	LeaseUntil      int64  `gorm:"column:lease_until"`
	Attempt         int    `gorm:"column:attempt"`
	Progress        string `gorm:"column:progress"`
	Error           string `gorm:"column:error"`
	Manifest        string `gorm:"column:manifest"`
	Expires         int64  `gorm:"column:expires_at"`
}

// TableName is the table gorm maps exportJobRow to.
func (exportJobRow) TableName() string { return "export_job" }

// exportFileRow is a row of export_file.
type exportFileRow struct {
	JobID   string `gorm:"column:job_id;primaryKey"`
	Attempt int    `gorm:"column:attempt;primaryKey"`
	Seq     int    `gorm:"column:seq;primaryKey"`
	Type    string `gorm:"column:resource_type"`
	Count   int    `gorm:"column:count"`
	Content []byte `gorm:"column:content"`
}

// TableName is the table gorm maps exportFileRow to.
func (exportFileRow) TableName() string { return "export_file" }

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func jobRow(j *exportjob.Job) exportJobRow {
	types, _ := json.Marshal(nonNil(j.Types))
	refused, _ := json.Marshal(nonNil(j.Refused))
	return exportJobRow{
		ID: j.ID, State: j.State, Kind: j.Kind, GroupID: j.GroupID, Request: j.Request,
		Types: string(types), Refused: string(refused), Since: micros(j.Since), OutputFormat: j.OutputFormat,
		ClientID: j.ClientID, UserID: j.UserID, SessionID: j.SessionID,
		Created: micros(j.Created), TransactionTime: micros(j.TransactionTime),
		Owner: j.Owner, LeaseUntil: micros(j.LeaseUntil), Attempt: j.Attempt,
		Progress: j.Progress, Error: j.Error, Manifest: string(j.Manifest), Expires: micros(j.Expires),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (r *exportJobRow) job() (*exportjob.Job, error) {
	j := &exportjob.Job{
		ID: r.ID, State: r.State, Kind: r.Kind, GroupID: r.GroupID, Request: r.Request,
		Since: fromMicros(r.Since), OutputFormat: r.OutputFormat,
		ClientID: r.ClientID, UserID: r.UserID, SessionID: r.SessionID,
		Created: fromMicros(r.Created), TransactionTime: fromMicros(r.TransactionTime),
		Owner: r.Owner, LeaseUntil: fromMicros(r.LeaseUntil), Attempt: r.Attempt,
		Progress: r.Progress, Error: r.Error, Expires: fromMicros(r.Expires),
	}
	if r.Manifest != "" {
		j.Manifest = []byte(r.Manifest)
	}
	if err := json.Unmarshal([]byte(r.Types), &j.Types); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(r.Refused), &j.Refused); err != nil {
		return nil, err
	}
	return j, nil
}

// CreateExportJob stores the new job j with db.
func (d *Dialect) CreateExportJob(ctx context.Context, db *gorm.DB, j *exportjob.Job) error {
	row := jobRow(j)
	return d.Translate(ctx, db.WithContext(ctx).Create(&row).Error)
}

// ExportJob reads the job id with db: CodeNotFound when there is none.
func (d *Dialect) ExportJob(ctx context.Context, db *gorm.DB, id string) (*exportjob.Job, error) {
	var row exportJobRow
	if err := db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		if err == gorm.ErrRecordNotFound {
			return nil, d.Translate(ctx, sql.ErrNoRows)
		}
		return nil, d.Translate(ctx, err)
	}
	j, err := row.job()
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	return j, nil
}

// ClaimExportJob gives owner the oldest job that is queued, or running on a lease
// that ended before now, with one statement of db: it becomes running under owner
// until leaseUntil, kept until expires, its attempt one more. lock is written after the statement's
// inner SELECT (PostgreSQL: FOR UPDATE SKIP LOCKED, so that instances claiming at
// once take different jobs or none; SQLite has one writer, which makes the statement
// atomic as it is). It returns nil when there is nothing to claim.
func (d *Dialect) ClaimExportJob(ctx context.Context, db *gorm.DB, owner string, now, leaseUntil, expires time.Time, lock string) (*exportjob.Job, error) {
	var rows []exportJobRow
	err := db.WithContext(ctx).Raw(`UPDATE export_job SET state = ?, owner = ?, lease_until = ?, expires_at = ?, attempt = attempt + 1
WHERE id = (SELECT id FROM export_job
            WHERE state = ? OR (state = ? AND lease_until < ?)
            ORDER BY created_at, id LIMIT 1 `+lock+`)
RETURNING *`, exportjob.Running, owner, micros(leaseUntil), micros(expires), exportjob.Queued, exportjob.Running, micros(now)).Scan(&rows).Error
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	j, err := rows[0].job()
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	// The files of earlier attempts are of no use now.
	if err := db.WithContext(ctx).Where("job_id = ? AND attempt < ?", j.ID, j.Attempt).Delete(&exportFileRow{}).Error; err != nil {
		return nil, d.Translate(ctx, err)
	}
	return j, nil
}

// owned selects the job id while owner holds it in attempt.
func owned(db *gorm.DB, id, owner string, attempt int) *gorm.DB {
	return db.Model(&exportJobRow{}).Where("id = ? AND owner = ? AND attempt = ? AND state = ?", id, owner, attempt, exportjob.Running)
}

// RenewExportLease extends the lease of the job that owner runs in attempt to until
// and its expiry to expires (a job is never swept while it runs) and records its
// progress, with db. False: the job is no longer the owner's (it was
// cancelled, or its lease ran out and another instance claimed it).
func (d *Dialect) RenewExportLease(ctx context.Context, db *gorm.DB, id, owner string, attempt int, until, expires time.Time, progress string) (bool, error) {
	res := owned(db.WithContext(ctx), id, owner, attempt).Updates(map[string]any{
		"lease_until": micros(until), "expires_at": micros(expires), "progress": progress})
	if res.Error != nil {
		return false, d.Translate(ctx, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// AddExportFile stores f with db. The job's foreign key refuses the file of a job
// deleted meanwhile; the caller learns that its job is gone at its next renewal.
func (d *Dialect) AddExportFile(ctx context.Context, db *gorm.DB, f *exportjob.File) error {
	row := exportFileRow{JobID: f.JobID, Attempt: f.Attempt, Seq: f.Seq, Type: f.Type, Count: f.Count, Content: f.Content}
	return d.Translate(ctx, db.WithContext(ctx).Create(&row).Error)
}

// FinishExportJob ends the job that owner runs in attempt, with db: state Done with
// manifest, or Failed with errText, kept until expires. The files of other attempts
// go. False: the job is no longer the owner's.
func (d *Dialect) FinishExportJob(ctx context.Context, db *gorm.DB, id, owner string, attempt int, state string, manifest []byte, errText string, expires time.Time) (bool, error) {
	var done bool
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := owned(tx, id, owner, attempt).Updates(map[string]any{
			"state": state, "manifest": string(manifest), "error": errText, "expires_at": micros(expires), "progress": "",
		})
		if res.Error != nil || res.RowsAffected != 1 {
			return res.Error
		}
		done = true
		return tx.Where("job_id = ? AND attempt <> ?", id, attempt).Delete(&exportFileRow{}).Error
	})
	if err != nil {
		return false, d.Translate(ctx, err)
	}
	return done, nil
}

// DeleteExportJob removes the job id and its files with db, and reports whether there
// was one.
func (d *Dialect) DeleteExportJob(ctx context.Context, db *gorm.DB, id string) (bool, error) {
	var n int64
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("job_id = ?", id).Delete(&exportFileRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ?", id).Delete(&exportJobRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return false, d.Translate(ctx, err)
	}
	return n == 1, nil
}

// ExportFile reads file seq of the job's attempt with db: CodeNotFound when there is
// none.
func (d *Dialect) ExportFile(ctx context.Context, db *gorm.DB, jobID string, attempt, seq int) (*exportjob.File, error) {
	var row exportFileRow
	err := db.WithContext(ctx).Where("job_id = ? AND attempt = ? AND seq = ?", jobID, attempt, seq).Take(&row).Error
	if err == gorm.ErrRecordNotFound {
		err = sql.ErrNoRows
	}
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	return &exportjob.File{JobID: row.JobID, Attempt: row.Attempt, Seq: row.Seq, Type: row.Type, Count: row.Count, Content: row.Content}, nil
}

// PurgeExportJobs removes, with their files, the jobs that expired before now, with
// db, and returns how many.
func (d *Dialect) PurgeExportJobs(ctx context.Context, db *gorm.DB, now time.Time) (int, error) {
	var n int64
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("job_id IN (SELECT id FROM export_job WHERE expires_at < ?)", micros(now)).Delete(&exportFileRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("expires_at < ?", micros(now)).Delete(&exportJobRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, d.Translate(ctx, err)
	}
	return int(n), nil
}
