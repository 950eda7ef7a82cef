package auth

import (
	"slices"

	"github.com/fhirbox/fhirbox/resources"
)

// ClientSpec is a Client as a page asks for one (the Auth Sandbox's "Create a client"):
// a few choices that Document turns into a Client's settings, so that the page needs to
// know nothing of their shape.
type ClientSpec struct {
	// ID is the new Client's id; empty lets the server assign one.
	ID     string `json:"id"`
	Name   string `json:"name"`
	Secret string `json:"secret"`
	// GrantTypes are the grants the Client may use.
	GrantTypes []string `json:"grant_types"`
	FirstParty bool     `json:"first_party"`
	// JWT asks for JWT access tokens (token_format: jwt) on every grant.
	JWT bool `json:"jwt"`
}

// Document is the Client that spec asks for, with redirectURI as the one redirect URI of
// its authorization_code grant and refresh tokens on the grants that act for a user when
// refresh_token is listed. It is not validated here: writing it validates it.
func (spec *ClientSpec) Document(redirectURI string) map[string]any {
	grants := make([]any, len(spec.GrantTypes))
	for i, g := range spec.GrantTypes {
		grants[i] = g
	}
	doc := map[string]any{"resourceType": "Client", "grant_types": grants, "first_party": spec.FirstParty}
	for k, v := range map[string]string{"id": spec.ID, "name": spec.Name, "secret": spec.Secret} {
		if v != "" {
			doc[k] = v
		}
	}
	format := tokenFormat(spec.JWT)
	refresh := slices.Contains(spec.GrantTypes, "refresh_token")
	blocks := map[string]any{}
	for _, g := range settingsGrants {
		if !slices.Contains(spec.GrantTypes, g) {
			continue
		}
		b := map[string]any{"token_format": format}
		if refresh && g != "client_credentials" {
			b["refresh_token"] = true
		}
		if g == "authorization_code" {
			b["redirect_uri"] = []any{redirectURI}
		}
		blocks[g] = b
	}
	if len(blocks) > 0 {
		doc["auth"] = blocks
	}
	return doc
}

// ClientSummary is what a page shows of a stored Client: never its secret, only whether
// it has one.
type ClientSummary struct {
	ID           string   `json:"id"`
	Name         string   `json:"name,omitempty"`
	GrantTypes   []string `json:"grant_types"`
	FirstParty   bool     `json:"first_party"`
	Confidential bool     `json:"confidential"`
	RedirectURIs []string `json:"redirect_uris"`
	// Callback says whether the redirect URI the page asked about is among RedirectURIs.
	Callback bool `json:"callback"`
	// Invalid is the problem of a Client whose stored settings do not parse.
	Invalid string `json:"invalid,omitempty"`
}

// Summarize describes the stored Client doc (id id) for a page whose own redirect URI
// is redirectURI.
func Summarize(id string, doc map[string]any, redirectURI string) ClientSummary {
	out := ClientSummary{ID: id, GrantTypes: []string{}, RedirectURIs: []string{}}
	cfg, err := ParseClientConfig(doc)
	if err != nil {
		out.Invalid = resources.ErrorMessage(err)
		return out
	}
	out.Name, out.FirstParty, out.Confidential = cfg.Name, cfg.FirstParty, cfg.HasSecret
	out.GrantTypes = append(out.GrantTypes, cfg.GrantTypes...)
	out.RedirectURIs = append(out.RedirectURIs, cfg.Grant("authorization_code").RedirectURIs...)
	out.Callback = slices.Contains(out.RedirectURIs, redirectURI)
	return out
}
