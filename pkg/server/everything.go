package server

import (
	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// everythingOperation is how the CapabilityStatement lists Patient $everything.
var everythingOperation = fhir.Operation{Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
	Documentation: "GET Patient/[id]/$everything and Patient/$everything: the patient's compartment with what it refers to, paged; _since, _type, _count (docs/search.md#patient-everything)."}

// handleEverything answers Patient $everything, GET [base]/Patient/{id}/$everything and
// the type-level GET [base]/Patient/$everything (conformance F46). The authorize
// middleware let the operation through; as at the system level, each type of the Patient
// compartment is then decided as its type-level search would be, and only those allowed
// are searched. Scopes and policy compartments confine it as any search.
func (s *Server) handleEverything(c echo.Context) error {
	if typ := c.Param("type"); typ != "Patient" {
		return resources.Errorf(resources.CodeNotFound, "$everything is an operation of Patient, not of %s", typ)
	}
	f, params, err := s.queryRequest(c)
	if err != nil {
		return err
	}
	types, err := s.svc.EverythingTypes(params)
	if err != nil {
		return err
	}
	id := c.Param("id")
	own := "/Patient/$everything"
	if id != "" {
		own = "/Patient/" + id + "/$everything"
	}
	// The types are decided without the operation's own parameters, which no type-level
	// search takes.
	allowed := s.allowedTypes(c, types, nil, own, "")
	if len(allowed) == 0 {
		return noTypeAllowed(c, "search", types)
	}
	ctx := c.Request().Context()
	res, q, err := s.svc.Everything(ctx, id, allowed, params, resources.SearchOptions{
		Strict: s.strictHandling(c.Request()), Caller: resultSetCaller(ctx)})
	if err != nil {
		return err
	}
	return s.answerSearch(c, f, q, res)
}
