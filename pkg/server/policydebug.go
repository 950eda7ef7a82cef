package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/resources"
)

// This file serves POST /auth/test-policy, the policy debugger: it decides a request
// object given in the body, against one policy or all, and shows the trace. Whoever
// may call it may also ask for the trace of their own requests (see mayDebug).

// testPolicyResult is the answer of POST /auth/test-policy.
type testPolicyResult struct {
	Result bool                      `json:"result"`
	Policy string                    `json:"policy,omitempty"`
	Trace  []accesspolicy.TraceEntry `json:"trace"`
}

// handleTestPolicy evaluates a request object against a policy given inline (compiled,
// never stored), a stored policy named by id, or, without policy, every policy in force,
// and returns the decision with its trace.
func (s *Server) handleTestPolicy(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var req *accesspolicy.Request
	switch r := accesspolicy.Plain(body["request"]).(type) {
	case map[string]any:
		req = accesspolicy.NewRequest(r)
	case nil:
		return &resources.Error{Code: resources.CodeInvalid, Message: "request is required: the request object to evaluate", Expression: "request"}
	default:
		return &resources.Error{Code: resources.CodeInvalid, Message: "request must be an object", Expression: "request"}
	}
	var d accesspolicy.Decision
	switch p := body["policy"].(type) {
	case nil:
		d = s.policies.Decide(ctx, req, true)
	case string:
		pol, ok := s.policies.Policy(p)
		if !ok {
			return resources.Errorf(resources.CodeNotFound, "AccessPolicy %q is not in force (missing, deleted or not compiling)", p)
		}
		d = s.policies.DecideOne(ctx, pol, req)
	case map[string]any:
		pol, err := s.policies.Compiler().Compile(ctx, p)
		if err != nil {
			return err
		}
		d = s.policies.DecideOne(ctx, pol, req)
	default:
		return &resources.Error{Code: resources.CodeInvalid, Message: "policy must be an AccessPolicy object or the id of a stored one", Expression: "policy"}
	}
	if d.Trace == nil {
		d.Trace = []accesspolicy.TraceEntry{}
	}
	return c.JSON(http.StatusOK, testPolicyResult{Result: d.Allowed, Policy: d.Policy, Trace: d.Trace})
}
