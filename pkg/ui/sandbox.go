package ui

// Sandbox is the Auth Sandbox page (/ui/sandbox). Its script (static/sandbox.js) runs
// the OAuth flows from the browser; what it needs of the server comes as data-
// attributes, since the pages' Content-Security-Policy allows no inline script.
type Sandbox struct {
	Page
	// User names the signed-in user.
	User string
	// CSRF is the token the script sends with its writes to the sandbox's API.
	CSRF string
	// Origin is the server's base URL, for absolute URLs in the curl commands;
	// RedirectURI the sandbox's callback, which its authorization requests name.
	Origin, RedirectURI string
}
