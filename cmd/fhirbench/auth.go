package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// The OAuth scenarios talk to the server as its clients do: over HTTP, with clients, a
// user and a policy of their own that setup writes through the admin API. They never
// share code with pkg/auth, so they measure the server's contract, not its internals.

// The bench's OAuth subjects. Secrets keep to RFC 6749's unreserved characters: the
// server refuses others in HTTP Basic, where raw and form-encoded would read apart.
const (
	ccClientID        = "fhirbench-cc"
	ccSecret          = "fhirbench-cc-secret"
	jwtClientID       = "fhirbench-jwt"
	jwtSecret         = "fhirbench-jwt-secret"
	pwClientID        = "fhirbench-pw"
	pwSecret          = "fhirbench-pw-secret"
	benchUserID       = "fhirbench-user"
	benchUserPassword = "fhirbench-user-password"
	benchUserEmail    = "fhirbench@example.com"
	benchPolicyID     = "fhirbench-read"

	// tokenTTL is the access token lifetime of the bench clients, in seconds: an hour
	// outlasts any sensible run, so a read-bearer run never meets an expired token.
	tokenTTL = 3600

	tokenPath      = "/auth/token"
	introspectPath = "/auth/introspect"
)

// benchResource is a resource the OAuth scenarios need on the server.
type benchResource struct {
	Type, ID string
	// Secret names the field the server hashes and never returns ("" for none).
	Secret string
	Doc    map[string]any
}

func (r benchResource) path() string { return "/" + r.Type + "/" + r.ID }

// benchResources lists what setup writes, in an order that lets each refer to the
// ones before it: the policy links the clients and the user.
func benchResources() []benchResource {
	ccClient := func(id, secret, format string) benchResource {
		return benchResource{Type: "Client", ID: id, Secret: "secret", Doc: map[string]any{
			"resourceType": "Client",
			"secret":       secret,
			"grant_types":  []any{"client_credentials"},
			"auth": map[string]any{"client_credentials": map[string]any{
				"token_format": format, "access_token_expiration": tokenTTL,
			}},
		}}
	}
	ref := func(typ, id string) map[string]any { return map[string]any{"resourceType": typ, "id": id} }
	return []benchResource{
		ccClient(ccClientID, ccSecret, "opaque"),
		ccClient(jwtClientID, jwtSecret, "jwt"),
		acClient(),
		{Type: "Client", ID: pwClientID, Secret: "secret", Doc: map[string]any{
			"resourceType": "Client", "secret": pwSecret, "grant_types": []any{"password"},
		}},
		{Type: "User", ID: benchUserID, Secret: "password", Doc: map[string]any{
			"resourceType": "User", "password": benchUserPassword, "email": benchUserEmail,
		}},
		{Type: "AccessPolicy", ID: benchPolicyID, Doc: map[string]any{
			"resourceType": "AccessPolicy",
			"engine":       "matcho",
			"link":         []any{ref("Client", ccClientID), ref("Client", jwtClientID), ref("User", benchUserID)},
			"matcho":       map[string]any{"request-method": "get"},
		}},
	}
}

func findBenchResource(typ, id string) benchResource {
	for _, r := range benchResources() {
		if r.Type == typ && r.ID == id {
			return r
		}
	}
	panic("fhirbench: no bench resource " + typ + "/" + id)
}

// sameFields reports whether stored (a resource as the server returns it) has every
// field of want but skip as want has it. Fields only stored has (meta, id) do not
// count, and skip is the secret, which the server never returns.
func sameFields(stored, want map[string]any, skip string) bool {
	for k, v := range want {
		if k == skip {
			continue
		}
		// A JSON round trip gives want the types stored was decoded to (float64,
		// []any), so that 3600 equals 3600.
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		var norm any
		if json.Unmarshal(b, &norm) != nil || !reflect.DeepEqual(norm, stored[k]) {
			return false
		}
	}
	return true
}

// ensure writes res unless the server has it as wanted, and reports whether it wrote.
// The secret cannot be compared, since the server keeps only its hash. A resource that
// exists but differs is written without its secret, which keeps the stored hash:
// writing a User's password again would close every Session of the user (thousands
// after a token-password run), on the server, while the next run measures it. force
// writes the secret too, for when the server refused it.
func ensure(ctx context.Context, api *API, res benchResource, force bool) (bool, error) {
	doc := res.Doc
	route := "/" + res.Type + "/{id}"
	if !force {
		st, body, err := api.Do(ctx, http.MethodGet, res.path(), route, nil, true)
		switch {
		case err == nil:
			var stored map[string]any
			if err := json.Unmarshal(body, &stored); err != nil {
				return false, fmt.Errorf("reading %s: %w", res.path(), err)
			}
			if sameFields(stored, res.Doc, res.Secret) {
				return false, nil
			}
			doc = without(res.Doc, res.Secret)
		case st == http.StatusNotFound || st == http.StatusGone:
		default:
			return false, fmt.Errorf("reading %s: %w", res.path(), err)
		}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return false, err
	}
	if _, _, err := api.Do(ctx, http.MethodPut, res.path(), route, body, false); err != nil {
		return false, fmt.Errorf("writing %s: %w", res.path(), err)
	}
	return true, nil
}

// without returns a shallow copy of doc without field.
func without(doc map[string]any, field string) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		if k != field {
			out[k] = v
		}
	}
	return out
}

// TokenRequest is a token request of a bench client: HTTP Basic client credentials and
// a form body.
type TokenRequest struct {
	ClientID, Secret string
	Form             url.Values
}

// Request returns the HTTP request, made once and sent many times.
func (t TokenRequest) Request() Request {
	// RFC 6749 §2.3.1: id and secret are form-encoded before base64. For the bench's
	// unreserved-only credentials that changes nothing, but it keeps the request right
	// for any other.
	cred := url.QueryEscape(t.ClientID) + ":" + url.QueryEscape(t.Secret)
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	h.Set("Accept", "application/json")
	return Request{Method: http.MethodPost, Path: tokenPath, Route: tokenPath, Header: h, Body: []byte(t.Form.Encode()), Keep: true}
}

// TokenResponse is what the bench reads of the token endpoint's answer.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// Token sends a token request made by TokenRequest.Request. Anything but a 200 with an
// access token is an error: a 2xx without a token issued nothing to count.
func (a *API) Token(ctx context.Context, r Request) (*TokenResponse, error) {
	st, body, err := a.Send(ctx, r)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, &StatusError{Method: r.Method, Route: r.Route, Status: st, Body: snippet(body)}
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("%s %s: the answer is not JSON: %v", r.Method, r.Route, err)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%s %s: the answer has no access_token", r.Method, r.Route)
	}
	return &tr, nil
}

// authScenario is what an OAuth scenario asks of the server.
type authScenario struct {
	// token is the request that issues the scenario's tokens: those it measures
	// (token-*), or the one its reads carry (read-bearer-*).
	token TokenRequest
	// jwt is set when the client's tokens are JWTs.
	jwt bool
	// bearer is set for the reads, which send one token instead of issuing tokens.
	bearer bool
	// introspect is set for the scenario that asks, as the token's own client, about one
	// token (RFC 7662) instead of issuing tokens.
	introspect bool
	// code is set for the scenario that exchanges authorization codes (authcode.go).
	code bool
}

func clientCredentials(id, secret string) TokenRequest {
	return TokenRequest{ClientID: id, Secret: secret, Form: url.Values{"grant_type": {"client_credentials"}}}
}

var authScenarios = map[string]authScenario{
	"token-client-credentials": {token: clientCredentials(ccClientID, ccSecret)},
	"token-jwt":                {token: clientCredentials(jwtClientID, jwtSecret), jwt: true},
	"token-password": {token: TokenRequest{ClientID: pwClientID, Secret: pwSecret, Form: url.Values{
		"grant_type": {"password"}, "username": {benchUserID}, "password": {benchUserPassword},
	}}},
	"read-bearer-opaque": {token: clientCredentials(ccClientID, ccSecret), bearer: true},
	"read-bearer-jwt":    {token: clientCredentials(jwtClientID, jwtSecret), jwt: true, bearer: true},
	"introspect":         {token: clientCredentials(ccClientID, ccSecret), introspect: true},
	"token-authorization-code": {token: TokenRequest{ClientID: acClientID, Secret: acSecret,
		Form: url.Values{"grant_type": {"authorization_code"}}}, code: true},
}

// IsAuthScenario reports whether scenario needs the OAuth setup.
func IsAuthScenario(scenario string) bool {
	_, ok := authScenarios[scenario]
	return ok
}

// AuthSetup is what an OAuth scenario got ready on the server.
type AuthSetup struct {
	sc authScenario
	// Token is the scenario's token request.
	Token Request
	// Bearer is the token the reads carry, or that introspect asks about; ExpiresIn its
	// lifetime in seconds.
	Bearer    string
	ExpiresIn int64
	// Introspect is introspect's request.
	Introspect Request
	// Written lists the resources setup wrote; the others were as wanted already.
	Written []string
	// Issued counts the tokens this run was given, each of which is a Session resource
	// the server keeps.
	Issued atomic.Int64
	// codes are the authorization codes token-authorization-code exchanges, made by
	// setup in CodesMade.
	codes     chan string
	CodesMade time.Duration
}

// SetupAuth makes sure the bench's clients, user and policy are on the server, then asks
// for one token of the scenario's client: a run that cannot get one fails now, with the
// server's reason, not after its warm-up. For read-bearer-* that token is the one every
// read carries, and one read checks that the policy lets it through.
func (w *Workload) SetupAuth(ctx context.Context, api *API) error {
	sc, ok := authScenarios[w.Scenario]
	if !ok {
		return fmt.Errorf("scenario %s needs no OAuth setup", w.Scenario)
	}
	a := &AuthSetup{sc: sc, Token: sc.token.Request()}
	for _, r := range benchResources() {
		wrote, err := ensure(ctx, api, r, false)
		if err != nil {
			return err
		}
		if wrote {
			a.Written = append(a.Written, r.Type+"/"+r.ID)
		}
	}
	if sc.code {
		w.Auth = a
		return a.setupCodes(ctx, api, w.Codes)
	}
	tok, err := a.firstToken(ctx, api)
	if err != nil {
		return err
	}
	// A JWT client that issued opaque tokens (or the reverse) would measure the other
	// scenario under this one's name.
	if isJWT := strings.Count(tok.AccessToken, ".") == 2; isJWT != sc.jwt {
		want := "opaque"
		if sc.jwt {
			want = "jwt"
		}
		return fmt.Errorf("client %s is set to token_format %s, but its token is not one", sc.token.ClientID, want)
	}
	a.ExpiresIn = tok.ExpiresIn
	if sc.bearer {
		a.Bearer = tok.AccessToken
		if len(w.Patients) == 0 {
			return fmt.Errorf("scenario %s needs patients: use -load", w.Scenario)
		}
		path := "/Patient/" + w.Patients[0].ID
		if _, _, err := api.Send(ctx, a.bearerRead(path)); err != nil {
			return fmt.Errorf("reading with a token of %s (allowed by AccessPolicy/%s): %w", sc.token.ClientID, benchPolicyID, err)
		}
	}
	if sc.introspect {
		a.Bearer = tok.AccessToken
		a.Introspect = introspectRequest(sc.token, tok.AccessToken)
		if err := introspectOnce(ctx, api, a.Introspect); err != nil {
			return err
		}
	}
	w.Auth = a
	return nil
}

// introspectRequest asks, as the client of t, about token: HTTP Basic and a form body, as
// a resource server does.
func introspectRequest(t TokenRequest, token string) Request {
	r := TokenRequest{ClientID: t.ClientID, Secret: t.Secret, Form: url.Values{"token": {token}, "token_type_hint": {"access_token"}}}.Request()
	r.Path, r.Route = introspectPath, introspectPath
	return r
}

// introspectOnce sends r and fails unless the server says the token is active: an
// inactive answer is fast for the wrong reason.
func introspectOnce(ctx context.Context, api *API, r Request) error {
	st, body, err := api.Send(ctx, r)
	if err != nil {
		return err
	}
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(body, &out); err != nil || !out.Active {
		return &StatusError{Method: r.Method, Route: r.Route, Status: st, Body: "the token is not active: " + snippet(body)}
	}
	return nil
}

// firstToken asks for a token, and when the server refuses the credentials writes the
// refused resource again with its secret and asks once more: the secret is what ensure
// could not compare.
func (a *AuthSetup) firstToken(ctx context.Context, api *API) (*TokenResponse, error) {
	for attempt := 0; ; attempt++ {
		tok, err := api.Token(ctx, a.Token)
		if err == nil {
			a.Issued.Add(1)
			return tok, nil
		}
		var se *StatusError
		if attempt > 0 || !errors.As(err, &se) {
			return nil, fmt.Errorf("a token for %s: %w", a.sc.token.ClientID, err)
		}
		var repair benchResource
		switch {
		case strings.Contains(se.Body, "invalid_client"):
			repair = findBenchResource("Client", a.sc.token.ClientID)
		case strings.Contains(se.Body, "invalid_grant") && a.sc.token.Form.Get("grant_type") == "password":
			repair = findBenchResource("User", a.sc.token.Form.Get("username"))
		default:
			return nil, fmt.Errorf("a token for %s: %w", a.sc.token.ClientID, err)
		}
		if _, err := ensure(ctx, api, repair, true); err != nil {
			return nil, err
		}
		a.Written = append(a.Written, repair.Type+"/"+repair.ID+" (secret)")
	}
}

// bearerRead is a read of path as the token's client.
func (a *AuthSetup) bearerRead(path string) Request {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+a.Bearer)
	h.Set("Accept", "application/fhir+json")
	return Request{Method: http.MethodGet, Path: path, Route: "/Patient/{id}", Header: h}
}

// authHTTPOp is the request of an OAuth scenario: a token request, counted when it
// issued a token, or a read with the setup's token.
func (w *Workload) authHTTPOp(api *API) Op {
	a := w.Auth
	if a == nil {
		return func(context.Context, *mrand.Rand) error {
			return fmt.Errorf("scenario %s was not set up (SetupAuth)", w.Scenario)
		}
	}
	if a.sc.introspect {
		return func(ctx context.Context, _ *mrand.Rand) error { return introspectOnce(ctx, api, a.Introspect) }
	}
	if a.sc.code {
		return a.exchangeOp(api)
	}
	if a.sc.bearer {
		return func(ctx context.Context, rng *mrand.Rand) error {
			_, _, err := api.Send(ctx, a.bearerRead("/Patient/"+w.draw(rng).readID))
			return err
		}
	}
	return func(ctx context.Context, rng *mrand.Rand) error {
		if _, err := api.Token(ctx, a.Token); err != nil {
			return err
		}
		a.Issued.Add(1)
		return nil
	}
}

// Ceilings of the token scenarios. Issuing an opaque token is, at its core, one INSERT
// of the Session that records it; a JWT adds an RS256 signature, which costs more than
// the INSERT, so its ceiling is the signing; in the password grant bcrypt dwarfs both.
// The INSERT goes to a scratch table, never to fhirbox's; on SQLite it waits for the
// file's write lock like every other write (see CeilingOp).
const (
	ceilingSessionTable = "fhirbench_ceiling_session"
	sessionSQL          = `INSERT INTO ` + ceilingSessionTable + ` (id, content) VALUES ($1, $2)`

	newestSessionSQL = `SELECT id FROM resource WHERE resource_type = 'Session' AND NOT deleted ORDER BY last_updated DESC LIMIT 1`
	sessionReadSQL   = `SELECT content FROM resource WHERE resource_type = 'Session' AND id = $1`
)

// sessionDoc is a Session as the server records an opaque client_credentials token.
type sessionDoc struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Type         string      `json:"type"`
	Client       resourceRef `json:"client"`
	Audience     string      `json:"audience"`
	JTI          string      `json:"jti"`
	Start        string      `json:"start"`
	// TokenFormat is not needed to authenticate the token, but the server records it.
	TokenFormat     string `json:"token_format"`
	Exp             int64  `json:"exp"`
	AccessTokenHash string `json:"access_token_hash"`
}

type resourceRef struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
}

// SessionJSON returns the id and document of the Session the server records for an
// opaque client_credentials token of client issued at now: what the
// token-client-credentials ceiling inserts. The id doubles as the jti, as the server's
// does, and the token hash is random hex of a SHA-256's length: hashing a token would be
// CPU work, not the database work the ceiling measures.
func SessionJSON(rng *mrand.Rand, client string, now time.Time) (string, []byte, error) {
	now = now.UTC().Truncate(time.Second)
	id := randomUUID(rng)
	var h [32]byte
	for i := 0; i < len(h); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			h[i+j] = byte(v >> (8 * j))
		}
	}
	b, err := json.Marshal(sessionDoc{
		ResourceType:    "Session",
		ID:              id,
		Type:            "client_credentials",
		Client:          resourceRef{"Client", client},
		Audience:        client,
		JTI:             id,
		Start:           now.Format("2006-01-02T15:04:05.000Z07:00"),
		TokenFormat:     "opaque",
		Exp:             now.Unix() + tokenTTL,
		AccessTokenHash: hex.EncodeToString(h[:]),
	})
	return id, b, err
}

// ceilingDescriptions are printed before the ceiling runs: for these scenarios the
// ceiling is not the obvious "the same request in SQL".
var ceilingDescriptions = map[string]string{
	"token-client-credentials": "one INSERT of a Session document per token, into a scratch table",
	"token-authorization-code": "one INSERT of a Session document per token, into a scratch table (as token-client-credentials: the code's own row is read and spent besides)",
	"token-jwt":                "RS256 signing (RSA-2048) of the access token's claims, in-process",
	"token-password":           fmt.Sprintf("bcrypt.CompareHashAndPassword at cost %d, in-process", bcrypt.DefaultCost),
	"read-bearer-opaque":       "the read scenario's SQL",
	"read-bearer-jwt":          "the read scenario's SQL",
	"introspect":               "a point read of a Session row by id: what finding the token's Session costs the database at least",
	"search-include":           "search-observation-patient's SQL with the ids of the page, then the server's include statement on them",
}

// jwtSigner signs access token claims as the server does: RS256 with an RSA-2048 key
// whose kid is in the header.
type jwtSigner struct {
	key    *rsa.PrivateKey
	kid    string
	issuer string
}

func newJWTSigner(issuer string) (*jwtSigner, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &jwtSigner{key: key, kid: "fhirbench-ceiling-key", issuer: issuer}, nil
}

// sign returns the JWT of a client_credentials access token of client issued at now.
func (s *jwtSigner) sign(rng *mrand.Rand, client string, now time.Time) (string, error) {
	now = now.UTC().Truncate(time.Second)
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": s.issuer, "sub": client, "aud": client, "iat": now.Unix(), "exp": now.Unix() + tokenTTL,
		"jti": randomUUID(rng), "client_id": client,
	})
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// passwordCeilingOp checks the bench user's password against a hash of the server's
// cost, as the password grant does once per token.
func passwordCeilingOp() (Op, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(benchUserPassword), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	pw := []byte(benchUserPassword)
	return func(context.Context, *mrand.Rand) error {
		return bcrypt.CompareHashAndPassword(hash, pw)
	}, nil
}

// authCeilingOp returns the ceiling of a token scenario and its cleanup; db is only used
// by token-client-credentials.
func (w *Workload) authCeilingOp(ctx context.Context, db *DB) (Op, func(), error) {
	nop := func() {}
	switch w.Scenario {
	case "token-client-credentials", "token-authorization-code":
		if db == nil {
			return nil, nil, fmt.Errorf("the ceiling of %s needs -db", w.Scenario)
		}
		drop, err := scratch(ctx, db, ceilingSessionTable, fmt.Sprintf(db.docTable, ceilingSessionTable))
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, rng *mrand.Rand) error {
			id, doc, err := SessionJSON(rng, ccClientID, time.Now())
			if err != nil {
				return err
			}
			_, err = db.Exec(ctx, sessionSQL, id, db.doc(doc))
			return err
		}, drop, nil
	case "token-jwt":
		s, err := newJWTSigner(w.Issuer)
		if err != nil {
			return nil, nil, err
		}
		return func(_ context.Context, rng *mrand.Rand) error {
			_, err := s.sign(rng, jwtClientID, time.Now())
			return err
		}, nop, nil
	case "token-password":
		op, err := passwordCeilingOp()
		return op, nop, err
	case "introspect":
		if db == nil {
			return nil, nil, fmt.Errorf("the ceiling of %s needs -db", w.Scenario)
		}
		// The newest Session is the one setup's token opened.
		var id string
		if err := db.QueryRow(ctx, newestSessionSQL).Scan(&id); err != nil {
			return nil, nil, fmt.Errorf("the ceiling of %s: finding a Session: %w", w.Scenario, err)
		}
		return func(ctx context.Context, _ *mrand.Rand) error {
			var content []byte
			return db.QueryRow(ctx, sessionReadSQL, id).Scan(&content)
		}, nop, nil
	}
	return nil, nil, fmt.Errorf("scenario %s has no token ceiling", w.Scenario)
}
