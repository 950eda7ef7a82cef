package auth

import (
	"context"
	"maps"
	"net/url"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/resources"
)

// Directory reads Users and Clients for authentication.
type Directory struct {
	svc *resources.Service

	// OnPasswordCheck, when set, is called before each bcrypt comparison of a password,
	// the dummy one for an unknown user included: tests count the checks a burst of
	// guesses costs. Set it before the Directory is used.
	OnPasswordCheck func()
}

// NewDirectory returns a Directory over svc.
func NewDirectory(svc *resources.Service) *Directory { return &Directory{svc: svc} }

var _ Loader = (*Directory)(nil)

// User returns the live, active User id without its password; nil when there is none.
func (d *Directory) User(ctx context.Context, id string) (map[string]any, error) {
	doc, err := d.read(ctx, "User", id)
	if doc == nil || err != nil || inactive(doc) {
		return nil, err
	}
	delete(doc, "password")
	return doc, nil
}

// Client returns the live Client id without its secret; nil when there is none.
func (d *Directory) Client(ctx context.Context, id string) (map[string]any, error) {
	doc, err := d.read(ctx, "Client", id)
	if doc == nil || err != nil {
		return nil, err
	}
	delete(doc, "secret")
	return doc, nil
}

func (d *Directory) read(ctx context.Context, typ, id string) (map[string]any, error) {
	r, err := d.svc.Current(ctx, typ, id)
	if r == nil || err != nil {
		return nil, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return nil, resources.Internal(err)
	}
	return doc, nil
}

func inactive(user map[string]any) bool {
	v, _ := user["inactive"].(bool)
	return v
}

// dummyPasswordHash is checked when no user matches, so that an unknown user costs the
// same time as a wrong password.
var dummyPasswordHash, _ = bcrypt.GenerateFromPassword([]byte("fhirbox-no-such-user"), bcrypt.DefaultCost)

// Login is a sign-in name resolved to the User it names, if any.
type Login struct {
	// Key is the limiter key its failures count under: the User's id when the name
	// resolves to one, so that a User's id, email and userName share one budget; else
	// the name as typed, trimmed and in lower case, so that names of nobody are limited
	// too and answer as a wrong password does.
	Key  string
	user map[string]any
}

// ResolveLogin finds the User that username names (its id, email or userName); an
// unknown, ambiguous or over-long name resolves to nobody, without error.
func (d *Directory) ResolveLogin(ctx context.Context, username string) (*Login, error) {
	user, err := d.findUser(ctx, username)
	if err != nil {
		return nil, err
	}
	if id, _ := user["id"].(string); id != "" {
		return &Login{Key: "user:" + id, user: user}, nil
	}
	return &Login{Key: "login:" + strings.ToLower(strings.TrimSpace(username))}, nil
}

// CheckPassword checks password for the User of login. It returns the User without its
// password, or nil for every kind of failure alike: nobody, an inactive user, a user
// without a password, a wrong password (conformance T6). bcrypt is paid in every case, so
// that each takes the same time.
func (d *Directory) CheckPassword(login *Login, password string) map[string]any {
	if d.OnPasswordCheck != nil {
		d.OnPasswordCheck()
	}
	user := login.user
	hash, _ := user["password"].(string)
	if user == nil || hash == "" || inactive(user) {
		_ = bcrypt.CompareHashAndPassword(dummyPasswordHash, []byte(password))
		return nil
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return nil
	}
	out := maps.Clone(user)
	delete(out, "password")
	return out
}

// findUser resolves a username: an id first, then an exact email, then an exact
// userName; a name that fits several Users fits none.
func (d *Directory) findUser(ctx context.Context, username string) (map[string]any, error) {
	if username == "" || len(username) > 256 {
		return nil, nil
	}
	if doc, err := d.read(ctx, "User", username); err != nil || doc != nil {
		return doc, err
	}
	for _, param := range []string{"email:exact", "userName:exact"} {
		res, _, err := d.svc.Search(ctx, "User", url.Values{param: {username}, "_count": {"2"}, "_total": {"none"}}, false)
		if err != nil {
			if resources.ErrorCode(err) == resources.CodeInvalid {
				continue // a value the search cannot take is no user
			}
			return nil, err
		}
		switch len(res.Entries) {
		case 0:
			continue
		case 1:
			return decode(res.Entries[0].Content)
		}
		return nil, nil
	}
	return nil, nil
}

// serverWritten refuses writes of typ through the API: Sessions and codes are made by
// the token endpoint, and a Session edited by hand would change what a live token
// acts for. They can still be read, searched and deleted.
func serverWritten(typ string) resources.Validator {
	return func(ctx context.Context, _ map[string]any) error {
		if resources.IsTrusted(ctx) {
			return nil
		}
		return &resources.Error{Code: resources.CodeUnprocessable, Expression: "resourceType",
			Message: typ + " resources are written by the token endpoint; they can be read, searched and deleted"}
	}
}

// ClientConfig returns the OAuth settings of the live Client id, HasSecret included;
// nil when there is no such Client, and a CodeUnprocessable error when its stored
// settings are invalid.
func (d *Directory) ClientConfig(ctx context.Context, id string) (*ClientConfig, error) {
	doc, err := d.read(ctx, "Client", id)
	if doc == nil || err != nil {
		return nil, err
	}
	return ParseClientConfig(doc)
}
