package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
)

// The signing keys are a small relational side table, read at start and on a rare
// reload, so they go through gorm rather than hand-written SQL: a row type, a find, a
// create, a conditional update. The resource tables stay on database/sql and pgx, whose
// statements are shaped by hand for the hot paths.

// keyRow is a row of signing_key (migrations/*/00003_signing_keys.sql).
type keyRow struct {
	KID        string  `gorm:"column:kid;primaryKey"`
	PrivatePEM string  `gorm:"column:private_pem"`
	Created    instant `gorm:"column:created_at"`
}

// TableName is the table gorm maps keyRow to.
func (keyRow) TableName() string { return "signing_key" }

// instant is created_at as either database returns it: a timestamptz on PostgreSQL,
// microseconds since the Unix epoch on SQLite (see Dialect.Time).
type instant time.Time

// Scan reads either form, as UTC.
func (t *instant) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = instant(v.UTC())
	case int64:
		*t = instant(time.UnixMicro(v).UTC())
	default:
		return fmt.Errorf("signing_key.created_at is a %T, want a time or an integer", src)
	}
	return nil
}

// keyOrder lists the keys oldest first; kid settles ties.
const keyOrder = "created_at, kid"

// SigningKeys returns every stored signing key with db, oldest first.
func (d *Dialect) SigningKeys(ctx context.Context, db *gorm.DB) ([]signingkey.Key, error) {
	keys, err := signingKeys(db.WithContext(ctx))
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	return keys, nil
}

func signingKeys(db *gorm.DB) ([]signingkey.Key, error) {
	var rows []keyRow
	if err := db.Order(keyOrder).Find(&rows).Error; err != nil {
		return nil, err
	}
	var keys []signingkey.Key
	for _, r := range rows {
		keys = append(keys, signingkey.Key{KID: r.KID, PrivatePEM: []byte(r.PrivatePEM), Created: time.Time(r.Created)})
	}
	return keys, nil
}

// AddSigningKeyIfNone stores k unless a key exists already, in one transaction of db,
// and returns the keys stored afterwards, oldest first. The transaction runs lock (if
// any) first, which keeps concurrent callers from both finding no key; created is the
// value stored in created_at (a time, an integer or a gorm.Expr such as now()).
func (d *Dialect) AddSigningKeyIfNone(ctx context.Context, db *gorm.DB, k signingkey.Key, created any,
	lock func(tx *gorm.DB) error) ([]signingkey.Key, error) {
	if k.KID == "" || len(k.PrivatePEM) == 0 {
		return nil, errors.New(d.Name + ": a signing key needs a kid and a private key")
	}
	var keys []signingkey.Key
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if lock != nil {
			if err := lock(tx); err != nil {
				return err
			}
		}
		var err error
		if keys, err = signingKeys(tx); err != nil || len(keys) > 0 {
			return err
		}
		// A map, not a keyRow: created may be an expression of the database's.
		row := map[string]any{"kid": k.KID, "private_pem": string(k.PrivatePEM), "created_at": created}
		if err := tx.Model(&keyRow{}).Create(row).Error; err != nil {
			return err
		}
		keys, err = signingKeys(tx)
		return err
	})
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	return keys, nil
}

// ReplaceSigningKeyPEM sets the private key of kid to new where it is still old, with
// db, and reports whether a row changed. It is one UPDATE whose WHERE compares with
// old, which makes it safe for instances that start together and each encrypt the same
// plaintext key: one wins, the others change nothing and read the winner's value.
func (d *Dialect) ReplaceSigningKeyPEM(ctx context.Context, db *gorm.DB, kid string, old, new []byte) (bool, error) {
	if len(new) == 0 {
		return false, errors.New(d.Name + ": a signing key needs a private key")
	}
	res := db.WithContext(ctx).Model(&keyRow{}).
		Where("kid = ? AND private_pem = ?", kid, string(old)).
		Update("private_pem", string(new))
	if res.Error != nil {
		return false, d.Translate(ctx, res.Error)
	}
	return res.RowsAffected == 1, nil
}
