// Package auth authenticates callers of fhirbox: HTTP Basic for clients, and the OAuth
// 2.0 module (token endpoint, sessions, JWT and opaque bearer tokens). It produces an
// Identity that the policy engine decides on.
package auth

import (
	"context"
	"strconv"

	"github.com/golang-jwt/jwt/v5"
)

// Identity is who is behind a request. The zero value is the anonymous caller. It is
// handed as it is to the policy engine (accesspolicy.Info.Caller), which turns it into
// the user, client, jwt and session of the request object only when a policy reads them.
type Identity struct {
	// ClientID is the authenticated Client, empty when anonymous.
	ClientID string
	// Client is the Client resource (secret removed), when one authenticated.
	Client map[string]any
	// UserID and User (password removed) are set for tokens that act for a user.
	UserID string
	User   map[string]any
	// SessionID and Session (token hashes removed) are set for bearer tokens.
	SessionID string
	Session   map[string]any
	// JWT holds the claims of a JWT bearer token.
	JWT jwt.MapClaims
}

// Anonymous reports whether nobody authenticated.
func (id *Identity) Anonymous() bool { return id == nil || (id.ClientID == "" && id.UserID == "") }

// String names the caller for messages: user "u", client "x", or anonymous.
func (id *Identity) String() string {
	switch {
	case id.Anonymous():
		return "anonymous"
	case id.UserID != "":
		return "user " + strconv.Quote(id.UserID)
	}
	return "client " + strconv.Quote(id.ClientID)
}

type identityKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the request's identity; anonymous when none was set.
func FromContext(ctx context.Context) *Identity {
	if id, ok := ctx.Value(identityKey{}).(*Identity); ok && id != nil {
		return id
	}
	return &Identity{}
}
