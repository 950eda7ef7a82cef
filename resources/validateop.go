package resources

import (
	"context"
	"errors"
	"fmt"

	"github.com/fhirbox/fhirbox/resources/validate"
)

// ValidateParams are $validate's parameters given in the URL rather than the body.
type ValidateParams struct {
	Mode     string
	Profiles []string
}

// ValidateOperation is the $validate operation on typ (id: on one resource, "" at
// the type) for body, the resource itself or a Parameters resource with `resource`,
// `mode` and `profile` (conformance V8). The issues found are the answer, whatever
// they are; an error is a request that cannot be validated at all (an unknown mode,
// no resource). Nothing is stored. Modes, as R4's operation defines them: none
// validates the resource; create validates it for a create; update also requires its
// id to be the one named in the URL; delete ignores the content and checks that the
// resource named may be deleted (fhirbox keeps no referential integrity, so an existing
// resource always may).
func (s *Service) ValidateOperation(ctx context.Context, typ, id string, body map[string]any, p ValidateParams) ([]validate.Issue, error) {
	td, err := s.TypeDef(typ)
	if err != nil {
		return nil, err
	}
	if id != "" && !ValidID(id) {
		return nil, Errorf(CodeInvalid, "invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	resource, err := validateBody(typ, body, &p)
	if err != nil {
		return nil, err
	}
	switch p.Mode {
	case "", "create", "update", "delete":
	default:
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("mode %q: $validate's modes are create, update and delete", p.Mode), Expression: "mode"}
	}
	if (p.Mode == "update" || p.Mode == "delete") && id == "" {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("mode %s validates against one resource: POST /%s/{id}/$validate", p.Mode, typ), Expression: "mode"}
	}
	if p.Mode == "delete" {
		if _, err := s.Read(ctx, typ, id); err != nil {
			if c := ErrorCode(err); c == CodeNotFound || c == CodeGone {
				return []validate.Issue{{Severity: validate.SeverityWarning, Code: "not-found",
					Diagnostics: fmt.Sprintf("%s/%s does not exist: deleting it changes nothing", typ, id)}}, nil
			}
			return nil, err
		}
		return noProblems(fmt.Sprintf("%s/%s may be deleted", typ, id)), nil
	}
	if resource == nil {
		return nil, Errorf(CodeInvalid, "$validate needs a resource: the body, or a Parameters resource with a parameter called resource")
	}
	var issues []validate.Issue
	if p.Mode == "update" {
		switch bid := resource["id"]; {
		case bid == nil:
			issues = append(issues, validate.Issue{Severity: validate.SeverityError, Code: validate.CodeRequired, Expression: typ + ".id",
				Diagnostics: fmt.Sprintf("an update of %s/%s needs the id in the resource", typ, id)})
		case bid != id:
			issues = append(issues, validate.Issue{Severity: validate.SeverityError, Code: validate.CodeValue, Expression: typ + ".id",
				Diagnostics: fmt.Sprintf("id %v is not the id %s of the resource updated", bid, id)})
		}
	}
	// The type's own checks (an AccessPolicy that must compile, a SearchParameter's
	// expression) say no as a write would, as one issue.
	if err := s.validate(ctx, typ, resource); err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Code == CodeInternal {
			return nil, err
		}
		code := "processing"
		if e.Code == CodeInvalid {
			code = "invalid"
		}
		issues = append(issues, validate.Issue{Severity: validate.SeverityError, Code: code, Expression: e.Expression, Diagnostics: e.Message})
	}
	if !td.Own {
		r4, err := s.ValidateR4(ctx, typ, resource, p.Profiles)
		if err != nil {
			return nil, err
		}
		issues = append(issues, r4...)
	}
	if len(issues) == 0 {
		return noProblems("no problems found"), nil
	}
	return issues, nil
}

func noProblems(msg string) []validate.Issue {
	return []validate.Issue{{Severity: validate.SeverityInformation, Code: validate.CodeInformational, Diagnostics: msg}}
}

// validateBody returns the resource to validate: body itself, or the resource
// parameter of a Parameters body, whose mode and profile parameters go into p.
func validateBody(typ string, body map[string]any, p *ValidateParams) (map[string]any, error) {
	if body["resourceType"] != "Parameters" || typ == "Parameters" && !hasParam(body, "resource") {
		return body, nil
	}
	var resource map[string]any
	list, _ := body["parameter"].([]any)
	for i, x := range list {
		m, _ := x.(map[string]any)
		name, _ := m["name"].(string)
		where := fmt.Sprintf("Parameters.parameter[%d]", i)
		switch name {
		case "resource":
			r, ok := m["resource"].(map[string]any)
			if !ok {
				return nil, &Error{Code: CodeInvalid, Message: "the parameter resource holds no resource", Expression: where}
			}
			resource = r
		case "mode":
			v, ok := firstString(m, "valueCode", "valueString")
			if !ok {
				return nil, &Error{Code: CodeInvalid, Message: "the parameter mode needs a valueCode", Expression: where}
			}
			p.Mode = v
		case "profile":
			v, ok := firstString(m, "valueCanonical", "valueUri", "valueString")
			if !ok {
				return nil, &Error{Code: CodeInvalid, Message: "the parameter profile needs a valueCanonical", Expression: where}
			}
			p.Profiles = append(p.Profiles, v)
		default:
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("$validate takes no parameter %q (resource, mode and profile only)", name), Expression: where}
		}
	}
	return resource, nil
}

func hasParam(body map[string]any, name string) bool {
	list, _ := body["parameter"].([]any)
	for _, x := range list {
		if m, ok := x.(map[string]any); ok && m["name"] == name {
			return true
		}
	}
	return false
}

func firstString(m map[string]any, keys ...string) (string, bool) {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s, true
		}
	}
	return "", false
}
