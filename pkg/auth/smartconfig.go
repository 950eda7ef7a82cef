package auth

import "slices"

// Client authentication methods, as discovery names them (RFC 8414 §2). The token
// endpoint and revocation also take a public client that names itself (none);
// introspection needs a secret.
var (
	TokenAuthMethods         = []string{"client_secret_basic", "client_secret_post", "none"}
	IntrospectionAuthMethods = []string{"client_secret_basic", "client_secret_post"}
	RevocationAuthMethods    = []string{"client_secret_basic", "client_secret_post", "none"}
)

// Paths of the OAuth endpoints, below the server's base URL.
const (
	TokenPath         = "/auth/token"
	AuthorizePath     = "/auth/authorize"
	IntrospectionPath = "/auth/introspect"
	RevocationPath    = "/auth/revoke"
	JWKSPath          = "/.well-known/jwks.json"
)

// GrantTypes lists the grants the endpoint serves, in the order Client settings name
// them: those a handler takes. It asks the handlers themselves, so that a grant added
// to the endpoint shows up in discovery without anything else to change.
func (t *TokenEndpoint) GrantTypes() []string {
	var out []string
	for _, g := range clientGrantTypes {
		req := &TokenRequest{Params: map[string]string{"grant_type": g}}
		if slices.ContainsFunc(t.Grants, func(h GrantHandler) bool { return h.Handles(req) }) {
			out = append(out, g)
		}
	}
	return out
}

// SMARTCapabilities lists the SMART App Launch 2.0 capabilities fhirbox serves with the
// grants given (conformance M1): what follows from the grants, and the scope grammar it
// reads. A capability is listed only once it is served: launch-standalone and
// client-public come with the authorization-code grant; the EHR launch, launch
// contexts, permission-patient/user/offline and sso-openid-connect with the pieces of
// work that bring them.
func SMARTCapabilities(grants []string) []string {
	caps := []string{"client-confidential-symmetric"}
	if slices.Contains(grants, "authorization_code") {
		caps = append(caps, "launch-standalone", "client-public")
	}
	// Scopes of both versions are parsed, checked, recorded and enforced, patient/
	// scopes confined to the launch patient's compartment (conformance M5, M6).
	return append(caps, "permission-v1", "permission-v2", "permission-patient", "permission-user")
}

// SMARTConfiguration is the document of /.well-known/smart-configuration (SMART App
// Launch 2.0, conformance M1) for a server whose base URL is issuer and whose token
// endpoint serves grants.
func SMARTConfiguration(issuer string, grants []string) map[string]any {
	code := slices.Contains(grants, "authorization_code")
	responseTypes, challenge := []string{}, []string{}
	doc := map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              issuer + JWKSPath,
		"token_endpoint":                        issuer + TokenPath,
		"token_endpoint_auth_methods_supported": TokenAuthMethods,
		"grant_types_supported":                 grants,
		"introspection_endpoint":                issuer + IntrospectionPath,
		"revocation_endpoint":                   issuer + RevocationPath,
		// The resource scopes a client may ask for; enforced as scopeaccess.go says.
		"scopes_supported": []string{"system/*.cruds", "user/*.cruds", "patient/*.cruds", "system/*.*", "user/*.*", "patient/*.*"},
		"capabilities":     SMARTCapabilities(grants),
	}
	if code {
		doc["authorization_endpoint"] = issuer + AuthorizePath
		responseTypes, challenge = []string{"code"}, []string{"S256"}
	}
	doc["response_types_supported"] = responseTypes
	doc["code_challenge_methods_supported"] = challenge
	return doc
}
