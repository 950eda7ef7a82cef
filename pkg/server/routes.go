package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fhirbox/fhirbox/pkg/observe"
)

// routes is the whole HTTP surface in one place. The resource API answers under two
// bases, / (fhirbox's own, as Aidbox has it) and /fhir (FHIR's), with the same handlers
// (F17); they differ only in base URL and in who assigns the id on create.
func (s *Server) routes(reg *prometheus.Registry) {
	e := s.echo
	e.GET("/health", s.handleHealth)
	e.GET("/metrics", echo.WrapHandler(observe.Handler(reg)))
	e.POST(testPolicyPath, s.handleTestPolicy)

	// OAuth 2.0 (pkg/auth): token endpoint, redirect-protected password grant, sessions,
	// keys and discovery.
	e.POST("/auth/token", s.handleToken)
	e.Match([]string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete}, "/auth/token", s.handleTokenMethod)
	e.GET("/auth/authorize", s.handleAuthorize)
	e.GET("/auth/userinfo", s.handleUserinfo)
	e.DELETE("/Session", s.handleCloseSession)
	e.GET("/.well-known/jwks.json", s.handleJWKS)
	e.GET("/.well-known/openid-configuration", s.handleDiscovery)
	e.GET("/.well-known/oauth-authorization-server", s.handleDiscovery)

	for _, prefix := range []string{"", "/fhir"} {
		g := e.Group(prefix)
		g.GET("/metadata", s.handleMetadata)
		g.GET("/:type", s.handleSearch)
		g.POST("/:type", s.handleCreate)
		g.POST("/:type/_search", s.handleSearch)
		g.GET("/:type/_history", s.handleTypeHistory)
		g.GET("/:type/:id", s.handleRead)
		g.PUT("/:type/:id", s.handleUpdate)
		g.DELETE("/:type/:id", s.handleDelete)
		g.GET("/:type/:id/_history", s.handleHistory)
		g.GET("/:type/:id/_history/:vid", s.handleVRead)
	}
}
