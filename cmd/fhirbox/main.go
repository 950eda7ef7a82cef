// Command fhirbox is the fhirbox server: a FHIR-style resource server with built-in
// OAuth 2.0 and access policies.
//
//	fhirbox serve      start the server (migrations are applied first)
//	fhirbox migrate    apply migrations and exit
//	fhirbox reindex    re-extract the search index of stored resources
//	fhirbox import     load NDJSON and Bundle files into the database or a server
//	fhirbox export     write the stored resources as NDJSON files, one a type
//	fhirbox version    print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/connlimit"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/resources"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fhirbox:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: fhirbox <command> [flags]

commands:
  serve     start the server (applies migrations first)
  migrate   apply database migrations and exit
  reindex   re-extract the search index of stored resources: reindex [TYPE…]
  import    load NDJSON and Bundle files, or directories of them: import PATH…
  export    write the stored resources as NDJSON files: export DIR [--type T,…] [--since INSTANT]
  version   print the version

Run "fhirbox <command> --help" for the flags of a command.
`

// run is main without process globals, so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		cfg, err := parseConfig("serve", args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout)
	case "migrate":
		cfg, err := parseConfig("migrate", args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		st, err := app.OpenStore(ctx, cfg.Database)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrations applied to %s (%s)\n", cfg.Database, cfg.Database.Backend)
		return st.Close()
	case "reindex":
		cfg, err := parseConfig("reindex", args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return reindex(ctx, cfg, stdout)
	case "import":
		return importCmd(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		cfg, err := parseConfig("export", args[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return exportCmd(ctx, cfg, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "fhirbox", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// sweepInterval is how often ended Sessions and spent authorization codes are removed.
const sweepInterval = 10 * time.Minute

// config is the server's configuration: flags, defaulting to FHIRBOX_* variables.
type config struct {
	Database      app.Database
	Addr          string
	BaseURL       string
	AdminClientID string
	AdminSecret   string
	MaxBodyBytes  int64
	// BodyMemory bounds the bytes of bodies being read and decoded at once.
	BodyMemory int64
	LogLevel   slog.Level
	PprofAddr  string
	// SessionRetention is how long ended and closed Sessions are kept.
	SessionRetention time.Duration
	// ExportTTL is how long a finished $export job and its files are kept.
	ExportTTL time.Duration
	// ExportLease is how long a running $export job stays its instance's without a
	// renewal: after an instance dies, another resumes its jobs within it.
	ExportLease time.Duration
	JWTKeyPath  string
	// KeyEncryptionKey encrypts the signing keys in the database (nil: plain PEM).
	KeyEncryptionKey []byte
	// Connection caps, transfer bounds and CORS (see serve and server.Config).
	MaxConns, MaxConnsPerAddr int
	TransferTimeout           time.Duration
	TransferMinRate           int64
	CORSOrigins               []string
	SearchLimits              resources.Limits
	// StrictHandling and ResultSets: how searches treat parameters they cannot apply,
	// and the stored result sets of their paging.
	StrictHandling bool
	ResultSets     resources.ResultSetOptions
	// ConditionalDelete: whether DELETE {type}?criteria may remove several resources.
	ConditionalDelete resources.ConditionalDeleteOptions

	// Validation turns R4 validation of writes on or off (FHIRBOX_VALIDATION).
	Validation resources.ValidationMode
	// StatementTimeout bounds database statements; CallerShare and CallerWait bound
	// one caller's requests in flight (see server.Config).
	StatementTimeout time.Duration
	CallerShare      int
	CallerWait       time.Duration
	// BundleMaxEntries is the most entries of a batch or transaction Bundle.
	BundleMaxEntries int
	// Types are the resource types that reindex walks, or export writes (none: all).
	Types []string
	// ExportDir and ExportSince: where export writes, and its --since (zero: none).
	ExportDir   string
	ExportSince time.Time
}

func parseConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	env := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("fhirbox "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	var dbURL, policyURL, dataDir, maxBody, bodyMemory, logLevel, retention, kek, limits, stmtTimeout, callerShare, callerWait string
	fs.StringVar(&dbURL, "database-url", env("FHIRBOX_DATABASE_URL", ""), "postgres://user@host:5432/db for PostgreSQL, or sqlite:<path> for a SQLite file; empty: the SQLite file fhirbox.db in the data directory (env FHIRBOX_DATABASE_URL)")
	fs.StringVar(&policyURL, "policy-database-url", env("FHIRBOX_POLICY_DATABASE_URL", ""), "postgres:// URL of the same database as a role of your own that sql AccessPolicies run as, when the database user may not create one; empty: fhirbox creates <database>_policy (env FHIRBOX_POLICY_DATABASE_URL)")
	fs.StringVar(&dataDir, "data-dir", env("FHIRBOX_DATA_DIR", "./data"), "directory of the SQLite file when no database URL is given, created if need be (env FHIRBOX_DATA_DIR)")
	fs.StringVar(&c.Addr, "addr", env("FHIRBOX_ADDR", ":8080"), "address to listen on (env FHIRBOX_ADDR)")
	fs.StringVar(&c.BaseURL, "base-url", env("FHIRBOX_BASE_URL", "http://localhost:8080"), "public base URL used in Location and fullUrl (env FHIRBOX_BASE_URL)")
	fs.StringVar(&c.AdminClientID, "admin-client-id", env("FHIRBOX_ADMIN_CLIENT_ID", "admin"), "id of the root client (env FHIRBOX_ADMIN_CLIENT_ID)")
	fs.StringVar(&c.AdminSecret, "admin-secret", env("FHIRBOX_ADMIN_SECRET", ""), "secret of the root client; empty: generated at first start and printed once (env FHIRBOX_ADMIN_SECRET)")
	fs.StringVar(&maxBody, "max-body-bytes", env("FHIRBOX_MAX_BODY_BYTES", strconv.Itoa(10<<20)), "largest accepted request body in bytes (env FHIRBOX_MAX_BODY_BYTES)")
	fs.StringVar(&bodyMemory, "body-memory", env("FHIRBOX_BODY_MEMORY", ""), "bytes of request bodies read and decoded at once; more wait their turn; empty: twice the body limit (env FHIRBOX_BODY_MEMORY)")
	fs.StringVar(&c.JWTKeyPath, "jwt-private-key", env("FHIRBOX_JWT_PRIVATE_KEY", ""), "PEM file with the RSA key (2048 bits or more) that signs JWTs; empty: generated at first start and kept in the database (env FHIRBOX_JWT_PRIVATE_KEY)")
	fs.StringVar(&kek, "key-encryption-key", env("FHIRBOX_KEY_ENCRYPTION_KEY", ""), "32 random bytes, base64 or hex (openssl rand -base64 32), that encrypt the signing keys kept in the database; prefer the environment variable to the flag, which other users can see (env FHIRBOX_KEY_ENCRYPTION_KEY)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("FHIRBOX_PPROF_ADDR", ""), "serve Go's net/http/pprof profiles on this address, e.g. 127.0.0.1:6060; empty: off (env FHIRBOX_PPROF_ADDR)")
	fs.StringVar(&retention, "session-retention", env("FHIRBOX_SESSION_RETENTION", app.DefaultSessionRetention.String()), "how long an ended or closed Session is kept before it is removed, e.g. 24h (env FHIRBOX_SESSION_RETENTION)")
	var exportTTL string
	fs.StringVar(&exportTTL, "export-ttl", env("FHIRBOX_EXPORT_TTL", export.DefaultTTL.String()), "how long a finished $export job and its files are kept before they are removed, e.g. 24h (env FHIRBOX_EXPORT_TTL)")
	var exportLease string
	fs.StringVar(&exportLease, "export-lease", env("FHIRBOX_EXPORT_LEASE", export.DefaultLease.String()), "how long a running $export job stays its instance's without a renewal (renewed every third of it): another instance runs the job again this long after its instance died (env FHIRBOX_EXPORT_LEASE)")
	var maxConns, maxConnsPerAddr, transferTimeout, transferRate, corsOrigins, handling, resultSets string
	fs.StringVar(&maxConns, "max-conns", env("FHIRBOX_MAX_CONNS", "4096"), "most connections open at once; more wait to be accepted (env FHIRBOX_MAX_CONNS)")
	fs.StringVar(&maxConnsPerAddr, "max-conns-per-addr", env("FHIRBOX_MAX_CONNS_PER_ADDR", "256"), "most connections open at once from one IP address (IPv6: one /64); more are refused with 503; 0: no cap, e.g. behind a proxy (env FHIRBOX_MAX_CONNS_PER_ADDR)")
	fs.StringVar(&transferTimeout, "transfer-timeout", env("FHIRBOX_TRANSFER_TIMEOUT", server.DefaultTransferTimeout.String()), "time a request body may take to arrive, or an answer to be taken, beyond what its size needs at the minimum rate (env FHIRBOX_TRANSFER_TIMEOUT)")
	fs.StringVar(&transferRate, "transfer-min-rate", env("FHIRBOX_TRANSFER_MIN_RATE", strconv.Itoa(server.DefaultTransferMinRate)), "slowest transfer, in bytes a second, that a request body or an answer is given time for (env FHIRBOX_TRANSFER_MIN_RATE)")
	fs.StringVar(&corsOrigins, "cors-origins", env("FHIRBOX_CORS_ORIGINS", ""), "comma-separated exact origins (https://app.example) that browsers may call from; empty: no CORS (env FHIRBOX_CORS_ORIGINS)")
	fs.StringVar(&limits, "search-limits", env(resources.LimitsSetting, resources.DefaultLimits().String()), "most clauses, values (per parameter and in total), _elements names, _sort keys and chain links one search may ask for, and resources its _include and _revinclude may add (env "+resources.LimitsSetting+")")
	fs.StringVar(&handling, "search-handling", env("FHIRBOX_SEARCH_HANDLING", "lenient"), "lenient: search parameters the server cannot apply are ignored and reported in the Bundle; strict: they are a 400. Prefer: handling= overrides it per request (env FHIRBOX_SEARCH_HANDLING)")
	fs.StringVar(&resultSets, "search-result-sets", env(resources.ResultSetsSetting, resources.ResultSetOptions{}.String()), "how long the stored result sets of paged searches are kept and the most ids one holds, as ttl=10m,max=10000; off: pages are offsets into the current matches (env "+resources.ResultSetsSetting+")")
	var validation string
	fs.StringVar(&validation, "validation", env(resources.ValidationSetting, "on"), "on: every write of an R4 type is validated against the R4 definitions and refused (422) when invalid; off: stored as sent, e.g. to load legacy data ($validate works either way) (env "+resources.ValidationSetting+")")
	fs.StringVar(&stmtTimeout, "statement-timeout", env("FHIRBOX_STATEMENT_TIMEOUT", "30s"), "longest a database statement may run before it is cancelled and the request answered 503; 0: no limit (env FHIRBOX_STATEMENT_TIMEOUT)")
	fs.StringVar(&callerShare, "caller-share", env("FHIRBOX_CALLER_SHARE", "0"), "most requests one caller (user, client, or address when anonymous) may have in flight; 0: half the database pool; -1: no limit (env FHIRBOX_CALLER_SHARE)")
	fs.StringVar(&callerWait, "caller-wait", env("FHIRBOX_CALLER_WAIT", server.DefaultCallerWait.String()), "how long a request over its caller's share waits for a turn before it is answered 429 (env FHIRBOX_CALLER_WAIT)")
	var condDelete string
	fs.StringVar(&condDelete, "conditional-delete", env(resources.ConditionalDeleteSetting, "single"), "what DELETE {type}?criteria does when several resources match: single (412) or multiple (each deleted), multiple,max=N bounding how many; default max 100 (env "+resources.ConditionalDeleteSetting+")")
	var bundleMax string
	fs.StringVar(&bundleMax, "bundle-max-entries", env("FHIRBOX_BUNDLE_MAX_ENTRIES", strconv.Itoa(resources.DefaultBundleMaxEntries)), "most entries a batch or transaction Bundle may hold; more: 400 (env FHIRBOX_BUNDLE_MAX_ENTRIES)")
	fs.StringVar(&logLevel, "log-level", env("FHIRBOX_LOG_LEVEL", "info"), "debug, info, warn or error (env FHIRBOX_LOG_LEVEL)")
	var exportTypes, exportSince string
	if cmd == "export" {
		fs.StringVar(&exportTypes, "type", "", "comma-separated resource types to export; empty: every FHIR type")
		fs.StringVar(&exportSince, "since", "", "export only the resources last updated at or after this FHIR instant, e.g. 2026-01-02T03:04:05Z")
		// The directory may come before the flags: flag stops at the first argument.
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			args = append(slices.Clone(args[1:]), args[0])
		}
	}
	fs.Usage = func() {
		args := ""
		switch cmd {
		case "reindex":
			args = " [TYPE…]"
		case "export":
			args = " DIR"
		}
		fmt.Fprintf(stderr, "usage: fhirbox %s [flags]%s\n\nflags (each defaults to its environment variable):\n", cmd, args)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case cmd == "reindex":
		c.Types = fs.Args()
	case cmd == "export":
		if fs.NArg() != 1 {
			return nil, errors.New("fhirbox export writes into one directory: fhirbox export DIR [--type T,…] [--since INSTANT]")
		}
		c.ExportDir = fs.Arg(0)
		for _, t := range strings.Split(exportTypes, ",") {
			if t = strings.TrimSpace(t); t != "" {
				c.Types = append(c.Types, t)
			}
		}
		if exportSince != "" {
			t, err := time.Parse(time.RFC3339Nano, exportSince)
			if err != nil {
				return nil, fmt.Errorf("--since %q is not a FHIR instant such as 2026-01-02T03:04:05Z", exportSince)
			}
			c.ExportSince = t.UTC()
		}
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if dbURL == "" {
		// The embedded default: one file, no database server to run.
		c.Database = app.Database{Backend: app.SQLite, Target: filepath.Join(dataDir, "fhirbox.db")}
	} else {
		d, err := app.ParseDatabase(dbURL)
		if err != nil {
			return nil, fmt.Errorf("FHIRBOX_DATABASE_URL: %v", err)
		}
		c.Database = d
	}
	if policyURL != "" {
		p, err := app.ParseDatabase(policyURL)
		if err != nil || p.Backend != app.Postgres || c.Database.Backend != app.Postgres {
			return nil, errors.New("FHIRBOX_POLICY_DATABASE_URL must be a postgres:// URL, and FHIRBOX_DATABASE_URL one too: sql policies run on PostgreSQL only")
		}
		c.Database.PolicyURL = policyURL
	}
	if kek != "" {
		k, err := auth.ParseKeyEncryptionKey(kek)
		if err != nil {
			return nil, err
		}
		c.KeyEncryptionKey = k
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("FHIRBOX_BASE_URL %q must be an absolute http(s) URL without a query", c.BaseURL)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return nil, fmt.Errorf("FHIRBOX_ADDR %q is not host:port: %v", c.Addr, err)
	}
	if !resources.ValidID(c.AdminClientID) {
		return nil, fmt.Errorf("FHIRBOX_ADMIN_CLIENT_ID %q is not a valid id ([A-Za-z0-9-.]{1,64})", c.AdminClientID)
	}
	if strings.Trim(c.AdminSecret, auth.SecretAlphabet) != "" || len(c.AdminSecret) > 72 {
		return nil, errors.New("FHIRBOX_ADMIN_SECRET must be at most 72 characters from A-Z a-z 0-9 - . _ ~ (so Basic credentials read the same form-encoded or raw)")
	}
	n, err := strconv.ParseInt(maxBody, 10, 64)
	if err != nil || n < 1024 {
		return nil, fmt.Errorf("FHIRBOX_MAX_BODY_BYTES %q must be an integer of at least 1024", maxBody)
	}
	c.MaxBodyBytes = n
	c.BodyMemory = 2 * n
	if bodyMemory != "" {
		if c.BodyMemory, err = strconv.ParseInt(bodyMemory, 10, 64); err != nil || c.BodyMemory < n {
			return nil, fmt.Errorf("FHIRBOX_BODY_MEMORY %q must be an integer no smaller than FHIRBOX_MAX_BODY_BYTES (%d)", bodyMemory, n)
		}
	}
	if c.SessionRetention, err = time.ParseDuration(retention); err != nil || c.SessionRetention < time.Minute {
		return nil, fmt.Errorf("FHIRBOX_SESSION_RETENTION %q must be a duration of at least 1m, such as 168h", retention)
	}
	if c.ExportTTL, err = time.ParseDuration(exportTTL); err != nil || c.ExportTTL < time.Minute {
		return nil, fmt.Errorf("FHIRBOX_EXPORT_TTL %q must be a duration of at least 1m, such as 1h", exportTTL)
	}
	if c.ExportLease, err = time.ParseDuration(exportLease); err != nil || c.ExportLease < time.Second {
		return nil, fmt.Errorf("FHIRBOX_EXPORT_LEASE %q must be a duration of at least 1s, such as 30s", exportLease)
	}
	if c.MaxConns, err = strconv.Atoi(maxConns); err != nil || c.MaxConns < 1 {
		return nil, fmt.Errorf("FHIRBOX_MAX_CONNS %q must be a positive integer", maxConns)
	}
	if c.MaxConnsPerAddr, err = strconv.Atoi(maxConnsPerAddr); err != nil || c.MaxConnsPerAddr < 0 {
		return nil, fmt.Errorf("FHIRBOX_MAX_CONNS_PER_ADDR %q must be an integer of at least 0 (0: no cap)", maxConnsPerAddr)
	}
	if c.TransferTimeout, err = time.ParseDuration(transferTimeout); err != nil || c.TransferTimeout < 100*time.Millisecond {
		return nil, fmt.Errorf("FHIRBOX_TRANSFER_TIMEOUT %q must be a duration of at least 100ms, such as 10s", transferTimeout)
	}
	if c.TransferMinRate, err = strconv.ParseInt(transferRate, 10, 64); err != nil || c.TransferMinRate < 1 {
		return nil, fmt.Errorf("FHIRBOX_TRANSFER_MIN_RATE %q must be a positive integer (bytes a second)", transferRate)
	}
	if c.CORSOrigins, err = server.ParseCORSOrigins(corsOrigins); err != nil {
		return nil, fmt.Errorf("FHIRBOX_CORS_ORIGINS: %v", err)
	}
	if c.SearchLimits, err = resources.ParseLimits(limits); err != nil {
		return nil, err
	}
	if c.StrictHandling, err = server.ParseHandling(handling); err != nil {
		return nil, err
	}
	if c.ResultSets, err = resources.ParseResultSetOptions(resultSets); err != nil {
		return nil, err
	}
	if c.ConditionalDelete, err = resources.ParseConditionalDelete(condDelete); err != nil {
		return nil, err
	}

	if c.Validation, err = resources.ParseValidationMode(validation); err != nil {
		return nil, err
	}
	if c.StatementTimeout, err = time.ParseDuration(stmtTimeout); err != nil || c.StatementTimeout < 0 || (c.StatementTimeout > 0 && c.StatementTimeout < time.Millisecond) {
		return nil, fmt.Errorf("FHIRBOX_STATEMENT_TIMEOUT %q must be a duration such as 30s, or 0 for none", stmtTimeout)
	}
	if c.CallerShare, err = strconv.Atoi(callerShare); err != nil || c.CallerShare < -1 {
		return nil, fmt.Errorf("FHIRBOX_CALLER_SHARE %q must be a number of requests, 0 (half the database pool) or -1 (no limit)", callerShare)
	}
	if c.CallerWait, err = time.ParseDuration(callerWait); err != nil || c.CallerWait <= 0 {
		return nil, fmt.Errorf("FHIRBOX_CALLER_WAIT %q must be a positive duration such as 5s", callerWait)
	}
	if c.BundleMaxEntries, err = strconv.Atoi(bundleMax); err != nil || c.BundleMaxEntries < 1 {
		return nil, fmt.Errorf("FHIRBOX_BUNDLE_MAX_ENTRIES %q must be a positive number of entries", bundleMax)
	}
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("FHIRBOX_LOG_LEVEL %q must be debug, info, warn or error", logLevel)
	}
	return c, nil
}

func serve(ctx context.Context, cfg *config, stdout io.Writer) error {
	isTTY := false
	if f, ok := stdout.(*os.File); ok {
		isTTY = observe.IsTerminal(f)
	}
	logOut := stdout
	if !isTTY {
		// One write call per access line is a measurable share of a request's cost;
		// batching loses at most a quarter second of lines if the process dies.
		bw := observe.NewBufferedWriter(stdout, 64<<10, 250*time.Millisecond)
		defer bw.Close()
		logOut = bw
	}
	log := observe.NewLogger(logOut, isTTY, cfg.LogLevel)

	st, err := app.OpenStore(ctx, cfg.Database, app.WithStatementTimeout(cfg.StatementTimeout), app.WithStoreLog(log))
	if err != nil {
		return err
	}
	defer st.Close()

	reg := observe.NewRegistry()
	observe.RegisterDBStats(reg, st.SQL())
	a, err := app.New(ctx, st, app.Config{
		Server: server.Config{
			BaseURL: cfg.BaseURL, MaxBodyBytes: cfg.MaxBodyBytes, BodyMemory: cfg.BodyMemory, AdminClientID: cfg.AdminClientID,
			Logger: log, Metrics: reg, Version: version,
			TransferTimeout: cfg.TransferTimeout, TransferMinRate: cfg.TransferMinRate, CORSOrigins: cfg.CORSOrigins,
			CallerShare: cfg.CallerShare, CallerWait: cfg.CallerWait, StrictHandling: cfg.StrictHandling,
			BundleMaxEntries: cfg.BundleMaxEntries,
		},
		AdminSecret:      cfg.AdminSecret,
		JWTKeyPath:       cfg.JWTKeyPath,
		KeyEncryptionKey: cfg.KeyEncryptionKey,
		SessionRetention: cfg.SessionRetention,
		Export:           export.Options{TTL: cfg.ExportTTL, Lease: cfg.ExportLease},
		SearchLimits:     cfg.SearchLimits,
		ResultSets:       cfg.ResultSets,

		ConditionalDelete: cfg.ConditionalDelete,
		Validation:        cfg.Validation,
	})
	if err != nil {
		return err
	}
	if a.GeneratedSecret != "" {
		// Printed once, on the first start, and never logged again.
		fmt.Fprintf(stdout, "created admin client %q with secret %s (set FHIRBOX_ADMIN_SECRET to choose one)\n", cfg.AdminClientID, a.GeneratedSecret)
	}
	if cfg.PprofAddr != "" {
		// A separate listener, so profiles are never reachable through the API's address.
		go func() {
			err := http.ListenAndServe(cfg.PprofAddr, pprofMux())
			log.Error("pprof server stopped", "addr", cfg.PprofAddr, "err", err)
		}()
	}
	feedCtx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	go a.Listen(feedCtx)
	go a.SweepEvery(feedCtx, sweepInterval)
	go a.RunExports(feedCtx)
	srv := a.Server

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	// The total cap keeps file descriptors for the database and the log (a connection over
	// it waits in the kernel's backlog); the per-address cap stops one peer from taking
	// every slot. No ReadTimeout or WriteTimeout: the server bounds each body and answer
	// by its size (server.Config.TransferTimeout), which a fixed bound cannot do without
	// cutting large uploads or long searches.
	ln = netutil.LimitListener(connlimit.PerAddr(ln, cfg.MaxConnsPerAddr), cfg.MaxConns)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("fhirbox started", "addr", ln.Addr().String(), "base_url", cfg.BaseURL,
		"backend", cfg.Database.Backend, "database", cfg.Database.String(), "version", version)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// pprofMux serves the runtime profiles of net/http/pprof.
func pprofMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}
