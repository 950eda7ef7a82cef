package accesspolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// placeholder is {{.path.to.value}} (the leading dot is optional, as in Aidbox's
// {{jwt.patient_id}}).
var placeholder = regexp.MustCompile(`\{\{\s*\.?([^{}\s]+?)\s*\}\}`)

// sqlRule is the sql engine: a query returning one boolean, whose placeholders are bound
// parameters taken from the request object, never text spliced into the query.
type sqlRule struct {
	run   SQLRunner
	query string // with $1…$n in place of the placeholders
	paths [][]string
}

func compileSQL(ctx context.Context, run SQLRunner, raw any, field string) (rule, error) {
	var q string
	switch v := raw.(type) {
	case string:
		q = v
	case map[string]any:
		q, _ = v["query"].(string)
		field += ".query"
	}
	if strings.TrimSpace(q) == "" {
		return nil, invalid(field, "the sql engine needs sql.query: a query returning one boolean")
	}
	r := &sqlRule{run: run}
	var bad error
	r.query = placeholder.ReplaceAllStringFunc(q, func(m string) string {
		path := placeholder.FindStringSubmatch(m)[1]
		segs := strings.Split(path, ".")
		for _, s := range segs {
			if s == "" && bad == nil {
				bad = fmt.Errorf("placeholder %s has an empty path segment", m)
			}
		}
		r.paths = append(r.paths, segs)
		return "($" + strconv.Itoa(len(r.paths)) + "::text)"
	})
	if bad != nil {
		return nil, invalid(field, "%v", bad)
	}
	if quotedPlaceholder(q) {
		return nil, invalid(field, "a placeholder must not stand inside quotes: write {{.path}}, not '{{.path}}' (it is bound as a text parameter)")
	}
	if strings.Contains(r.query, "{{") {
		return nil, invalid(field, "malformed placeholder: write {{.path.in.request}}")
	}
	if err := run.CheckPolicySQL(ctx, r.query, len(r.paths)); err != nil {
		return nil, invalid(field, "%v", err)
	}
	return r, nil
}

// quotedPlaceholder reports whether a placeholder stands inside a '…' literal.
func quotedPlaceholder(q string) bool {
	in := false
	for i := 0; i < len(q); i++ {
		switch {
		case q[i] == '\'':
			in = !in
		case in && strings.HasPrefix(q[i:], "{{"):
			return true
		}
	}
	return false
}

func (r *sqlRule) eval(ctx context.Context, req *Request, _ bool) (bool, string, error) {
	args := make([]any, len(r.paths))
	for i, p := range r.paths {
		args[i] = sqlArg(lookup(req.Object(), p))
	}
	ok, err := r.run.EvalPolicySQL(ctx, r.query, args)
	if err != nil {
		return false, "", sqlFailure(err)
	}
	if !ok {
		return false, "the query returned false", nil
	}
	return true, "", nil
}

// sqlArg turns a request value into a text parameter: PostgreSQL casts text to the type
// the query needs, and absent values are NULL.
func sqlArg(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return string(b)
}

// lookup follows path through maps (and lists, by index) of the request object.
func lookup(v any, path []string) any {
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// EvalError is a policy that failed to evaluate. Its Error is what a trace may show: it
// never carries the database's own text, which can quote the values a query touched (a
// failed cast prints the value it could not cast). Detail, for the server log only, does.
type EvalError struct {
	public string
	err    error
}

func (e *EvalError) Error() string { return e.public }

// Unwrap returns the underlying error, with the database's text.
func (e *EvalError) Unwrap() error { return e.err }

// Detail is the full error, for the server log.
func (e *EvalError) Detail() string { return e.err.Error() }

// sqlFailure turns a failed policy query into an EvalError that names only the SQLSTATE
// (a class of failure, no data) or the timeout.
func sqlFailure(err error) error {
	var state interface{ SQLState() string }
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return &EvalError{public: "the sql query did not finish before the request's deadline", err: err}
	case errors.As(err, &state) && state.SQLState() == "57014":
		return &EvalError{public: "the sql query was cancelled by its statement timeout", err: err}
	case errors.As(err, &state):
		return &EvalError{public: "the sql query failed with SQLSTATE " + state.SQLState() + "; the database's message is in the server log", err: err}
	}
	return &EvalError{public: "the sql query failed; the error is in the server log", err: err}
}
