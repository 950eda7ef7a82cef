package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/format"
	"github.com/fhirbox/fhirbox/resources"
)

// Media types fhirbox reads and writes.
const (
	mimeJSON     = "application/json"
	mimeFHIRJSON = "application/fhir+json"
	mimeYAML     = "text/yaml"
)

// outFormat is the negotiated response format.
type outFormat struct {
	yaml   bool
	ctype  string
	pretty bool
}

// yamlTypes and jsonTypes are the media types accepted for each format, request and
// response alike.
var (
	jsonTypes = map[string]bool{mimeJSON: true, mimeFHIRJSON: true, "application/json+fhir": true}
	yamlTypes = map[string]bool{mimeYAML: true, "application/yaml": true, "application/x-yaml": true, "text/x-yaml": true}
)

// negotiate picks the response format: _format wins over Accept (conformance F14). The
// default is FHIR JSON on /fhir and plain JSON elsewhere.
func negotiate(c echo.Context, fhirBase bool) (outFormat, error) {
	def := outFormat{ctype: mimeJSON}
	if fhirBase {
		def.ctype = mimeFHIRJSON
	}
	q := c.QueryParams()
	def.pretty = q.Get("_pretty") == "true"
	if f := strings.TrimSpace(q.Get("_format")); f != "" {
		switch strings.ToLower(f) {
		case "json":
			return def, nil
		case "yaml", "yml":
			return outFormat{yaml: true, ctype: mimeYAML, pretty: def.pretty}, nil
		}
		mt, _, err := mime.ParseMediaType(f)
		if err == nil {
			switch {
			case jsonTypes[mt]:
				def.ctype = canonicalJSON(mt)
				return def, nil
			case yamlTypes[mt]:
				return outFormat{yaml: true, ctype: mimeYAML, pretty: def.pretty}, nil
			}
		}
		return def, resources.Errorf(codeNotAcceptable, "_format %q is not supported: use json or yaml", f)
	}
	accept := c.Request().Header.Get(echo.HeaderAccept)
	if strings.TrimSpace(accept) == "" {
		return def, nil
	}
	best, bestQ := "", 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		qv := 1.0
		if s, ok := params["q"]; ok {
			if qv, err = strconv.ParseFloat(s, 64); err != nil {
				continue
			}
		}
		if qv <= bestQ {
			continue
		}
		switch {
		case jsonTypes[mt], yamlTypes[mt], mt == "*/*", mt == "application/*", mt == "text/*":
			best, bestQ = mt, qv
		}
	}
	switch {
	case best == "":
		return def, resources.Errorf(codeNotAcceptable, "none of the Accept types %q is supported: use application/fhir+json, application/json or text/yaml", accept)
	case yamlTypes[best] || best == "text/*":
		return outFormat{yaml: true, ctype: mimeYAML, pretty: def.pretty}, nil
	case jsonTypes[best]:
		def.ctype = canonicalJSON(best)
	}
	return def, nil
}

func canonicalJSON(mt string) string {
	if mt == mimeJSON {
		return mimeJSON
	}
	return mimeFHIRJSON
}

// readBody decodes the request body as JSON or YAML by Content-Type, within the size
// limit and the server's body-memory budget. An empty Content-Type is read as JSON.
func (s *Server) readBody(c echo.Context) (map[string]any, error) {
	if pr, ok := c.Request().Context().Value(prereadKey{}).(*preread); ok {
		return pr.doc, pr.err
	}
	req := c.Request()
	mt, err := mediaType(req)
	if err != nil {
		return nil, err
	}
	if !jsonTypes[mt] && !yamlTypes[mt] {
		return nil, resources.Errorf(codeUnsupportedMedia, "Content-Type %q is not supported: use application/fhir+json, application/json or text/yaml", mt)
	}
	v, err := s.decodeBody(req, yamlTypes[mt], false)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// decodeBody reads the body of req within the size limit and the body-memory budget
// and decodes it strictly, as YAML or else JSON: one object, or with arrays one object
// or array (map[string]any or []any).
func (s *Server) decodeBody(req *http.Request, yaml, arrays bool) (any, error) {
	data, release, err := s.readReserved(req)
	if err != nil {
		return nil, err
	}
	defer release() // held until the body is decoded
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, resources.Errorf(resources.CodeInvalid, "the request body is empty")
	}
	var v any
	switch {
	case yaml:
		v, err = format.DecodeYAML(data)
	case arrays:
		v, err = format.DecodeJSONValue(data)
	default:
		v, err = format.DecodeJSON(data)
	}
	if err != nil {
		return nil, resources.Errorf(resources.CodeInvalid, "%v", err)
	}
	return v, nil
}

// mediaType is the media type of the request's Content-Type, without parameters; an
// absent one is read as JSON.
func mediaType(req *http.Request) (string, error) {
	ct := req.Header.Get(echo.HeaderContentType)
	if ct == "" {
		return mimeJSON, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", resources.Errorf(codeUnsupportedMedia, "malformed Content-Type %q", ct)
	}
	return mt, nil
}

// reserveBody waits until the body of req fits in the server's budget for bodies being
// read and decoded at once (Config.BodyMemory), and returns the release. A decoded
// body takes several times its size (format bounds that per body), so without a
// budget twenty 10 MB bodies at once would take gigabytes; with one, they take turns.
// A body is counted at its Content-Length, or at the size limit when that is unknown.
func (s *Server) reserveBody(req *http.Request) (release func(), err error) {
	w := s.cfg.MaxBodyBytes
	if req.ContentLength >= 0 && req.ContentLength < w {
		w = max(req.ContentLength, 1)
	}
	if err := s.bodies.Acquire(req.Context(), w); err != nil {
		return nil, resources.Errorf(resources.CodeInvalid, "the request ended while its body waited to be read: %v", err)
	}
	return func() { s.bodies.Release(w) }, nil
}

// readReserved reads the whole body of req within the size limit, once it fits in the
// body-memory budget (reserveBody); release gives its share of the budget back, which
// the caller does once it has decoded the body.
func (s *Server) readReserved(req *http.Request) (data []byte, release func(), err error) {
	if release, err = s.reserveBody(req); err != nil {
		return nil, nil, err
	}
	if data, err = readLimited(req, s.cfg.MaxBodyBytes); err != nil {
		release()
		return nil, nil, err
	}
	return data, release, nil
}

// readLimited reads the whole body, failing with 413 past limit bytes.
func readLimited(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, resources.Errorf(codeTooLarge, "the request body is %d bytes; the limit is %d", req.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, resources.Errorf(codeTooLarge, "the request body exceeds the limit of %d bytes", limit)
		}
		if errors.Is(err, errBodyTimeout) {
			return nil, resources.Errorf(resources.CodeInvalid, "%v: it came slower than the server accepts", err)
		}
		return nil, resources.Errorf(resources.CodeInvalid, "could not read the request body: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, resources.Errorf(codeTooLarge, "the request body exceeds the limit of %d bytes", limit)
	}
	return data, nil
}
