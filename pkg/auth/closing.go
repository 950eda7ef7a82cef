package auth

import (
	"context"
	"net/url"

	"github.com/fhirbox/fhirbox/resources"
)

// Everything that ends Sessions goes through Close: sign-out (CloseByToken), a refresh
// token used twice (RefreshGrant), and the writes that take a Session's ground away
// (a User deleted, deactivated or given a new password; a Client deleted).

// Close ends a Session: its tokens stop working at once, on every instance. Closing a
// Session that is already closed, or never was, is no error.
func (s *Sessions) Close(ctx context.Context, id string) error {
	_, err := s.svc.Delete(ctx, SessionType, id)
	if resources.ErrorCode(err) == resources.CodeNotFound {
		return nil
	}
	return err
}

// CloseByToken ends the Session that token belongs to, for DELETE /Session: a live
// access token, or one that no longer works but still names its Session (an expired
// access token, a refresh token), since a client signing out must be able to end it
// (RFC 7009 lets a client revoke either). A token that names no Session is no error.
func (s *Sessions) CloseByToken(ctx context.Context, token string) error {
	sid, _, err := s.tokenSession(ctx, token)
	if err != nil || sid == "" {
		return err
	}
	return s.Close(ctx, sid)
}

// RevokeFor ends the Session of token for POST /auth/revoke, when client is the client
// the token was issued to; a token of another client, or one that names no Session, is
// left alone and is no error (RFC 7009 §2.1–2.2, conformance R5).
func (s *Sessions) RevokeFor(ctx context.Context, client, token string) error {
	sid, owner, err := s.tokenSession(ctx, token)
	if err != nil || sid == "" || owner != client {
		return err
	}
	return s.Close(ctx, sid)
}

// tokenSession finds the Session token belongs to, as CloseByToken describes, and the
// client it was issued to; "" when none.
func (s *Sessions) tokenSession(ctx context.Context, token string) (sid, client string, err error) {
	id, err := s.Authenticate(ctx, token)
	switch {
	case err == ErrInvalidBearer:
		return s.sessionOf(ctx, token)
	case err != nil:
		return "", "", err
	}
	return id.SessionID, id.ClientID, nil
}

// sessionOf finds the live Session whose current access token (expired or not) or
// refresh token is token, and its client; "" when none. A JWT access token is found by
// Authenticate, and so only while it verifies.
func (s *Sessions) sessionOf(ctx context.Context, token string) (sid, client string, err error) {
	if token == "" || len(token) > 8192 {
		return "", "", nil
	}
	h := hashToken(token)
	for _, param := range []string{"access-token", "refresh-token"} {
		r, err := s.svc.FindByToken(ctx, SessionType, param, h)
		if err != nil {
			return "", "", err
		}
		if r != nil {
			doc, err := decode(r.Content)
			if err != nil {
				return "", "", resources.Internal(err)
			}
			return r.ID, refID(doc["client"]), nil
		}
	}
	return "", "", nil
}

// closeSessionsOfChangedUser closes every Session of a User that was deleted,
// deactivated or given a new password: their tokens stop working at once.
func (s *Sessions) closeSessionsOfChangedUser(ctx context.Context, prev, next *resources.Resource) {
	if prev == nil || prev.Deleted {
		return
	}
	if !next.Deleted {
		old, err1 := decode(prev.Content)
		cur, err2 := decode(next.Content)
		if err1 == nil && err2 == nil && !inactive(cur) && old["password"] == cur["password"] {
			return
		}
	}
	s.closeAll(ctx, "user", "User/"+next.ID)
}

// closeSessionsOfDeletedClient closes the Sessions of a Client that was deleted, so a
// Client created again with the same id does not bring its old tokens back.
func (s *Sessions) closeSessionsOfDeletedClient(ctx context.Context, prev, next *resources.Resource) {
	if next.Deleted && prev != nil && !prev.Deleted {
		s.closeAll(ctx, "client", "Client/"+next.ID)
	}
}

// closeAll closes every Session whose reference parameter param names ref.
func (s *Sessions) closeAll(ctx context.Context, param, ref string) {
	// Detached: the sessions must close even if the request that caused it ends.
	ctx = context.WithoutCancel(ctx)
	for {
		res, _, err := s.svc.Search(ctx, SessionType, url.Values{param: {ref}, "_count": {"100"}, "_total": {"none"}}, false)
		if err != nil {
			s.log.ErrorContext(ctx, "closing sessions failed", "of", ref, "err", err)
			return
		}
		if len(res.Entries) == 0 {
			return
		}
		for _, r := range res.Entries {
			if err := s.Close(ctx, r.ID); err != nil {
				s.log.ErrorContext(ctx, "closing a session failed", "session", r.ID, "err", err)
				return
			}
		}
	}
}
