// Package auth authenticates callers of fhirbox: HTTP Basic for clients today, bearer
// tokens with the OAuth module. It produces an Identity that the policy engine decides on.
package auth

import (
	"context"
	"strconv"
)

// Identity is who is behind a request. The zero value is the anonymous caller.
type Identity struct {
	// ClientID is the authenticated Client, empty when anonymous.
	ClientID string
	// Admin is true for the root client configured by FHIRBOX_ADMIN_CLIENT_ID.
	Admin bool
	// Client is the Client resource (secret removed), when one authenticated.
	Client map[string]any
}

// Anonymous reports whether nobody authenticated.
func (id *Identity) Anonymous() bool { return id == nil || id.ClientID == "" }

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

// String names the caller for messages: client "x", or anonymous.
func (id *Identity) String() string {
	if id.Anonymous() {
		return "anonymous"
	}
	return "client " + strconv.Quote(id.ClientID)
}
