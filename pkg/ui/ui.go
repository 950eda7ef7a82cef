// Package ui renders fhirbox's sign-in pages — login, consent, patient picker, error,
// signed-in and signed-out — with html/template from files embedded in the binary, plus their
// stylesheet. The pages are plain, accessible HTML forms that need no JavaScript;
// what they do lives in pkg/server/signin.go and pkg/auth. The Auth Sandbox
// (sandbox.go) is the one page that runs a script of its own, static/sandbox.js.
package ui

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Page is what every page shows around its own content.
type Page struct {
	// Base is the path prefix of the server's base URL ("" at the root), for links and
	// form actions.
	Base string
	// Title is the page's heading and title.
	Title string
}

// Login is the sign-in form.
type Login struct {
	Page
	// Client names the application the user signs in to, when there is one.
	Client string
	// CSRF is the form's token; Request the authorization request's query, carried
	// through the form so the flow resumes after sign-in.
	CSRF, Request string
	// Username is shown again after a failed attempt; Error says what failed.
	Username, Error string
	// Next is the page of fhirbox's own to return to after sign-in ("" for none).
	Next string
}

// Consent asks the signed-in user to let a client act for them.
type Consent struct {
	Page
	Client, User  string
	Scopes        []string
	CSRF, Request string
}

// Error is a problem shown to the user instead of being sent to an application.
type Error struct {
	Page
	Message string
}

// Picker asks the signed-in user which patient a SMART app launched standalone with
// launch/patient opens on. Its form is posted to /auth/consent with the patient chosen.
type Picker struct {
	Page
	Client, User string
	Patients     []PatientChoice
	CSRF         string
	Request      string
	// Error says why the last choice was refused.
	Error string
}

// PatientChoice is one patient on the picker: its id, and its first name and birth
// date when the Patient has them.
type PatientChoice struct {
	ID, Name, BirthDate string
}

// SignedIn tells who is signed in, with a sign-out button.
type SignedIn struct {
	Page
	User, CSRF string
}

// SignedOut confirms the sign-out.
type SignedOut struct{ Page }

// Render writes the page named name (login, consent, picker, error, signed-in, signed-out)
// with data. It renders into memory first, so a template failure never leaves half a
// page sent.
func Render(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name+".html", data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Static serves the embedded stylesheets and the sandbox's script, under /ui/static/.
func Static() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix("/ui/static/", http.FileServer(http.FS(sub)))
}
