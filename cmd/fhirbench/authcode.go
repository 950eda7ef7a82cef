package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The authorization-code scenario measures the code exchange (RFC 6749 §4.1.3 with a
// PKCE verifier): POST /auth/token with grant_type=authorization_code, as a confidential
// client. Codes are one-time, so setup makes the run's codes beforehand the way a browser
// does — one sign-in through the login form, then one GET /auth/authorize per code with
// the browser-session cookie (the bench client is first-party: no consent page) — and
// the run only exchanges them.

const (
	acClientID = "fhirbench-ac"
	acSecret   = "fhirbench-ac-secret"
	// acRedirect is never fetched: the bench reads the code off the redirect.
	acRedirect = "https://fhirbench.invalid/cb"
	// acVerifier is the PKCE verifier of every code (43 characters, RFC 7636 §4.1).
	acVerifier = "fhirbench-pkce-verifier-0123456789abcdefghij"
	// CodesPerSecond is how many codes setup makes per second of the run (warm-up
	// included): about twice what a two-core machine exchanges.
	CodesPerSecond = 1500
)

// acClient is the bench's authorization-code client.
func acClient() benchResource {
	return benchResource{Type: "Client", ID: acClientID, Secret: "secret", Doc: map[string]any{
		"resourceType": "Client", "secret": acSecret, "first_party": true,
		"grant_types": []any{"authorization_code"},
		"auth": map[string]any{"authorization_code": map[string]any{
			"redirect_uri": acRedirect, "token_format": "opaque", "access_token_expiration": tokenTTL,
		}},
	}}
}

// codeSource makes authorization codes for the bench user as a browser would.
type codeSource struct {
	base   string
	client *http.Client
	query  string // the authorize request's query
	local  string // the address requests leave from ("" for any)
}

var loginField = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// newCodeSource signs the bench user in through the login form.
func newCodeSource(ctx context.Context, base string) (*codeSource, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	host := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	cs := &codeSource{base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host != host {
				return http.ErrUseLastResponse // the redirect to the client: read its code
			}
			return nil
		}}}
	sum := sha256.Sum256([]byte(acVerifier))
	cs.query = url.Values{"response_type": {"code"}, "client_id": {acClientID}, "redirect_uri": {acRedirect},
		"state": {"fhirbench"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}.Encode()
	resp, body, err := cs.do(ctx, http.MethodGet, "/auth/authorize?"+cs.query, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/auth/login"`) {
		return nil, fmt.Errorf("GET /auth/authorize: %d, no login form: %s", resp.StatusCode, snippet([]byte(body)))
	}
	form := url.Values{}
	for _, m := range loginField.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	form.Set("username", benchUserID)
	form.Set("password", benchUserPassword)
	resp, body, err = cs.do(ctx, http.MethodPost, "/auth/login", form)
	if err != nil {
		return nil, err
	}
	if _, err := codeOf(resp); err != nil {
		return nil, fmt.Errorf("signing in %s: %v: %s", benchUserID, err, snippet([]byte(body)))
	}
	return cs, nil
}

func (cs *codeSource) do(ctx context.Context, method, path string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequestWithContext(ctx, method, cs.base+path, body)
	if err != nil {
		return nil, "", err
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := cs.client.Do(r)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

// codeOf reads the code off the redirect to the client.
func codeOf(resp *http.Response) (string, error) {
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("no code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code"), nil
}

// next makes one code.
func (cs *codeSource) next(ctx context.Context) (string, error) {
	resp, _, err := cs.do(ctx, http.MethodGet, "/auth/authorize?"+cs.query, nil)
	if err != nil {
		return "", err
	}
	return codeOf(resp)
}

// codesPerAddress is how many codes one browser address asks for: the server lets an
// address have 30 before it makes it wait (pkg/auth/codes.go), as a sign-in page would
// see from one person.
const codesPerAddress = 25

// from returns a copy of cs whose requests leave from the loopback address 127.1.x.y
// numbered k: to the server, another browser. Linux routes all of 127/8 to the
// loopback interface, so a bench on one machine can be many addresses.
func (cs *codeSource) from(k int) *codeSource {
	local := &net.TCPAddr{IP: net.IPv4(127, byte(1+k/62500), byte(k/250%250), byte(k%250+1))}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}).DialContext
	c := *cs
	cl := *cs.client
	cl.Transport = tr
	c.client = &cl
	c.local = local.IP.String()
	return &c
}

// makeCodes makes n codes as browsers at many addresses would, four at a time: a
// browser (address) per codesPerAddress codes.
func makeCodes(ctx context.Context, cs *codeSource, n int) (chan string, error) {
	codes := make(chan string, n)
	addrs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	var claimed atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range addrs {
				mu.Lock()
				stop := first != nil
				mu.Unlock()
				if stop {
					continue // drain: the sender stops at the next address
				}
				b := cs.from(k)
				// A slot is taken before its code is asked for: the workers together
				// make exactly n, and never block on a full channel.
				for i := 0; i < codesPerAddress && claimed.Add(1) <= int64(n); i++ {
					c, err := b.next(ctx)
					if err != nil {
						mu.Lock()
						if first == nil {
							first = fmt.Errorf("from %s: %w", b.local, err)
						}
						mu.Unlock()
						break
					}
					codes <- c
				}
				b.client.CloseIdleConnections()
			}
		}()
	}
	// Addresses are numbered from a point of the run's own, so that a run right after
	// another does not meet the waits its addresses earned (forgotten after 10 minutes).
	base := int(time.Now().Unix()/600%20) * 50000
	for k := 0; k*codesPerAddress < n; k++ {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop {
			break
		}
		addrs <- base + k
	}
	close(addrs)
	wg.Wait()
	return codes, first
}

// exchangeRequest is the token request for code.
func exchangeRequest(code string) Request {
	return TokenRequest{ClientID: acClientID, Secret: acSecret, Form: url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {acRedirect}, "code_verifier": {acVerifier},
	}}.Request()
}

// setupCodes makes the run's codes (n of them) and checks that one is exchanged.
func (a *AuthSetup) setupCodes(ctx context.Context, api *API, n int) error {
	cs, err := newCodeSource(ctx, api.base)
	if err != nil {
		return err
	}
	start := time.Now()
	if a.codes, err = makeCodes(ctx, cs, n+1); err != nil {
		return fmt.Errorf("making codes: %w", err)
	}
	a.CodesMade = time.Since(start)
	// Making the codes may have outlasted the server's idle timeout on the connections
	// setup opened: a first exchange that meets a closed one is sent once more.
	code := <-a.codes
	tok, err := api.Token(ctx, exchangeRequest(code))
	if err != nil && strings.Contains(err.Error(), "EOF") {
		tok, err = api.Token(ctx, exchangeRequest(<-a.codes))
	}
	if err != nil {
		return fmt.Errorf("exchanging a code: %w", err)
	}
	a.Issued.Add(1)
	a.ExpiresIn = tok.ExpiresIn
	return nil
}

// exchangeOp exchanges the next code; an empty pool is an error of the run, counted
// as such, not a pause.
func (a *AuthSetup) exchangeOp(api *API) Op {
	return func(ctx context.Context, _ *mrand.Rand) error {
		var code string
		select {
		case code = <-a.codes:
		default:
			return fmt.Errorf("the run outlasted its %d codes: lengthen CodesPerSecond", cap(a.codes))
		}
		if _, err := api.Token(ctx, exchangeRequest(code)); err != nil {
			return err
		}
		a.Issued.Add(1)
		return nil
	}
}
