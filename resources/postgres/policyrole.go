package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/postgres/policyrole"
)

// sql AccessPolicies run arbitrary read-only SQL written by whoever may write policies
// or call POST /auth/test-policy. A read-only transaction on the application's own
// connection would let them read the signing key and every secret hash; SET ROLE would
// not confine them either, since a query can reset the role (set_config('role', …)) and
// run a nested query with the restored privileges (query_to_xml). So they run on a pool
// of their own, logged in as a role that can read two views and nothing else of ours:
//
//   - the role is <database>_policy (policyrole.Name), NOSUPERUSER NOCREATEDB NOCREATEROLE
//     NOINHERIT, member of no role, with read-only transactions, a 500 ms statement
//     timeout and search_path fhirbox_policy as its settings;
//   - fhirbox_policy.resource and fhirbox_policy.resource_history have the columns of
//     the tables they show, with every secret and hidden field of the registry removed
//     from content; the role may SELECT these and use the schema, nothing more;
//   - its password is random, kept in the policy_role table that only the application's
//     role can read, so that every instance on the database logs in with it.
//
// fhirbox creates the role when its database user may (superuser or CREATEROLE). An
// operator whose user may not gives a URL of a role of their own instead
// (WithPolicyDatabaseURL); fhirbox grants it the views and checks at start that it
// reaches nothing else. Without either, sql policies are off (PolicySQLDisabled).

// policyLock is the pg_advisory_xact_lock key under which the schema, views and role
// are set up, so that instances starting together do not race on the DDL. ("fhirboxp".)
const policyLock int64 = 0x66686972626f7870

// policyTimeout bounds one sql policy query: it runs on the request path.
const policyTimeout = "500ms"

// policySettings are set on the role and, again, on every connection of the pool, so
// that a role the operator made (WithPolicyDatabaseURL) gets them too.
var policySettings = map[string]string{
	"default_transaction_read_only":       "on",
	"statement_timeout":                   policyTimeout,
	"search_path":                         policyrole.Schema,
	"idle_in_transaction_session_timeout": "5s",
}

// WithPolicyDatabaseURL makes sql policies run as the user of url
// (FHIRBOX_POLICY_DATABASE_URL), for servers whose database user may not create the
// policy role. It must name the same database; at start the store grants that user the
// policy views and refuses to open if it can read anything else of fhirbox's.
func WithPolicyDatabaseURL(url string) Option {
	return func(c *config) { c.policyURL = url }
}

// policyDB is the pool that sql policies run on.
type policyDB struct {
	db  *sql.DB // nil when sql policies are off
	off error   // why they are off, in full, for the log at start
	// public is what a policy writer is told: off without the database's text, which a
	// 422 must not carry.
	public error
}

// uncheckedError is checkConfined's failure to ask the database, as opposed to a
// privilege it found.
type uncheckedError struct{ err error }

func (u uncheckedError) Error() string { return "could not be checked: " + oneLine(u.err) }

// policiesOff turns sql policies off because what failed; cause, the database's error
// (nil when none), goes to the log only.
func policiesOff(what string, cause error) *policyDB {
	if cause == nil {
		err := errors.New("sql policies are off: " + what)
		return &policyDB{off: err, public: err}
	}
	return &policyDB{off: fmt.Errorf("sql policies are off: %s: %s", what, oneLine(cause)),
		public: fmt.Errorf("sql policies are off: %s (the server's log at start says why)", what)}
}

func (p *policyDB) close() error {
	if p == nil || p.db == nil {
		return nil
	}
	return p.db.Close()
}

// PolicySQLDisabled reports why this store refuses sql policies, or nil if it runs them.
// The server logs it once at start.
func (s *Store) PolicySQLDisabled() error {
	if s.policy == nil {
		return errors.New("sql policies are off: the store has no policy role")
	}
	return s.policy.off
}

// openPolicy prepares the policy views and opens the pool of the policy role. Problems
// with a role fhirbox makes itself turn sql policies off with the reason; problems with
// the operator's policyURL stop the start, since that setting was asked for.
func openPolicy(ctx context.Context, app *sql.DB, gdb *gorm.DB, pcfg *pgx.ConnConfig, c config) (*policyDB, error) {
	info, err := setupPolicyViews(ctx, app)
	if err != nil {
		if c.policyURL != "" {
			return nil, fmt.Errorf("postgres: preparing the sql policy views: %s", oneLine(err))
		}
		return policiesOff("preparing their views failed", err), nil
	}
	var cfg *pgx.ConnConfig
	if c.policyURL != "" {
		if cfg, err = pgx.ParseConfig(c.policyURL); err != nil {
			return nil, fmt.Errorf("postgres: invalid FHIRBOX_POLICY_DATABASE_URL: %s", oneLine(err))
		}
	} else {
		if !info.canCreateRoles {
			return policiesOff(fmt.Sprintf("the database user %q may not create the role they run as (it needs CREATEROLE), and FHIRBOX_POLICY_DATABASE_URL is not set", info.user), nil), nil
		}
		role := policyrole.Name(info.database)
		pw, err := ensurePolicyRole(ctx, gdb, role)
		if err != nil {
			return policiesOff("creating their role "+role+" failed", err), nil
		}
		cfg = pcfg.Copy()
		cfg.User, cfg.Password = role, pw
	}
	for k, v := range policySettings {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["application_name"] = "fhirbox-policy"
	db := stdlib.OpenDB(*cfg)
	n := max(2, c.maxConns/4)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	// fail stops the start when the operator asked for policyURL, and otherwise turns
	// sql policies off; cause, the database's error (or nil), goes to the log only.
	fail := func(what string, cause error) (*policyDB, error) {
		db.Close()
		if c.policyURL != "" {
			if cause != nil {
				what += ": " + oneLine(cause)
			}
			return nil, fmt.Errorf("postgres: FHIRBOX_POLICY_DATABASE_URL: %s", what)
		}
		return policiesOff(what, cause), nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var user, database string
	if err := db.QueryRowContext(pctx, `SELECT current_user, current_database()`).Scan(&user, &database); err != nil {
		return fail(fmt.Sprintf("cannot log in as %s (pg_hba.conf must let it log in with a password, over the host and port of FHIRBOX_DATABASE_URL)", cfg.User), errors.New(connError(err)))
	}
	if database != info.database {
		return fail(fmt.Sprintf("it names database %q, not %q", database, info.database), nil)
	}
	if c.policyURL != "" {
		if err := grantPolicyViews(ctx, gdb, user); err != nil {
			return fail("granting "+user+" the policy views", err)
		}
	}
	if err := checkConfined(pctx, db, info.schema); err != nil {
		var u uncheckedError
		if errors.As(err, &u) {
			return fail("the role "+user+" could not be checked", u.err)
		}
		return fail(fmt.Sprintf("the role %s %s", user, err), nil)
	}
	return &policyDB{db: db}, nil
}

// policyInfo is what setupPolicyViews learnt about the application's database user.
type policyInfo struct {
	user, database string
	schema         string // where the resource table is
	canCreateRoles bool
}

// setupPolicyViews creates (or replaces) the policy schema and its views, generated
// from the registry's secret and hidden fields.
func setupPolicyViews(ctx context.Context, app *sql.DB) (policyInfo, error) {
	var info policyInfo
	tx, err := app.BeginTx(ctx, nil)
	if err != nil {
		return info, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, policyLock); err != nil {
		return info, err
	}
	err = tx.QueryRowContext(ctx, `SELECT current_user, current_database(),
		(SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user),
		(SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'resource'::regclass)`).
		Scan(&info.user, &info.database, &info.canCreateRoles, &info.schema)
	if err != nil {
		return info, err
	}
	stmts := []string{`CREATE SCHEMA IF NOT EXISTS ` + ident(policyrole.Schema)}
	for _, table := range []string{"resource", "resource_history"} {
		stmts = append(stmts, policyViewSQL(resources.DefaultRegistry(), info.schema, table))
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return info, err
		}
	}
	return info, tx.Commit()
}

// policyViewSQL is the view of table that policies read: the same columns, with each
// type's secret and hidden top-level fields taken out of content.
func policyViewSQL(reg *resources.Registry, schema, table string) string {
	var cases []string
	for _, typ := range reg.Types() {
		td, _ := reg.Type(typ)
		fields := slices.Concat(td.Secret, td.Hidden)
		if len(fields) == 0 {
			continue
		}
		slices.Sort(fields)
		quoted := make([]string, len(fields))
		for i, f := range fields {
			quoted[i] = literal(f)
		}
		cases = append(cases, fmt.Sprintf("WHEN %s THEN content - ARRAY[%s]::text[]", literal(typ), strings.Join(quoted, ", ")))
	}
	content := "content"
	if len(cases) > 0 {
		content = "CASE resource_type " + strings.Join(cases, " ") + " ELSE content END"
	}
	return fmt.Sprintf(`CREATE OR REPLACE VIEW %s.%s AS SELECT resource_type, id, version_id, last_updated, deleted, %s AS content FROM %s.%s`,
		ident(policyrole.Schema), ident(table), content, ident(schema), ident(table))
}

// policyRoleRow is a row of policy_role (migrations/postgres/00004_policy_role.sql).
type policyRoleRow struct {
	Name     string `gorm:"column:name;primaryKey"`
	Password string `gorm:"column:password"`
}

// TableName is the table gorm maps policyRoleRow to.
func (policyRoleRow) TableName() string { return "policy_role" }

// ensurePolicyRole creates the policy role, or brings an existing one back to what it
// must be, and returns its password. The row of policy_role goes through gorm; the
// role's DDL, which takes no parameters, through the same transaction as plain SQL.
func ensurePolicyRole(ctx context.Context, gdb *gorm.DB, role string) (string, error) {
	var pw string
	err := gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, policyLock).Error; err != nil {
			return err
		}
		var row policyRoleRow
		err := tx.Where("name = ?", role).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			row = policyRoleRow{Name: role, Password: hex.EncodeToString(b)}
			err = tx.Create(&row).Error
		}
		if err != nil {
			return err
		}
		pw = row.Password
		var exists bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?)`, role).Scan(&exists).Error; err != nil {
			return err
		}
		// The password goes in as a SCRAM verifier, so that it is not in the server's
		// log even with log_statement = ddl.
		verifier := literal(scramVerifier(pw))
		r := ident(role)
		var stmts []string
		if exists {
			// SUPERUSER, REPLICATION and BYPASSRLS cannot even be named by a
			// non-superuser; checkConfined refuses a role that has any of them.
			stmts = append(stmts, `ALTER ROLE `+r+` LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD `+verifier)
		} else {
			stmts = append(stmts, `CREATE ROLE `+r+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD `+verifier)
		}
		keys := make([]string, 0, len(policySettings))
		for k := range policySettings {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			stmts = append(stmts, `ALTER ROLE `+r+` SET `+k+` = `+literal(policySettings[k]))
		}
		if err := execDDL(tx, stmts...); err != nil {
			return err
		}
		return grantPolicyViewsTx(tx, role)
	})
	if err != nil {
		return "", err
	}
	return pw, nil
}

func grantPolicyViews(ctx context.Context, gdb *gorm.DB, role string) error {
	return gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, policyLock).Error; err != nil {
			return err
		}
		return grantPolicyViewsTx(tx, role)
	})
}

func grantPolicyViewsTx(tx *gorm.DB, role string) error {
	s, r := ident(policyrole.Schema), ident(role)
	return execDDL(tx,
		`GRANT USAGE ON SCHEMA `+s+` TO `+r,
		`GRANT SELECT ON `+s+`.resource, `+s+`.resource_history TO `+r)
}

// execDDL runs statements built with ident and literal, in tx. They go to the driver as
// they are, without gorm's placeholder expansion: a '?' or '@' inside a quoted name or
// literal must stay what it is.
func execDDL(tx *gorm.DB, stmts ...string) error {
	for _, q := range stmts {
		if _, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, q); err != nil {
			return err
		}
	}
	return nil
}

// checkConfined checks, on the policy pool, that its role can do no more than read the
// policy views: no superuser or role attribute that widens it, no membership it could
// SET ROLE to, no table, view or sequence of the application's schema or of the policy
// schema but the two views, and those only to read.
func checkConfined(ctx context.Context, db *sql.DB, schema string) error {
	var wide, member bool
	var usableList, writableList string
	err := db.QueryRowContext(ctx, `WITH rel AS (
		SELECT c.oid, c.relkind, n.nspname || '.' || c.relname AS name
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname IN ($1, $2) AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S'))
	SELECT
		r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls,
		EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid),
		array_to_string(ARRAY(SELECT name FROM rel WHERE CASE WHEN relkind = 'S' THEN has_sequence_privilege(oid, 'USAGE, SELECT, UPDATE')
			ELSE has_table_privilege(oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') END ORDER BY name), ' '),
		array_to_string(ARRAY(SELECT name FROM rel WHERE relkind <> 'S' AND has_table_privilege(oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') ORDER BY name), ' ')
	FROM pg_roles r WHERE r.rolname = current_user`, schema, policyrole.Schema).Scan(&wide, &member, &usableList, &writableList)
	if err != nil {
		return uncheckedError{err}
	}
	// Our relation names have no spaces.
	usable, writable := strings.Fields(usableList), strings.Fields(writableList)
	want := []string{policyrole.Schema + ".resource", policyrole.Schema + ".resource_history"}
	switch {
	case wide:
		return errors.New("has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS: sql policies must run as a plain role")
	case member:
		return errors.New("is a member of other roles, whose privileges a query could take on with SET ROLE: sql policies need a role that belongs to none")
	case !slices.Equal(usable, want):
		return fmt.Errorf("may use %v: sql policies may only read %v", usable, want)
	case len(writable) > 0:
		return fmt.Errorf("may write to %v: sql policies may only read", writable)
	}
	return nil
}

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL stores for password (RFC 5803
// format, as pg_authid keeps it), so that CREATE ROLE … PASSWORD never carries the
// password itself.
func scramVerifier(password string) string {
	const iterations = 4096
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		panic("postgres: pbkdf2: " + err.Error()) // only for parameters out of range
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac(salted, "Server Key")))
}

// ident quotes a PostgreSQL identifier.
func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// literal quotes a PostgreSQL string literal (standard_conforming_strings is on by
// default since 9.1; the E” form keeps it right either way).
func literal(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}
