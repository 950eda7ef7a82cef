package auth

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// SignIn checks a user's name and password under the guessing limits of limiter, for
// the password grant and the browser's login form alike, so that both draw on one
// budget per user and per address (conformance T9, A7). It returns the User without its
// password, or an *OAuthError: invalid_grant "wrong username or password" for every kind
// of failure (unknown, inactive or ambiguous user, wrong password: conformance T6), or a
// 429 while the user or the address waits.
func SignIn(ctx context.Context, dir *Directory, limiter *Limiter, username, password, addr string) (map[string]any, error) {
	// The address is checked first, so that an address that waits costs no look-up.
	addrKey := "addr:" + addr
	if wait, ok := limiter.Check(addrKey); !ok {
		return nil, tooManySignIns(wait)
	}
	login, err := dir.ResolveLogin(ctx, username)
	if err != nil {
		return nil, err
	}
	// Checking and counting are one step: the attempt counts as a failure from here until
	// the password is found right, so a burst of parallel guesses gets the free allowance
	// and no more.
	att, wait, ok := limiter.Begin(login.Key, addrKey)
	if !ok {
		return nil, tooManySignIns(wait)
	}
	defer att.Cancel()
	user := dir.CheckPassword(login, password)
	if user == nil {
		att.Fail()
		return nil, oauthErr(ErrCodeInvalidGrant, "wrong username or password")
	}
	att.Succeed(login.Key)
	return user, nil
}

// tooManySignIns is the answer while the user or the address waits: the same for every
// user name, known or not.
func tooManySignIns(wait time.Duration) *OAuthError {
	secs := (&LimitedError{Wait: wait}).Seconds()
	return &OAuthError{Code: ErrCodeInvalidRequest, Status: http.StatusTooManyRequests, RetryAfter: secs,
		Description: fmt.Sprintf("too many failed sign-ins; try again in %d seconds", secs)}
}
