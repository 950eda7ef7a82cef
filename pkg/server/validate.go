package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/validate"
)

// handleValidate is the $validate operation, POST /{Type}/$validate and
// POST /{Type}/{id}/$validate (conformance V8): the body is the resource, or a
// Parameters resource with `resource`, `mode` and `profile`; the answer is an
// OperationOutcome, 200 whatever it finds, and nothing is stored.
func (s *Server) handleValidate(c echo.Context) error {
	f, err := negotiate(c, isFHIRBase(c))
	if err != nil {
		return err
	}
	typ := c.Param("type")
	if _, err := s.svc.TypeDef(typ); err != nil {
		return err
	}
	var query resources.ValidateParams
	for k, vs := range c.QueryParams() {
		switch k {
		case "_format", "_pretty":
		case "mode":
			query.Mode = vs[len(vs)-1]
		case "profile":
			query.Profiles = append(query.Profiles, vs...)
		default:
			return resources.Errorf(resources.CodeInvalid, "$validate takes no parameter %q (mode and profile only)", k)
		}
	}
	doc, err := s.readBody(c)
	if err != nil {
		return err
	}
	issues, err := s.svc.ValidateOperation(c.Request().Context(), typ, c.Param("id"), doc, query)
	if err != nil {
		return err
	}
	return s.writeValue(c, http.StatusOK, f, validationOutcome(issues))
}

// validateOperation is $validate in the CapabilityStatement of every type.
var validateOperation = fhir.Operation{Name: "validate", Definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
	Documentation: "POST [type]/$validate and [type]/[id]/$validate, the resource or a Parameters (resource, mode create/update/delete, profile); answers an OperationOutcome and stores nothing (docs/writes.md#validation)."}

// validationOutcome is the OperationOutcome of a validation's issues.
func validationOutcome(issues []validate.Issue) *fhir.OperationOutcome {
	oo := &fhir.OperationOutcome{ResourceType: "OperationOutcome", Issue: make([]fhir.Issue, 0, len(issues))}
	for _, is := range issues {
		var expr []string
		if is.Expression != "" {
			expr = []string{is.Expression}
		}
		oo.Issue = append(oo.Issue, fhir.Issue{Severity: is.Severity, Code: is.Code, Diagnostics: is.Diagnostics, Expression: expr})
	}
	return oo
}
