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
// reads. A capability is listed only once it is served. With the authorization-code
// grant come both launches and their contexts (the patient picker, LaunchContext:
// launch.go, conformance L1–L6), sign-in with OpenID Connect (the ID token and its
// fhirUser, L9) and refresh tokens asked for with offline_access or online_access (L7,
// L8); permission-patient and permission-user with the enforcement of scopes.
func SMARTCapabilities(grants []string) []string {
	caps := []string{"client-confidential-symmetric"}
	if slices.Contains(grants, "authorization_code") {
		caps = append(caps, "launch-standalone", "launch-ehr", "client-public",
			"context-standalone-patient", "context-ehr-patient", "context-ehr-encounter", "context-banner",
			"sso-openid-connect", "permission-offline", "permission-online")
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
		// The launch, identity and refresh scopes the browser sign-in serves.
		doc["scopes_supported"] = append(doc["scopes_supported"].([]string),
			"launch", "launch/patient", "openid", "fhirUser", "offline_access", "online_access")
	}
	doc["response_types_supported"] = responseTypes
	doc["code_challenge_methods_supported"] = challenge
	return doc
}
