package server

import (
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/resources"
)

// Media types of patch bodies (conformance F30).
const (
	mimeJSONPatch  = "application/json-patch+json"
	mimeMergePatch = "application/merge-patch+json"
)

// methodParam chooses the kind of a PATCH body sent as plain JSON or YAML, as Aidbox's
// _method does: json-patch, merge-patch or fhirpath-patch.
const methodParam = "_method"

// handlePatch is PATCH {type}/{id}: the body, read as the patch kind its Content-Type
// (or _method) says, is applied to the current version and stored as the next.
func (s *Server) handlePatch(c echo.Context) error {
	f, typ, p, err := s.patchRequest(c)
	if err != nil {
		return err
	}
	res, err := s.svc.Patch(c.Request().Context(), typ, c.Param("id"), p, c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	return s.writeUpdated(c, f, res, false)
}

// patchRequest reads what every PATCH needs: the answer's format, the route's type
// (which must exist) and the patch.
func (s *Server) patchRequest(c echo.Context) (outFormat, string, *resources.Patch, error) {
	f, typ, err := s.typedRequest(c)
	if err != nil {
		return f, "", nil, err
	}
	p, err := s.readPatch(c, typ)
	return f, typ, p, err
}

// readPatch reads the request body as a patch of a typ resource. The kind comes from
// the Content-Type: application/json-patch+json is a JSON Patch,
// application/merge-patch+json a merge patch, application/fhir+json a FHIRPath Patch
// (a Parameters resource). Plain application/json (or no Content-Type) and YAML are
// read as Aidbox reads them: _method=json-patch|merge-patch|fhirpath-patch when given,
// else an array is a JSON Patch, a Parameters resource a FHIRPath Patch (unless typ is
// Parameters) and any other object a merge patch.
func (s *Server) readPatch(c echo.Context, typ string) (*resources.Patch, error) {
	req := c.Request()
	mt, err := mediaType(req)
	if err != nil {
		return nil, err
	}
	method := c.QueryParams().Get(methodParam)
	var fixed resources.PatchKind
	switch {
	case mt == mimeJSONPatch:
		fixed = resources.JSONPatch
	case mt == mimeMergePatch:
		fixed = resources.MergePatch
	case mt == mimeFHIRJSON || mt == "application/json+fhir":
		fixed = resources.FHIRPathPatch
	case mt == mimeJSON || yamlTypes[mt]:
	default:
		return nil, resources.Errorf(codeUnsupportedMedia, "Content-Type %q is not a patch: use %s, %s, %s (a FHIRPath Patch), or application/json", mt, mimeJSONPatch, mimeMergePatch, mimeFHIRJSON)
	}
	var chosen resources.PatchKind
	switch method {
	case "":
	case string(resources.JSONPatch), string(resources.MergePatch), string(resources.FHIRPathPatch):
		chosen = resources.PatchKind(method)
		if fixed != "" && fixed != chosen {
			return nil, &resources.Error{Code: resources.CodeInvalid, Message: "_method=" + method + " contradicts the Content-Type " + mt, Expression: methodParam}
		}
	default:
		return nil, &resources.Error{Code: resources.CodeInvalid, Message: "_method must be json-patch, merge-patch or fhirpath-patch, not " + strconv.Quote(method), Expression: methodParam}
	}
	body, err := s.decodeBody(req, yamlTypes[mt], true)
	if err != nil {
		return nil, err
	}
	kind := fixed
	if kind == "" {
		kind = chosen
	}
	if kind == "" {
		kind = guessPatchKind(typ, body)
	}
	return resources.ParsePatch(kind, body)
}

// guessPatchKind is the kind of a plain JSON or YAML patch body without _method.
func guessPatchKind(typ string, body any) resources.PatchKind {
	switch b := body.(type) {
	case []any:
		return resources.JSONPatch
	case map[string]any:
		if b["resourceType"] == "Parameters" && typ != "Parameters" {
			return resources.FHIRPathPatch
		}
	}
	return resources.MergePatch
}
