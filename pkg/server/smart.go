package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/fhir"
)

// This file serves SMART App Launch's discovery: /.well-known/smart-configuration and
// the SMART part of the CapabilityStatement (rest.security). Both are built from what
// the token endpoint serves (auth.TokenEndpoint.GrantTypes), so that a grant added
// there shows up here by itself.

// handleSMARTConfiguration answers GET /.well-known/smart-configuration, at the root and
// under /fhir: the same document, since one authorization server serves both bases
// (conformance M1).
func (s *Server) handleSMARTConfiguration(c echo.Context) error {
	return c.JSON(http.StatusOK, auth.SMARTConfiguration(s.cfg.BaseURL, s.oauth.Token.GrantTypes()))
}

// SMART's extension and service coding of CapabilityStatement.rest.security.
const (
	oauthURIsExtension = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
	restSecuritySystem = "http://terminology.hl7.org/CodeSystem/restful-security-service"
)

// smartSecurity is CapabilityStatement.rest.security: the SMART-on-FHIR service and the
// oauth-uris extension naming the endpoints served (conformance M2).
func (s *Server) smartSecurity() *fhir.CapabilitySecurity {
	b := s.cfg.BaseURL
	uris := []fhir.Extension{{URL: "token", ValueURI: b + auth.TokenPath}}
	for _, g := range s.oauth.Token.GrantTypes() {
		if g == "authorization_code" {
			uris = append(uris, fhir.Extension{URL: "authorize", ValueURI: b + auth.AuthorizePath})
		}
	}
	uris = append(uris,
		fhir.Extension{URL: "introspect", ValueURI: b + auth.IntrospectionPath},
		fhir.Extension{URL: "revoke", ValueURI: b + auth.RevocationPath})
	return &fhir.CapabilitySecurity{
		Extension: []fhir.Extension{{URL: oauthURIsExtension, Extension: uris}},
		Service: []fhir.CodeableConcept{{
			Coding: []fhir.Coding{{System: restSecuritySystem, Code: "SMART-on-FHIR"}},
			Text:   "OAuth 2.0 and SMART App Launch 2.0 (see /.well-known/smart-configuration)",
		}},
		Description: "Bearer tokens from " + b + auth.TokenPath + ", or HTTP Basic client credentials. AccessPolicy resources decide every request; a token's SMART scopes narrow what they allow, and patient/ scopes confine it to the launch patient's compartment.",
	}
}
