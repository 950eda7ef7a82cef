// Package app wires fhirbox together over an opened store: the resource engine, client
// authentication, the policy engine, the shipped policies and the HTTP server. The
// binary and the tests build the same thing through it.
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Store is the database fhirbox runs on: a *postgres.Store or a *sqlite.Store. A store
// that also implements accesspolicy.SQLRunner (PostgreSQL) runs sql policies; on one
// that does not, writing a sql policy is refused.
type Store interface {
	sqlstore.Store
	// Listen delivers committed writes of the cached types (AccessPolicy, Client, User,
	// Session, SearchParameter) by every process on the database to fn until ctx ends,
	// each (re)connection starting with a Reset event.
	Listen(ctx context.Context, fn func(resources.WriteEvent))
	// The jobs and files of $export.
	export.Store
}

// Config is what New needs beyond the store.
type Config struct {
	Server server.Config
	// AdminSecret is the root client's secret; empty keeps the stored one or, on the
	// first start, generates one (returned in App.GeneratedSecret).
	AdminSecret string
	// BcryptCost for hashing secrets (0: bcrypt's default); tests lower it.
	BcryptCost int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// JWTKeyPath is a PEM file with the RSA key that signs JWTs
	// (FHIRBOX_JWT_PRIVATE_KEY); empty: keys are generated and kept in the database.
	JWTKeyPath string
	// KeyEncryptionKey (FHIRBOX_KEY_ENCRYPTION_KEY, see auth.ParseKeyEncryptionKey)
	// encrypts the signing keys kept in the database; nil keeps them in plain PEM.
	KeyEncryptionKey []byte
	// Limiter slows password and client-secret guessing (nil: the defaults of
	// auth.NewLimiter).
	Limiter *auth.Limiter
	// SessionRetention is how long Sweep keeps an ended or closed Session (0:
	// DefaultSessionRetention).
	SessionRetention time.Duration
	// SearchLimits caps what one search may ask for (FHIRBOX_SEARCH_LIMITS; zero
	// fields: resources.DefaultLimits).
	SearchLimits resources.Limits
	// ResultSets bounds the stored result sets of stable paging
	// (FHIRBOX_SEARCH_RESULT_SETS; zero fields: the defaults).
	ResultSets resources.ResultSetOptions
	// ConditionalDelete says whether a conditional delete may remove several
	// resources (FHIRBOX_CONDITIONAL_DELETE; zero: single).
	ConditionalDelete resources.ConditionalDeleteOptions

	// Export configures the jobs of $export (FHIRBOX_EXPORT_TTL; zero fields: the
	// defaults of export.Options).
	Export export.Options

	// Validation turns R4 validation of writes on or off (FHIRBOX_VALIDATION; zero
	// value: on).
	Validation resources.ValidationMode
}

// App is a wired fhirbox.
type App struct {
	Store   Store
	Service *resources.Service
	Clients *auth.ClientVerifier
	// Dir finds Users for sign-ins.
	Dir      *auth.Directory
	Policies *accesspolicy.Engine
	Sessions *auth.Sessions
	Keys     *auth.Keys
	Server   *server.Server
	// Exports runs the $export jobs of the database (RunExports).
	Exports *export.Runner
	// GeneratedSecret is the root client's secret when this start created it: shown once.
	GeneratedSecret string
	log             *slog.Logger
	now             func() time.Time
	retention       time.Duration
}

// New builds fhirbox over st: it makes sure the root client, its policy and the public
// policies exist, and loads the policies in force.
func New(ctx context.Context, st Store, cfg Config) (*App, error) {
	log := cfg.Server.Logger
	if log == nil {
		log = slog.Default()
		cfg.Server.Logger = log
	}
	svc := resources.NewService(resources.DefaultRegistry(), st, resources.Options{Now: cfg.Now, BcryptCost: cfg.BcryptCost, Limits: cfg.SearchLimits, ResultSets: cfg.ResultSets,
		ConditionalDelete: cfg.ConditionalDelete, Validation: cfg.Validation})
	// One limiter for password and client-secret guessing, keyed apart (auth.ClientKeys).
	limiter := cfg.Limiter
	if limiter == nil {
		limiter = auth.NewLimiter(auth.LimiterOptions{Now: cfg.Now})
	}
	a := &App{Store: st, Service: svc, Clients: auth.NewClientVerifier(st, limiter), log: log, now: cfg.Now, retention: cfg.SessionRetention}
	if a.now == nil {
		a.now = time.Now
	}
	if a.retention <= 0 {
		a.retention = DefaultSessionRetention
	}
	compiler := &accesspolicy.Compiler{}
	if r, ok := st.(accesspolicy.SQLRunner); ok {
		compiler.SQL = r
		// A store that cannot confine sql policies refuses them (422, with the reason);
		// the operator hears of it once, here.
		if d, ok := st.(interface{ PolicySQLDisabled() error }); ok {
			if err := d.PolicySQLDisabled(); err != nil {
				log.Warn(err.Error())
			}
		}
	}
	a.Policies = accesspolicy.NewEngine(compiler, st, log)
	svc.AddValidator(accesspolicy.ResourceType, func(ctx context.Context, doc map[string]any) error {
		_, err := a.Policies.Compiler().Compile(ctx, doc)
		return err
	})
	svc.AddValidator("Client", func(_ context.Context, doc map[string]any) error {
		return auth.ValidateClient(doc)
	})
	keys, err := auth.LoadKeys(ctx, auth.KeyOptions{PEMPath: cfg.JWTKeyPath, Now: cfg.Now, Store: st, EncryptionKey: cfg.KeyEncryptionKey})
	if err != nil {
		return nil, err
	}
	a.Keys = keys
	dir := auth.NewDirectory(svc)
	a.Dir = dir
	a.Sessions = auth.NewSessions(svc, keys, dir, cfg.Server.BaseURL, cfg.Now)
	a.Sessions.SetLogger(log)
	// Local writes take effect before the writer's response; the change feed (Listen)
	// brings other processes' writes, and this one's again, which is harmless.
	svc.OnWrite(a.apply)
	codes := auth.NewCodes(svc, cfg.Now)
	oauth := &server.OAuth{
		Token: &auth.TokenEndpoint{Clients: a.Clients, Dir: dir, Grants: []auth.GrantHandler{
			&auth.PasswordGrant{Dir: dir, Codes: codes, Limiter: limiter, Sessions: a.Sessions},
			&auth.ClientCredentialsGrant{Sessions: a.Sessions},
			&auth.RefreshGrant{Sessions: a.Sessions},
			&auth.AuthorizationCodeGrant{Codes: codes, Sessions: a.Sessions},
		}},
		Sessions: a.Sessions, Codes: codes, Keys: keys, Dir: dir, Limiter: limiter,
	}
	oauth.Tokens = &auth.ClientTokens{Token: oauth.Token, Sessions: a.Sessions, AdminClientID: cfg.Server.AdminClientID}

	generated, err := auth.EnsureAdmin(ctx, svc, cfg.Server.AdminClientID, cfg.AdminSecret)
	if err != nil {
		return nil, err
	}
	a.GeneratedSecret = generated
	if err := accesspolicy.EnsureBuiltins(ctx, svc, cfg.Server.AdminClientID); err != nil {
		return nil, err
	}
	if err := a.Policies.Load(ctx); err != nil {
		return nil, err
	}
	// Before serving: a search must know every parameter stored, and a write must index
	// it. Jobs resumed here run in the background until ctx ends.
	if err := svc.EnableSearchParameters(ctx, log); resources.ErrorCode(err) == resources.CodeUnprocessable {
		log.Error("a stored SearchParameter cannot be applied; the others are", "err", err)
	} else if err != nil {
		return nil, err
	}
	if p, ok := st.(interface{ PoolSize() int }); ok && cfg.Server.CallerShare == 0 {
		// Half the pool: whatever one caller does, the others keep the other half.
		cfg.Server.CallerShare = max(1, p.PoolSize()/2)
	}
	a.Server = server.New(cfg.Server, svc, a.Clients, a.Policies, oauth, st.Ping)
	if cfg.Export.Now == nil {
		cfg.Export.Now = cfg.Now
	}
	a.Exports = a.Server.EnableExports(st, cfg.Export)
	return a, nil
}

// apply updates the in-memory caches after a write, here or (through Listen) elsewhere.
func (a *App) apply(ev resources.WriteEvent) {
	a.Sessions.Forget(ev)
	switch {
	case ev.Reset:
		a.Clients.ForgetAll()
	case ev.Type == "Client":
		a.Clients.Forget(ev.ID)
	}
	if ev.Reset || ev.Type == accesspolicy.ResourceType {
		// Detached from the writer's context: a reload must finish even if the request
		// that caused it has gone.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := a.Policies.Invalidate(ctx, ev)
		// A reset comes when the change feed reconnects, often while the database is
		// still coming back: a reload that meets the outage is tried again, or the
		// policies changed meanwhile would stay unseen until the next change.
		for delay := 100 * time.Millisecond; err != nil && transient(err) && ctx.Err() == nil; delay = min(2*delay, 5*time.Second) {
			select {
			case <-ctx.Done():
			case <-time.After(delay):
				err = a.Policies.Invalidate(ctx, ev)
			}
		}
		if err != nil {
			a.log.Error("reloading access policies failed", "event", ev, "err", err)
		}
	}
}

// transient reports whether err says the database could not serve for now.
func transient(err error) bool {
	switch resources.ErrorCode(err) {
	case resources.CodeUnavailable, resources.CodeTimeout:
		return true
	}
	return false
}

// RunExports claims and runs $export jobs until ctx ends: jobs kicked off on any
// instance of the database, one instance per job.
func (a *App) RunExports(ctx context.Context) { a.Exports.Run(ctx) }

// Listen follows the database's change feed until ctx ends, so that writes made by
// other fhirbox processes on the same database take effect here at once. On SQLite,
// which has one process per file, it just waits for ctx to end.
func (a *App) Listen(ctx context.Context) {
	a.Store.Listen(ctx, a.Service.Dispatch)
}
