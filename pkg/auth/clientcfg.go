package auth

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// clientGrantTypes are the grants a Client may list. implicit is left out on purpose:
// it puts access tokens in URLs, and the OAuth 2.0 Security BCP (RFC 9700) forbids it.
var clientGrantTypes = []string{"password", "client_credentials", "refresh_token", "authorization_code", "basic"}

// settingsGrants are the grants that take an auth.<grant> block. refresh_token has none
// of its own: how a refresh token behaves is decided by the grant that issued it.
var settingsGrants = []string{"password", "client_credentials", "authorization_code"}

// grantSettings are the keys of an auth.<grant> block. Anything else is refused, so that
// a typo cannot silently fall back to a default.
var grantSettings = []string{
	"token_format", "access_token_expiration", "token_expiration", "refresh_token",
	"refresh_token_expiration", "secret_required", "redirect_uri", "audience", "pkce",
}

const (
	// defaultAccessTokenTTL is Aidbox's default lifetime of an access token.
	defaultAccessTokenTTL = 3600 * time.Second
	// maxTokenSeconds bounds expirations at 10 years: longer is surely a mistake (a value
	// in milliseconds), and it keeps every expiry far from time.Duration's overflow.
	maxTokenSeconds = 10 * 365 * 24 * 3600
)

// ClientConfig is the validated OAuth configuration of a Client.
type ClientConfig struct {
	// ID is the Client's id.
	ID string
	// Name is the Client's name, shown on the sign-in pages; "" when it has none.
	Name string
	// HasSecret is set when the stored document has a (hashed) secret; a client without
	// one is public and can only name itself.
	HasSecret bool
	// GrantTypes are the grants the client may use, as listed.
	GrantTypes []string
	// Grants holds, for every listed grant that takes settings, its settings with the
	// defaults applied.
	Grants map[string]GrantConfig
	// Scopes, from the Client's scope (RFC 7591 §2: space-separated, or a list), are the
	// scopes the client may ask for; nil allows any.
	Scopes []string
	// ResourceServer, from resource_server: true, lets the client introspect every
	// token, not only those issued to itself (RFC 7662 §2.1, conformance I4).
	ResourceServer bool
	// FirstParty (first_party: true, as in Aidbox) marks an application of the server's
	// own operator: its users are not asked to consent (conformance A9).
	FirstParty bool
}

// GrantConfig is the auth.<grant> block of a Client with the defaults applied.
type GrantConfig struct {
	// JWT is set by token_format: jwt; absent or opaque issues opaque tokens.
	JWT bool
	// AccessTokenTTL is access_token_expiration (or its alias token_expiration), 1 h by
	// default.
	AccessTokenTTL time.Duration
	// RefreshToken is set when the grant also issues a refresh token.
	RefreshToken bool
	// RefreshTokenTTL is how long a refresh token stays usable after its last use; 0 means
	// it does not expire.
	RefreshTokenTTL time.Duration
	// SecretRequired makes the grant refuse a client that names itself without its secret.
	SecretRequired bool
	// RedirectURI, when set, protects the password grant with a one-time code sent there.
	RedirectURI string
	// RedirectURIs are the registered redirect URIs of the authorization_code grant (its
	// redirect_uri: one string or a list), compared exactly (conformance A2).
	RedirectURIs []string
	// PKCE makes the authorization_code grant require PKCE (S256) of a confidential
	// client too; public clients always need it (conformance A5).
	PKCE bool
	// Audience lists the audiences a token may be requested for; empty allows any.
	Audience []string
}

// defaultGrantConfig is what a grant gets when its auth block says nothing.
func defaultGrantConfig() GrantConfig {
	return GrantConfig{AccessTokenTTL: defaultAccessTokenTTL}
}

// ParseClientConfig validates a Client document (decoded JSON: map[string]any with
// float64 or json.Number numbers, []any lists) and returns its OAuth settings. It serves
// both to refuse a bad write and to read a stored client, so every problem is a
// CodeUnprocessable *resources.Error whose Expression names the field at fault (e.g.
// "grant_types[2]", "auth.password.access_token_expiration"). Fields that are not OAuth
// settings (name, description, type, first_party, …) are ignored; secret is only looked
// at for HasSecret, since it is validated where it is hashed.
func ParseClientConfig(doc map[string]any) (*ClientConfig, error) {
	c := &ClientConfig{Grants: map[string]GrantConfig{}}
	c.ID, _ = doc["id"].(string)
	c.Name, _ = doc["name"].(string)
	secret, _ := doc["secret"].(string)
	c.HasSecret = secret != ""

	grants, err := parseGrantTypes(doc["grant_types"])
	if err != nil {
		return nil, err
	}
	c.GrantTypes = grants
	if c.Scopes, err = parseClientScope(doc["scope"]); err != nil {
		return nil, err
	}
	if v, ok := doc["resource_server"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, settingErr("resource_server", "resource_server must be true or false")
		}
		c.ResourceServer = b
	}
	switch fp := doc["first_party"].(type) {
	case nil:
	case bool:
		c.FirstParty = fp
	default:
		return nil, settingErr("first_party", "first_party must be true or false")
	}
	for _, g := range grants {
		if slices.Contains(settingsGrants, g) {
			c.Grants[g] = defaultGrantConfig()
		}
	}

	raw := doc["auth"]
	if raw == nil {
		return c, nil
	}
	blocks, ok := raw.(map[string]any)
	if !ok {
		return nil, settingErr("auth", "auth must be an object whose keys are grant types: %s", strings.Join(settingsGrants, ", "))
	}
	// Sorted, so that a document with several problems always reports the same one.
	for _, g := range slices.Sorted(maps.Keys(blocks)) {
		path := "auth." + g
		switch {
		case g == "refresh_token":
			return nil, settingErr(path, "refresh token settings belong under the grant that issues the refresh token, e.g. auth.password.refresh_token_expiration")
		case g == "basic":
			return nil, settingErr(path, "HTTP Basic authentication takes no settings")
		case !slices.Contains(settingsGrants, g):
			return nil, settingErr(path, "unknown grant %q: auth takes %s", g, strings.Join(settingsGrants, ", "))
		case !c.Allows(g):
			return nil, settingErr(path, "the client's grant_types do not include %s", g)
		}
		gc, err := parseGrantConfig(c, g, blocks[g], path)
		if err != nil {
			return nil, err
		}
		c.Grants[g] = gc
	}
	return c, nil
}

// ValidateClient is ParseClientConfig for a Client being written: it also refuses a
// scope in the Client's scope list that breaks SMART's grammar (conformance M3, M4).
// Reading a stored Client skips that check, so a Client written before it keeps working.
func ValidateClient(doc map[string]any) error {
	c, err := ParseClientConfig(doc)
	if err != nil {
		return err
	}
	for _, tok := range c.Scopes {
		if _, err := ParseSMARTScope(tok); err != nil {
			return settingErr("scope", "%v", err)
		}
	}
	return nil
}

// Allows reports whether the client lists grant in its grant_types.
func (c *ClientConfig) Allows(grant string) bool {
	return slices.Contains(c.GrantTypes, grant)
}

// Grant returns the settings of grant: the defaults when the client has no auth block
// for it, so callers never have to tell "not configured" from "configured as default".
func (c *ClientConfig) Grant(grant string) GrantConfig {
	if g, ok := c.Grants[grant]; ok {
		return g
	}
	return defaultGrantConfig()
}

// parseClientScope reads a Client's scope: a space-separated string (RFC 7591 §2) or a
// list of scope tokens. Absent or null allows any scope; an empty one allows none.
func parseClientScope(raw any) ([]string, error) {
	const want = "scope must be the scopes the client may ask for: a space-separated string or a list of scope tokens"
	var joined string
	switch v := raw.(type) {
	case nil:
		return nil, nil
	case string:
		joined = v
	case []any:
		toks := make([]string, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok || s == "" || strings.Contains(s, " ") {
				return nil, settingErr(fmt.Sprintf("scope[%d]", i), "%s", want)
			}
			toks[i] = s
		}
		joined = strings.Join(toks, " ")
	default:
		return nil, settingErr("scope", "%s", want)
	}
	toks, oe := scopeTokens(joined)
	if oe != nil {
		return nil, settingErr("scope", "%s", oe.Description)
	}
	if toks == nil {
		toks = []string{}
	}
	return toks, nil
}

// AllowsScope returns the first of the requested scope tokens that the client may not
// ask for, or "" when it may ask for all of them.
func (c *ClientConfig) AllowsScope(requested []string) string {
	if c.Scopes == nil {
		return ""
	}
	for _, tok := range requested {
		if !slices.Contains(c.Scopes, tok) {
			return tok
		}
	}
	return ""
}

// parseGrantTypes reads grant_types: absent means no grant at all.
func parseGrantTypes(raw any) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	var list []any
	switch v := raw.(type) {
	case []any:
		list = v
	case []string:
		for _, s := range v {
			list = append(list, s)
		}
	default:
		return nil, settingErr("grant_types", "grant_types must be a list of grant types: %s", strings.Join(clientGrantTypes, ", "))
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		path := fmt.Sprintf("grant_types[%d]", i)
		s, ok := item.(string)
		switch {
		case !ok:
			return nil, settingErr(path, "each grant type must be a string: %s", strings.Join(clientGrantTypes, ", "))
		case s == "implicit":
			return nil, settingErr(path, "the implicit grant is not supported: it exposes tokens in URLs; use authorization_code")
		case !slices.Contains(clientGrantTypes, s):
			return nil, settingErr(path, "unknown grant type %q: one of %s", s, strings.Join(clientGrantTypes, ", "))
		case slices.Contains(out, s):
			return nil, settingErr(path, "grant type %s is listed twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseGrantConfig reads the auth.<grant> block raw of client c. A null block (YAML's
// "password:" with nothing under it) is an empty one.
func parseGrantConfig(c *ClientConfig, grant string, raw any, path string) (GrantConfig, error) {
	g := defaultGrantConfig()
	if raw == nil {
		return g, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return g, settingErr(path, "%s must be an object of settings", path)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(grantSettings, k) {
			return g, settingErr(path+"."+k, "unknown setting %q; the settings are %s", k, strings.Join(grantSettings, ", "))
		}
	}
	// get treats null as absent, as YAML writes an empty value.
	get := func(k string) (any, bool) {
		v := m[k]
		return v, v != nil
	}
	field := func(k string) string { return path + "." + k }

	if v, ok := get("token_format"); ok {
		switch v {
		case "jwt":
			g.JWT = true
		case "opaque":
		default:
			return g, settingErr(field("token_format"), "token_format must be jwt or opaque")
		}
	}

	_, long := get("access_token_expiration")
	_, short := get("token_expiration")
	if long && short {
		return g, settingErr(field("token_expiration"), "token_expiration is an alias of access_token_expiration: give one of them")
	}
	for _, k := range []string{"access_token_expiration", "token_expiration"} {
		if v, ok := get(k); ok {
			d, err := settingSeconds(v, field(k))
			if err != nil {
				return g, err
			}
			g.AccessTokenTTL = d
		}
	}

	if v, ok := get("refresh_token"); ok {
		b, ok := v.(bool)
		if !ok {
			return g, settingErr(field("refresh_token"), "refresh_token must be true or false")
		}
		if b && !c.Allows("refresh_token") {
			return g, settingErr(field("refresh_token"), "refresh_token: true needs refresh_token in the client's grant_types")
		}
		g.RefreshToken = b
	}
	if v, ok := get("refresh_token_expiration"); ok {
		if !g.RefreshToken {
			return g, settingErr(field("refresh_token_expiration"), "refresh_token_expiration needs refresh_token: true")
		}
		d, err := settingSeconds(v, field("refresh_token_expiration"))
		if err != nil {
			return g, err
		}
		g.RefreshTokenTTL = d
	}

	if v, ok := get("secret_required"); ok {
		b, ok := v.(bool)
		if !ok {
			return g, settingErr(field("secret_required"), "secret_required must be true or false")
		}
		// Saying false would suggest a public client could use client_credentials.
		if !b && grant == "client_credentials" {
			return g, settingErr(field("secret_required"), "the client_credentials grant always requires the client's secret")
		}
		g.SecretRequired = b
	}

	if v, ok := get("pkce"); ok {
		b, ok := v.(bool)
		if !ok || grant != "authorization_code" {
			return g, settingErr(field("pkce"), "pkce (true or false) is a setting of the authorization_code grant only")
		}
		g.PKCE = b
	}

	if v, ok := get("redirect_uri"); ok && grant == "authorization_code" {
		uris, err := redirectURIList(v, field("redirect_uri"))
		if err != nil {
			return g, err
		}
		g.RedirectURIs = uris
	} else if ok {
		if grant == "client_credentials" {
			return g, settingErr(field("redirect_uri"), "the client_credentials grant involves no user and redirects nowhere")
		}
		s, ok := v.(string)
		if !ok {
			return g, settingErr(field("redirect_uri"), "redirect_uri must be a string")
		}
		if err := checkRedirectURI(s, field("redirect_uri")); err != nil {
			return g, err
		}
		g.RedirectURI = s
	}

	if v, ok := get("audience"); ok {
		aud, err := audienceList(v, field("audience"))
		if err != nil {
			return g, err
		}
		g.Audience = aud
	}
	return g, nil
}

// settingSeconds reads a whole, positive number of seconds of at most 10 years.
func settingSeconds(v any, path string) (time.Duration, error) {
	bad := settingErr(path, "%s must be a whole number of seconds from 1 to %d (10 years)", path[strings.LastIndex(path, ".")+1:], maxTokenSeconds)
	var f float64
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			f = float64(i)
		} else if x, err := n.Float64(); err == nil {
			f = x // 3e2, 300.0
		} else {
			return 0, bad
		}
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	default:
		return 0, bad
	}
	if f != math.Trunc(f) || f < 1 || f > maxTokenSeconds {
		return 0, bad
	}
	return time.Duration(f) * time.Second, nil
}

// checkRedirectURI enforces RFC 6749 §3.1.2 and RFC 9700 §4.1: an absolute URL without a
// fragment, over https except on the loopback interface, where a native app listens and
// no one else can.
func checkRedirectURI(s, path string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return settingErr(path, "redirect_uri must be an absolute https URL")
	}
	if strings.Contains(s, "#") {
		return settingErr(path, "redirect_uri must not have a fragment")
	}
	if u.User != nil {
		return settingErr(path, "redirect_uri must not carry credentials")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		switch strings.ToLower(u.Hostname()) {
		case "localhost", "127.0.0.1", "::1":
		default:
			return settingErr(path, "redirect_uri must use https; http is allowed only for localhost, 127.0.0.1 and [::1]")
		}
	default:
		return settingErr(path, "redirect_uri must use https; http is allowed only for localhost, 127.0.0.1 and [::1]")
	}
	return nil
}

// redirectURIList reads the redirect_uri of the authorization_code grant: one URL or a
// non-empty list of them, each as checkRedirectURI wants it.
func redirectURIList(v any, path string) ([]string, error) {
	var list []any
	switch x := v.(type) {
	case string:
		list = []any{x}
	case []any:
		if len(x) == 0 {
			return nil, settingErr(path, "redirect_uri must list at least one URL")
		}
		list = x
	default:
		return nil, settingErr(path, "redirect_uri must be a URL or a list of URLs")
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		p := path
		if _, many := v.([]any); many {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := item.(string)
		if !ok {
			return nil, settingErr(p, "redirect_uri must be a URL or a list of URLs")
		}
		if err := checkRedirectURI(s, p); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// audienceList reads audience: a list of non-empty strings, or one string. An empty
// list is refused because it reads as "no audience allowed" while it would allow any.
func audienceList(v any, path string) ([]string, error) {
	switch a := v.(type) {
	case string:
		if strings.TrimSpace(a) == "" {
			return nil, settingErr(path, "audience must not be empty")
		}
		return []string{a}, nil
	case []any:
		if len(a) == 0 {
			return nil, settingErr(path, "audience must list at least one audience; leave it out to allow any")
		}
		out := make([]string, 0, len(a))
		for i, item := range a {
			s, ok := item.(string)
			if !ok || strings.TrimSpace(s) == "" {
				return nil, settingErr(fmt.Sprintf("%s[%d]", path, i), "each audience must be a non-empty string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, settingErr(path, "audience must be a list of strings")
}

// settingErr is the 422 of an invalid Client setting, naming the field in both the
// message (for people) and Expression (for the OperationOutcome).
func settingErr(field, format string, args ...any) *resources.Error {
	return &resources.Error{Code: resources.CodeUnprocessable, Message: field + ": " + fmt.Sprintf(format, args...), Expression: field}
}
