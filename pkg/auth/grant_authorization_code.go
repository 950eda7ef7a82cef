package auth

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirbox/fhirbox/resources"
)

// AuthorizationCodeGrant exchanges a code from /auth/authorize for tokens (RFC 6749
// §4.1.3, RFC 7636 §4.5). Tokens, Sessions, refresh tokens and JWT settings are those of
// the other grants, read from the client's auth.authorization_code block; an ID token is
// added when openid was asked for.
type AuthorizationCodeGrant struct {
	Codes    *Codes
	Sessions *Sessions
}

var _ GrantHandler = (*AuthorizationCodeGrant)(nil)

// Handles takes grant_type authorization_code.
func (g *AuthorizationCodeGrant) Handles(req *TokenRequest) bool {
	return req.GrantType() == "authorization_code"
}

// Token checks the code, its client, redirect_uri and PKCE verifier, and issues tokens
// that act for the user who signed in.
func (g *AuthorizationCodeGrant) Token(ctx context.Context, r *GrantRequest) (*TokenResponse, error) {
	const grant = "authorization_code"
	if err := r.admit(grant); err != nil {
		return nil, err
	}
	client := r.Client
	// RFC 6749 §4.1.3: a confidential client authenticates; a public one names itself
	// and proves the code with PKCE instead.
	if client.HasSecret && !r.Authenticated {
		return nil, r.clientErr("client " + client.ID + " must authenticate with its secret")
	}
	code, verifier := r.Params["code"], r.Params["code_verifier"]
	if code == "" {
		return nil, oauthErr(ErrCodeInvalidRequest, "code is required")
	}
	// A malformed verifier is the client's mistake whatever the code (conformance P2).
	if verifier != "" && (len(verifier) < 43 || len(verifier) > 128 || !pkceChars(verifier)) {
		return nil, oauthErr(ErrCodeInvalidRequest, "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	aud, err := r.audience(grant)
	if err != nil {
		return nil, err
	}
	bad := oauthErr(ErrCodeInvalidGrant, "the code is invalid, expired or already used")
	sid := resources.NewID()
	spent, err := g.Codes.spend(ctx, code, sid)
	if err != nil {
		return nil, err
	}
	if spent == nil {
		return nil, bad
	}
	doc := spent.doc
	if spent.reused {
		// Someone else holds a copy of the code: what it issued is closed too.
		if prev, _ := doc["session"].(string); prev != "" && refID(doc["client"]) == client.ID {
			if err := g.Sessions.Close(ctx, prev); err != nil {
				return nil, err
			}
		}
		return nil, oauthErr(ErrCodeInvalidGrant, "the code was already used; the tokens it issued are revoked")
	}
	exp, _ := number(doc["exp"])
	if refID(doc["client"]) != client.ID || g.Codes.now().Unix() >= exp {
		return nil, bad
	}
	// RFC 6749 §4.1.3: the redirect_uri of the authorization request, if it named one,
	// is repeated identically.
	stored, _ := doc["redirect_uri"].(string)
	given, _ := doc["redirect_given"].(bool)
	if ru := r.Params["redirect_uri"]; (given || ru != "") && ru != stored {
		return nil, oauthErr(ErrCodeInvalidGrant, "redirect_uri differs from the one of the authorization request")
	}
	challenge, _ := doc["code_challenge"].(string)
	switch {
	case challenge == "" && verifier != "":
		// RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a
		// downgrade attempt (conformance P4).
		return nil, oauthErr(ErrCodeInvalidGrant, "code_verifier was sent, but the authorization request had no code_challenge")
	case challenge != "" && verifier == "":
		return nil, oauthErr(ErrCodeInvalidGrant, "code_verifier is required: the authorization request had a code_challenge")
	case challenge != "" && !verifierMatches(verifier, challenge):
		return nil, oauthErr(ErrCodeInvalidGrant, "code_verifier does not match the code_challenge")
	}
	user, err := g.Sessions.dir.User(ctx, refID(doc["user"]))
	if err != nil {
		return nil, err
	}
	if user == nil {
		return nil, bad
	}
	scopeStr, _ := doc["scope"].(string)
	scope := strings.Fields(scopeStr)
	gr := Grant{Type: grant, Client: client, User: user, Audience: aud, Scope: scope, ID: sid,
		Patient: refID(doc["patient"]), Encounter: refID(doc["encounter"]), Banner: doc["need_patient_banner"] == true}
	// online_access without offline_access: the refresh token lives as long as the
	// sign-in it came from (conformance L8).
	if slices.Contains(scope, "online_access") && !slices.Contains(scope, "offline_access") {
		gr.Browser = refID(doc["browser"])
	}
	resp, err := g.Sessions.Issue(ctx, gr)
	if err != nil {
		return nil, err
	}
	if slices.Contains(scope, "openid") {
		nonce, _ := doc["nonce"].(string)
		authTime, _ := number(doc["auth_time"])
		fhirUser := ""
		if slices.Contains(scope, "fhirUser") {
			fhirUser = FHIRUser(user, g.Sessions.issuer)
		}
		if resp.IDToken, err = g.Sessions.idToken(refID(doc["user"]), client, nonce, time.Unix(authTime, 0), resp.AccessToken, fhirUser); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// FHIRUser is SMART's fhirUser of user: the absolute URL, under the FHIR base of the
// server at issuer, of the resource its fhirUser field references (a Patient,
// Practitioner, RelatedPerson or Person); "" when it has none (conformance L9).
func FHIRUser(user map[string]any, issuer string) string {
	typ, id, ok := RefOf(user["fhirUser"])
	if !ok {
		return ""
	}
	return issuer + "/fhir/" + typ + "/" + id
}

// idToken is the OpenID Connect ID token of a sign-in (OpenID Connect Core §2, §3.1.3.6):
// for the user sub, to the client, signed RS256 with the server's keys, with SMART's
// fhirUser claim when fhirUser is not "". It has no jti, so it never passes as an access
// token (conformance J7, A8).
func (s *Sessions) idToken(sub string, client *ClientConfig, nonce string, authTime time.Time, accessToken, fhirUser string) (string, error) {
	now := s.clock()
	cfg := client.Grant("authorization_code")
	h := sha256Sum(accessToken)
	claims := jwt.MapClaims{
		"iss": s.issuer, "sub": sub, "aud": client.ID, "iat": now.Unix(),
		"exp": now.Add(cfg.AccessTokenTTL).Unix(), "auth_time": authTime.Unix(),
		// at_hash: the left half of the access token's SHA-256, base64url (§3.1.3.6).
		"at_hash": b64(h[:len(h)/2]), "typ": "id",
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if fhirUser != "" {
		claims["fhirUser"] = fhirUser
	}
	t, err := s.keys.Sign(claims)
	if err != nil {
		return "", resources.Internal(err)
	}
	return t, nil
}
