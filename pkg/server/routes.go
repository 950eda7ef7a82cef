package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/pkg/ui"
)

// routes is the whole HTTP surface in one place. The resource API answers under two
// bases, / (fhirbox's own, as Aidbox has it) and /fhir (FHIR's), with the same handlers
// (conformance F17); they differ only in base URL and in who assigns the id on create.
func (s *Server) routes(reg *prometheus.Registry) {
	e := s.echo
	root := e.Group("")
	getHead(root, "/health", s.handleHealth)
	getHead(root, "/metrics", echo.WrapHandler(observe.Handler(reg)))
	e.POST(testPolicyPath, s.handleTestPolicy)
	getHead(root, "/$reindex-status", s.handleReindexStatus)

	// OAuth 2.0 (pkg/auth): token endpoint, redirect-protected password grant, sessions,
	// keys and discovery.
	e.POST("/auth/token", s.handleToken)
	e.Match(notPost, "/auth/token", s.postOnly("token"))
	// Introspection and revocation (clienttokens.go).
	e.POST(auth.IntrospectionPath, s.handleIntrospect)
	e.Match(notPost, auth.IntrospectionPath, s.postOnly("introspection"))
	e.POST(auth.RevocationPath, s.handleRevoke)
	e.Match(notPost, auth.RevocationPath, s.postOnly("revocation"))
	getHead(root, "/auth/authorize", s.handleAuthorize)
	getHead(root, "/auth/userinfo", s.handleUserinfo)
	// Browser sign-in for the authorization code flow (signin.go, pkg/ui).
	getHead(root, "/auth/login", s.handleLoginPage)
	e.POST("/auth/login", s.handleLogin)
	e.POST("/auth/consent", s.handleConsent)
	getHead(root, "/auth/logout", s.handleSignedIn)
	e.POST("/auth/logout", s.handleLogout)
	getHead(root, "/ui/static/*", echo.WrapHandler(ui.Static()))
	// The Auth Sandbox (sandbox.go).
	getHead(root, sandboxPath, s.handleSandbox)
	getHead(root, sandboxCallback, s.handleSandbox)
	getHead(root, sandboxClientsPath, s.handleSandboxClients)
	e.POST(sandboxClientsPath, s.handleSandboxCreateClient)
	e.DELETE("/Session", s.handleCloseSession)
	getHead(root, "/.well-known/jwks.json", s.handleJWKS)
	getHead(root, "/.well-known/openid-configuration", s.handleDiscovery)
	getHead(root, "/.well-known/oauth-authorization-server", s.handleDiscovery)
	// SMART App Launch configuration, at the root and under the FHIR base (smart.go); the
	// static route wins over /fhir/:type/:id.
	getHead(root, "/.well-known/smart-configuration", s.handleSMARTConfiguration)
	getHead(root, "/fhir/.well-known/smart-configuration", s.handleSMARTConfiguration)

	// FHIR Bulk Data export (export.go), under the FHIR base; the static routes win
	// over /fhir/:type/:id.
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		e.Add(m, "/fhir/$export", s.handleExportKickoff(exportjob.System))
		e.Add(m, "/fhir/Patient/$export", s.handleExportKickoff(exportjob.Patient))
		e.Add(m, "/fhir/Group/:id/$export", s.handleExportKickoff(exportjob.Group))
	}
	getHead(root, "/fhir"+exportStatusPath+":job", s.handleExportStatus)
	e.DELETE("/fhir"+exportStatusPath+":job", s.handleExportDelete)
	getHead(root, "/fhir"+exportFilePath+":job/:seq", s.handleExportFile)

	for _, prefix := range []string{"", "/fhir"} {
		g := e.Group(prefix)
		var mw []echo.MiddlewareFunc
		if prefix == "/fhir" {
			// Route-level, not g.Use: group middleware adds catch-all routes.
			mw = append(mw, s.fhirTypesOnly)
		}
		getHead(g, "/metadata", s.handleMetadata)
		// System-level search (system.go); the types are checked there, not by route.
		for _, base := range []string{prefix, prefix + "/"} {
			if base != "" {
				getHead(root, base, s.handleSystemSearch)
			}
		}
		e.POST(prefix+"/_search", s.handleSystemSearch)
		// System-level history (history.go); its types are checked there too.
		getHead(root, prefix+"/_history", s.handleSystemHistory)
		// Batch and transaction Bundles (transaction.go), at the base itself.
		for _, base := range []string{prefix, prefix + "/"} {
			if base != "" {
				e.POST(base, s.handleBundle)
			}
		}
		getHead(g, "/:type", s.handleSearch, mw...)
		g.POST("/:type", s.handleCreate, mw...)
		g.POST("/:type/_search", s.handleSearch, mw...)
		getHead(g, "/:type/_history", s.handleTypeHistory, mw...)
		getHead(g, "/:type/:id", s.handleRead, mw...)
		g.PUT("/:type/:id", s.handleUpdate, mw...)
		g.DELETE("/:type/:id", s.handleDelete, mw...)
		// PATCH and the conditional writes (patch.go, conditional.go).
		g.PATCH("/:type/:id", s.handlePatch, mw...)
		g.PATCH("/:type", s.handleConditionalPatch, mw...)
		g.PUT("/:type", s.handleConditionalUpdate, mw...)
		g.DELETE("/:type", s.handleConditionalDelete, mw...)
		getHead(g, "/:type/:id/_history", s.handleHistory, mw...)
		getHead(g, "/:type/:id/_history/:vid", s.handleVRead, mw...)
		// Patient $everything (everything.go).
		getHead(g, "/:type/$everything", s.handleEverything, mw...)
		getHead(g, "/:type/:id/$everything", s.handleEverything, mw...)
		// $validate (validate.go): nothing is stored.
		g.POST("/:type/$validate", s.handleValidate, mw...)
		g.POST("/:type/:id/$validate", s.handleValidate, mw...)
	}
}

// notPost are the methods an endpoint that takes POST only answers with 405.
var notPost = []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete}

// getHead routes GET and HEAD of path to h: HEAD answers what GET would, without the
// body (see headWithoutBody).
func getHead(g *echo.Group, path string, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	g.Match([]string{http.MethodGet, http.MethodHead}, path, h, mw...)
}
