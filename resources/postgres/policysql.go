package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// SQLSTATEs that CheckPolicySQL explains.
const (
	readOnlyViolation      = "25006" // read_only_sql_transaction
	insufficientPrivilege  = "42501"
	policyCleanupTimeout   = 5 * time.Second
	policyBeginReadOnlySQL = "BEGIN READ ONLY; SET LOCAL statement_timeout = '" + policyTimeout + "'"
	// ROLLBACK also undoes what the query did to the session's settings
	// (set_config(…, false)); a session-level advisory lock outlives the transaction,
	// so those are released too, lest a policy hold one of fhirbox's locks.
	policyEndSQL = "ROLLBACK; SELECT pg_advisory_unlock_all()"
)

// inPolicyTx runs f on a connection of the policy pool, inside a read-only
// transaction with the policy timeout, and rolls it back.
func (s *Store) inPolicyTx(ctx context.Context, f func(pc *pgx.Conn) error) error {
	if s.policy == nil || s.policy.db == nil {
		if s.policy != nil && s.policy.public != nil {
			return s.policy.public
		}
		return s.PolicySQLDisabled()
	}
	conn, err := s.policy.db.Conn(ctx)
	if err != nil {
		return translate(ctx, err)
	}
	defer conn.Close()
	var ferr error
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, policyBeginReadOnlySQL); err != nil {
			return err
		}
		ferr = f(pc)
		cctx, cancel := context.WithTimeout(context.Background(), policyCleanupTimeout)
		defer cancel()
		if _, err := pc.Exec(cctx, policyEndSQL); err != nil {
			// The connection's state is unknown: close it, so that the pool drops it
			// rather than hand it to the next policy.
			_ = pc.Close(cctx)
		}
		return nil
	})
	if err != nil {
		return translate(ctx, err)
	}
	return ferr
}

// CheckPolicySQL validates the query of a sql AccessPolicy when it is written, as the
// policy role: it must parse and plan in a read-only transaction, take nparams
// parameters, return one boolean column, and run once (with absent values) without
// writing or touching what policies may not read.
func (s *Store) CheckPolicySQL(ctx context.Context, query string, nparams int) error {
	var check error
	err := s.inPolicyTx(ctx, func(pc *pgx.Conn) error {
		sd, err := pc.Prepare(ctx, "", query)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				check = compileError(pe)
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
		// A query that writes, or reads what the policy role may not, plans fine and
		// then fails on every request: run it once, with absent values, to find out.
		rows, err := pc.Query(ctx, query, make([]any, nparams)...)
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch pe.Code {
			case readOnlyViolation:
				check = errors.New("the query must only read: policies run in a read-only transaction")
			case insufficientPrivilege:
				check = errors.New("the query writes, or uses a table or function that policies may not: policies only read resource and resource_history (without secret fields)")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return check
}

// compileError says why a policy query does not compile. Syntax errors and unknown
// names (SQLSTATE class 42) quote only the query's own text, which its author needs to
// see; any other class (a failed cast of a constant folded while planning, say) could
// quote data, so only its SQLSTATE is told.
func compileError(pe *pgconn.PgError) error {
	if strings.HasPrefix(pe.Code, "42") {
		return fmt.Errorf("the query does not compile: %s", pe.Message)
	}
	return fmt.Errorf("the query does not compile: PostgreSQL refused it with SQLSTATE %s", pe.Code)
}

// EvalPolicySQL runs the query of a sql AccessPolicy as the policy role, read-only,
// with a short statement timeout, and returns its boolean; no row or NULL is false.
func (s *Store) EvalPolicySQL(ctx context.Context, query string, args []any) (bool, error) {
	var ok pgtype.Bool
	err := s.inPolicyTx(ctx, func(pc *pgx.Conn) error {
		err := pc.QueryRow(ctx, query, args...).Scan(&ok)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return false, err
	}
	return ok.Valid && ok.Bool, nil
}
