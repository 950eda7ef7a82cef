// Package server is fhirbox's HTTP surface on echo v4: routing, content negotiation,
// authentication middleware and thin handlers over the resource engine.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/resources"
)

// Config is what the server needs beyond its dependencies.
type Config struct {
	// BaseURL is the public base (scheme://host[:port][/prefix]) used in Location and
	// fullUrl; /fhir routes append "/fhir".
	BaseURL string
	// MaxBodyBytes bounds request bodies (default 10 MiB); larger ones get 413.
	MaxBodyBytes int64
	// BodyMemory bounds the bytes of request bodies being read and decoded at once
	// (default, and at least, 2 × MaxBodyBytes): bodies past it wait their turn.
	BodyMemory int64
	// AdminClientID is the root client that may do everything.
	AdminClientID string
	// Logger receives the access log and internal errors (default slog.Default()).
	Logger *slog.Logger
	// Metrics is the Prometheus registry served at /metrics (nil: a fresh one).
	Metrics *prometheus.Registry
	// Version is reported in the CapabilityStatement.
	Version string
	// TransferTimeout and TransferMinRate bound the time a request body may take to
	// arrive, and an answer to be taken: TransferTimeout plus the size at TransferMinRate
	// bytes a second (defaults DefaultTransferTimeout, DefaultTransferMinRate).
	TransferTimeout time.Duration
	TransferMinRate int64
	// CORSOrigins are the exact origins (see ParseCORSOrigins) that browsers may call
	// from; none: no CORS headers at all.
	CORSOrigins []string
	// CallerShare is the most requests one caller may have in flight (0:
	// DefaultCallerShare; negative: no limit); CallerWait is how long one more waits for
	// a turn before it is answered 429 (0: DefaultCallerWait). See callerShare.
	CallerShare int
	CallerWait  time.Duration
	// StrictHandling makes searches strict unless they ask for Prefer: handling=lenient
	// (FHIRBOX_SEARCH_HANDLING=strict); by default they are lenient (see handling.go).
	StrictHandling bool
	// BundleMaxEntries is the most entries a batch or transaction Bundle may hold (0:
	// resources.DefaultBundleMaxEntries; FHIRBOX_BUNDLE_MAX_ENTRIES).
	BundleMaxEntries int
}

// Server is the fhirbox HTTP handler.
type Server struct {
	cfg      Config
	caps     capabilityCache
	svc      *resources.Service
	clients  *auth.ClientVerifier
	policies *accesspolicy.Engine
	oauth    *OAuth
	health   func(context.Context) error
	log      *slog.Logger
	echo     *echo.Echo
	bodies   *semaphore.Weighted // bytes of bodies being read and decoded (BodyMemory)
	exports  *export.Runner      // $export's jobs (SetExports; nil: off)
}

// New builds the server: every request is authenticated by clients and allowed only by
// a policy of policies. health reports whether the database answers.
func New(cfg Config, svc *resources.Service, clients *auth.ClientVerifier, policies *accesspolicy.Engine, oauth *OAuth, health func(context.Context) error) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.BodyMemory < cfg.MaxBodyBytes {
		cfg.BodyMemory = 2 * cfg.MaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = DefaultTransferTimeout
	}
	if cfg.TransferMinRate <= 0 {
		cfg.TransferMinRate = DefaultTransferMinRate
	}
	if cfg.BundleMaxEntries <= 0 {
		cfg.BundleMaxEntries = resources.DefaultBundleMaxEntries
	}
	if cfg.Metrics == nil {
		cfg.Metrics = observe.NewRegistry()
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	s := &Server{cfg: cfg, svc: svc, clients: clients, policies: policies, oauth: oauth, health: health, log: cfg.Logger,
		bodies: semaphore.NewWeighted(cfg.BodyMemory)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	metrics := observe.NewMetrics(cfg.Metrics)
	e.Use(s.securityHeaders, observe.RequestID(), observe.AccessLog(cfg.Logger), metrics.Middleware(),
		middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}),
		headWithoutBody)
	if len(cfg.CORSOrigins) > 0 {
		e.Use(cors(cfg.CORSOrigins))
	}
	e.Use(s.bodyDeadline, s.limitBody, s.authorize, s.callerShare())
	s.echo = e
	s.routes(cfg.Metrics)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.log.ErrorContext(c.Request().Context(), "panic", "request_id",
		observe.RequestIDFrom(c.Request().Context()), "err", err, "stack", string(stack))
	return err
}

// limitBody caps what a handler can read, whatever the Content-Length claims.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBodyBytes)
		}
		return next(c)
	}
}

// base returns the base URL for the route that matched: /fhir routes have their own.
func (s *Server) base(c echo.Context) string {
	if isFHIRBase(c) {
		return s.cfg.BaseURL + "/fhir"
	}
	return s.cfg.BaseURL
}

// isFHIRBase reports whether the request came in under /fhir.
func isFHIRBase(c echo.Context) bool {
	p := c.Request().URL.Path
	return p == "/fhir" || strings.HasPrefix(p, "/fhir/")
}

// fhirTypesOnly answers 404 under /fhir for fhirbox's own types (Client, User, Session,
// AccessPolicy, …): they are not FHIR resources, and serving them only at / is what lets
// a policy on uri '#^/fhir/' confine a client to clinical data.
func (s *Server) fhirTypesOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if typ := c.Param("type"); s.svc.Registry().Own(typ) {
			return resources.Errorf(resources.CodeNotFound, "%s is fhirbox's own type, not a FHIR resource: it is served at /%s, not under /fhir", typ, typ)
		}
		return next(c)
	}
}
