package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// readOnlyViolation is SQLSTATE read_only_sql_transaction.
const readOnlyViolation = "25006"

// policyTimeout bounds one sql policy query: it runs on the request path.
const policyTimeout = "500ms"

// CheckPolicySQL validates the query of a sql AccessPolicy when it is written: it must
// parse and plan in a read-only transaction, take nparams parameters and return one
// boolean column.
func (s *Store) CheckPolicySQL(ctx context.Context, query string, nparams int) error {
	conn, err := s.sql.Conn(ctx)
	if err != nil {
		return translate(ctx, err)
	}
	defer conn.Close()
	var check error
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background())
		sd, err := tx.Prepare(ctx, "", query)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				check = fmt.Errorf("the query does not compile: %s", pe.Message)
				return nil
			}
			return err
		}
		switch {
		case len(sd.ParamOIDs) != nparams:
			check = fmt.Errorf("the query has %d parameters but %d placeholders: use {{.path}} placeholders only, not $n", len(sd.ParamOIDs), nparams)
			return nil
		case len(sd.Fields) != 1 || sd.Fields[0].DataTypeOID != pgtype.BoolOID:
			check = errors.New("the query must return exactly one boolean column")
			return nil
		}
		// A query that writes plans fine and then fails on every request, since policies
		// run read-only: run it once, read-only, with absent values, to find out.
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '"+policyTimeout+"'"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, query, make([]any, nparams)...)
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == readOnlyViolation {
			check = errors.New("the query must only read: policies run in a read-only transaction")
		}
		return nil
	})
	if err != nil {
		return translate(ctx, err)
	}
	return check
}

// EvalPolicySQL runs the query of a sql AccessPolicy read-only, with a short statement
// timeout, and returns its boolean; no row or NULL is false.
func (s *Store) EvalPolicySQL(ctx context.Context, query string, args []any) (bool, error) {
	tx, err := s.sql.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, translate(ctx, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = '"+policyTimeout+"'"); err != nil {
		return false, translate(ctx, err)
	}
	var ok sql.NullBool
	err = tx.QueryRowContext(ctx, query, args...).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ok.Valid && ok.Bool, nil
}
