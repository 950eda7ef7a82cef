package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// FHIR Bulk Data export (Bulk Data Access IG v2, conformance E1–E10): the kick-off,
// status, cancel and file endpoints. The jobs, their runner and the manifest are
// pkg/export's; what a job reads, as its caller, is exportwalk.go's.

// The paths of a job's status and files, under the FHIR base.
const (
	exportStatusPath = "/$export-status/"
	exportFilePath   = "/$export-file/"
)

// exportOperations are $export in the CapabilityStatement of the FHIR base: at the
// system level (""), and on Patient and Group.
var exportOperations = map[string]fhir.Operation{
	"":        {Name: "export", Definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"},
	"Patient": {Name: "export", Definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"},
	"Group":   {Name: "export", Definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"},
}

// statusPoll is the Retry-After of a job still running: how long a client should wait
// before asking again.
const statusPoll = 2 * time.Second

// EnableExports turns $export on, its jobs kept in st, and returns the runner of
// those jobs, which reads them through this server (exportwalk.go); without it the
// export endpoints answer 404.
func (s *Server) EnableExports(st export.Store, opts export.Options) *export.Runner {
	s.exports = export.NewRunner(st, exportWalker{s}, opts, s.exportFileURL, s.log)
	return s.exports
}

// exportFileURL is the URL of a job's file seq, as the manifest lists it.
func (s *Server) exportFileURL(jobID string, seq int) string {
	return s.cfg.BaseURL + "/fhir" + exportFilePath + jobID + "/" + strconv.Itoa(seq)
}

// handleExportKickoff starts an export of level kind (conformance E1, E2): GET with
// the parameters in the query, or POST with a Parameters resource.
func (s *Server) handleExportKickoff(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.exports == nil {
			return resources.Errorf(resources.CodeNotFound, "no such endpoint")
		}
		r := c.Request()
		async, lenient := export.Prefer(r.Header.Values("Prefer"))
		if !async {
			return resources.Errorf(resources.CodeInvalid, "$export answers asynchronously only: send Prefer: respond-async")
		}
		params := r.URL.Query()
		if r.Method == http.MethodPost {
			var err error
			if params, err = s.parametersBody(c); err != nil {
				return err
			}
		}
		kr, err := export.ParseKickoff(params, lenient)
		if err != nil {
			return err
		}
		groupID := c.Param("id")
		types, refused, err := s.exportTypes(c, kind, groupID, kr, lenient)
		if err != nil {
			return err
		}
		id := auth.FromContext(r.Context())
		opts := s.exports.Options()
		now := opts.Now().UTC().Truncate(time.Millisecond)
		job := &exportjob.Job{
			ID: export.NewJobID(), State: exportjob.Queued, Kind: kind, GroupID: groupID,
			Request: s.cfg.BaseURL + r.URL.RequestURI(), Types: types, Refused: refused,
			Since: kr.Since, OutputFormat: export.NDJSON,
			ClientID: id.ClientID, UserID: id.UserID, SessionID: id.SessionID,
			Created: now, TransactionTime: now, Expires: now.Add(opts.TTL + opts.Lease),
		}
		if err := s.exports.Store().CreateExportJob(r.Context(), job); err != nil {
			return err
		}
		s.exports.Wake()
		c.Response().Header().Set("Content-Location", s.cfg.BaseURL+"/fhir"+exportStatusPath+job.ID)
		oo := fhir.NewOutcome("information", "informational", fmt.Sprintf("export of %d types accepted", len(types)))
		for _, why := range kr.Ignored {
			oo.Issue = append(oo.Issue, fhir.Issue{Severity: "warning", Code: "not-supported", Diagnostics: why + ": ignored"})
		}
		return s.writeValue(c, http.StatusAccepted, outFormat{ctype: "application/fhir+json"}, oo)
	}
}

// exportTypes returns the types a kick-off exports and those it leaves out because the
// caller may not search them. The candidates are every FHIR type (system level) or the
// Patient compartment's types and Patient (patient and group level), narrowed by
// _type; each is decided by the policies as GET [base]/{Type} from the caller would
// be (conformance E3). None allowed: what that search would get, 401 or 403.
func (s *Server) exportTypes(c echo.Context, kind, groupID string, kr *export.Request, lenient bool) (types, refused []string, err error) {
	ctx := c.Request().Context()
	v := url.Values{}
	if len(kr.Types) > 0 {
		v.Set("_type", strings.Join(kr.Types, ","))
	}
	candidates, err := s.svc.SystemTypes(v, true)
	if err != nil {
		return nil, nil, err
	}
	if kind != exportjob.System {
		inCompartment := resources.CompartmentTypes("Patient")
		var kept []string
		for _, t := range candidates {
			switch {
			case slices.Contains(inCompartment, t):
				kept = append(kept, t)
			case len(kr.Types) > 0 && !lenient:
				return nil, nil, resources.Errorf(resources.CodeInvalid, "_type: %s is not in the Patient compartment, which a %s-level export covers", t, kind)
			case len(kr.Types) > 0:
				kr.Ignored = append(kr.Ignored, fmt.Sprintf("_type: %s is not in the Patient compartment, which a %s-level export covers", t, kind))
			}
		}
		candidates = kept
	}
	if kind == exportjob.Group {
		// The Group must exist and be one the caller may read, as GET [base]/Group/{id}
		// would read it: the kick-off's own decision may have come from another policy,
		// without the compartment that GET has.
		info := s.requestInfo(c, auth.FromContext(ctx))
		if _, err := s.readGroupAs(ctx, info, groupID); err != nil {
			return nil, nil, err
		}
	}
	for _, t := range candidates {
		if s.allowedAs(c, http.MethodGet, "/fhir/"+t, t, "") {
			types = append(types, t)
		} else {
			refused = append(refused, t)
		}
	}
	if len(types) == 0 {
		return nil, nil, noTypeAllowed(c, "search", candidates)
	}
	return types, refused, nil
}

// allowedAs reports whether the caller's policies and token scopes allow method path
// on the route of typ/id, as the request's equivalent (equivalent.go).
func (s *Server) allowedAs(c echo.Context, method, path, typ, id string) bool {
	ctx := c.Request().Context()
	info := s.requestInfo(c, auth.FromContext(ctx))
	return s.allowed(ctx, equivalent(info, method, path, "", url.Values{}, typ, id, nil))
}

// parametersBody reads the Parameters resource of a POST kick-off into the values a
// GET's query would carry: each parameter's value[x] as a string.
func (s *Server) parametersBody(c echo.Context) (url.Values, error) {
	doc, err := s.readBody(c)
	if err != nil {
		return nil, err
	}
	if doc["resourceType"] != "Parameters" {
		return nil, resources.Errorf(resources.CodeInvalid, "a POST kick-off carries a Parameters resource")
	}
	out := url.Values{}
	list, _ := doc["parameter"].([]any)
	for _, p := range list {
		m, _ := p.(map[string]any)
		name, _ := m["name"].(string)
		if name == "" {
			return nil, resources.Errorf(resources.CodeInvalid, "Parameters.parameter without a name")
		}
		found := false
		for k, v := range m {
			if strings.HasPrefix(k, "value") {
				if s, ok := v.(string); ok {
					out.Add(name, s)
					found = true
				}
			}
		}
		if !found {
			return nil, resources.Errorf(resources.CodeInvalid, "Parameters.parameter %s has no value of a string-like type", name)
		}
	}
	return out, nil
}

// callerJob reads the job of the request's :job and checks that it is the caller's: a
// job of another caller (or none) is 404, which does not say whether it exists
// (conformance E5).
func (s *Server) callerJob(c echo.Context) (*exportjob.Job, error) {
	if s.exports == nil {
		return nil, resources.Errorf(resources.CodeNotFound, "no such endpoint")
	}
	ctx := c.Request().Context()
	job, err := s.exports.Store().ExportJob(ctx, c.Param("job"))
	if resources.ErrorCode(err) == resources.CodeNotFound {
		return nil, resources.Errorf(resources.CodeNotFound, "no such export job")
	}
	if err != nil {
		return nil, err
	}
	id := auth.FromContext(ctx)
	if id.Anonymous() || id.ClientID != job.ClientID || id.UserID != job.UserID {
		return nil, resources.Errorf(resources.CodeNotFound, "no such export job")
	}
	return job, nil
}

// handleExportStatus answers a job's status (conformance E4): 202 with X-Progress
// while it is queued or running, 200 with the manifest once done, and a 500 with an
// OperationOutcome when it failed (the IG's error status: the export failed, not the
// request).
func (s *Server) handleExportStatus(c echo.Context) error {
	job, err := s.callerJob(c)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	switch job.State {
	case exportjob.Done:
		h.Set("Expires", job.Expires.UTC().Format(http.TimeFormat))
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(job.Manifest)))
		return c.Blob(http.StatusOK, "application/json", job.Manifest)
	case exportjob.Failed:
		return s.writeValue(c, http.StatusInternalServerError, outFormat{ctype: "application/fhir+json"},
			fhir.NewOutcome("error", "exception", "the export failed: "+job.Error))
	}
	progress := job.State
	if job.Progress != "" {
		progress = job.Progress
	}
	h.Set("X-Progress", progress)
	h.Set("Retry-After", strconv.Itoa(int(statusPoll/time.Second)))
	return c.NoContent(http.StatusAccepted)
}

// handleExportDelete cancels a job, or removes a finished one, with its files
// (conformance E6): 202, and 404 from then on.
func (s *Server) handleExportDelete(c echo.Context) error {
	job, err := s.callerJob(c)
	if err != nil {
		return err
	}
	if _, err := s.exports.Store().DeleteExportJob(c.Request().Context(), job.ID); err != nil {
		return err
	}
	return s.writeValue(c, http.StatusAccepted, outFormat{ctype: "application/fhir+json"},
		fhir.NewOutcome("information", "informational", "the export job and its files are deleted"))
}

// handleExportFile serves one file of a finished job to the job's caller (conformance
// E7).
func (s *Server) handleExportFile(c echo.Context) error {
	job, err := s.callerJob(c)
	if err != nil {
		return err
	}
	seq, err := strconv.Atoi(c.Param("seq"))
	if err != nil || job.State != exportjob.Done || !listed(job.Manifest, s.exportFileURL(job.ID, seq)) {
		return resources.Errorf(resources.CodeNotFound, "no such export file")
	}
	f, err := s.exports.Store().ExportFile(c.Request().Context(), job.ID, job.Attempt, seq)
	if resources.ErrorCode(err) == resources.CodeNotFound {
		return resources.Errorf(resources.CodeNotFound, "no such export file")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(f.Content)))
	s.setWriteDeadline(c, len(f.Content))
	return c.Blob(http.StatusOK, export.NDJSON, f.Content)
}

// listed reports whether the manifest lists url among its files.
func listed(manifest []byte, url string) bool {
	var m export.Manifest
	if json.Unmarshal(manifest, &m) != nil {
		return false
	}
	return slices.ContainsFunc(append(m.Output, m.Error...), func(f export.ManifestFile) bool { return f.URL == url })
}
