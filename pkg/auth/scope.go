package auth

import (
	"slices"
	"strings"
)

// parseScope reads a scope parameter (RFC 6749 §3.3): scope-tokens of printable ASCII
// but space, '"' and '\', separated by spaces. Repeated tokens count once; the order is
// kept. An empty parameter is no scope. A token in SMART's namespace (patient/…, user/…,
// system/…, launch/…) must follow SMART's grammar (conformance M3, M4).
func parseScope(s string) ([]string, *OAuthError) {
	toks, oe := scopeTokens(s)
	if oe != nil {
		return nil, oe
	}
	for _, tok := range toks {
		if _, err := ParseSMARTScope(tok); err != nil {
			return nil, oauthErr(ErrCodeInvalidScope, "%v", err)
		}
	}
	return toks, nil
}

// scopeTokens is parseScope without SMART's grammar: what a stored Client's scope list
// is read with, so that a Client written before the grammar was checked still loads
// (its malformed scopes are refused when asked for, and when the Client is written).
func scopeTokens(s string) ([]string, *OAuthError) {
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return nil, oauthErr(ErrCodeInvalidScope, "malformed scope %q: scope tokens are printable ASCII without spaces, quotes or backslashes", tok)
			}
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, nil
}

// narrowScope is the scope of a refreshed access token: the requested one, which may
// leave out part of the granted scope but never add to it (conformance T10), or, when
// the refresh asks for none, the whole grant (RFC 6749 §6).
func narrowScope(granted string, requested []string) (string, *OAuthError) {
	if len(requested) == 0 {
		return granted, nil
	}
	have := strings.Fields(granted)
	for _, tok := range requested {
		if !slices.Contains(have, tok) {
			if len(have) == 0 {
				return "", oauthErr(ErrCodeInvalidScope, "scope %q was not granted: this session has no scope, and a refresh cannot add one", tok)
			}
			return "", oauthErr(ErrCodeInvalidScope, "scope %q was not granted: a refresh may only narrow the session's scope %q", tok, granted)
		}
	}
	return strings.Join(requested, " "), nil
}
