package auth

import (
	"encoding/base64"
	"net/url"
	"strings"
)

// ParseBasic decodes "base64(id:secret)". Per RFC 6749 §2.3.1 id and secret are
// form-encoded before base64; clients that skip that step send them raw, so a value
// that does not URL-decode cleanly is taken as it is (conformance C3).
func ParseBasic(cred string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if d, err := url.QueryUnescape(id); err == nil {
		id = d
	}
	if d, err := url.QueryUnescape(secret); err == nil {
		secret = d
	}
	return id, secret, true
}
