package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/ui"
	"github.com/fhirbox/fhirbox/resources"
)

// SMART App Launch contexts on the sign-in pages: the EHR launch's LaunchContext bound to
// the authorization request, and the patient picker of a standalone launch with
// launch/patient (POST /auth/patient). The contexts themselves are pkg/auth's
// (launch.go); this file decides who may launch with which patient.

// maxCandidates bounds the patients a picker lists, and so the policy decisions and
// reads one page costs: a User record naming more is cut there.
const maxCandidates = 50

// bindLaunch resolves the launch parameter of an EHR launch into req.Context. An
// unknown, expired or other client's launch is an error sent back to the client
// (conformance L4).
func (s *Server) bindLaunch(ctx context.Context, req *auth.AuthorizeRequest) (*auth.AuthorizeError, error) {
	lc, err := s.oauth.Codes.Launch(ctx, req.Launch, req.Client.ID)
	if err != nil {
		return nil, err
	}
	if lc == nil {
		return &auth.AuthorizeError{Code: auth.ErrCodeInvalidRequest, Redirect: true,
			Description: "the launch is unknown, has expired, or was made for another client: launch again from the EHR"}, nil
	}
	req.Context = *lc
	return nil, nil
}

// continueAuthorize takes a consented request on to its code: an EHR launch's patient
// must be one the user may read; a standalone launch with launch/patient shows the
// patient picker first. status is the redirect's (302 after a GET, 303 after a form);
// request the authorization request's query, which the picker's form carries on.
func (s *Server) continueAuthorize(c echo.Context, req *auth.AuthorizeRequest, b *auth.Browser, status int, request string) error {
	denied := func(desc string) error {
		return c.Redirect(status, req.RedirectError(&auth.AuthorizeError{Code: "access_denied", Description: desc}, s.cfg.BaseURL))
	}
	if p := req.Context.Patient; p != "" {
		ok, _, err := s.launchPatient(c, req.Client, b, p)
		if err != nil {
			return err
		}
		if !ok {
			// The EHR named a patient this user may not see: no token names it (conformance L5).
			return denied("the launch's patient does not exist or the signed-in user may not read it")
		}
	}
	if req.NeedsPatient() {
		cands, err := s.patientCandidates(c, req.Client, b)
		if err != nil {
			return err
		}
		if len(cands) == 0 {
			return denied(noPatient)
		}
		if req.Prompt == "none" {
			return c.Redirect(status, req.RedirectError(&auth.AuthorizeError{Code: "interaction_required", Description: "the user must pick a patient"}, s.cfg.BaseURL))
		}
		return s.pickerPage(c, http.StatusOK, req, b, cands, request, "")
	}
	req.BrowserSession = b.SessionID
	return s.issueCode(c, req, b, status)
}

// pickPatient takes the picker's choice, posted with decision=allow to /auth/consent:
// the patient must be one the picker would list now, and the code then carries it
// (conformance L1–L3). The form carries the browser Session's CSRF token, checked by
// handleConsent, so only the signed-in user's own page can post it: picking a patient
// is their consent, and the picker shares the consent form's endpoint and policy.
func (s *Server) pickPatient(c echo.Context, req *auth.AuthorizeRequest, b *auth.Browser, chosen, request string) error {
	if !req.NeedsPatient() {
		return s.errorPage(c, http.StatusBadRequest, "this authorization request has no patient to pick")
	}
	cands, err := s.patientCandidates(c, req.Client, b)
	if err != nil {
		return err
	}
	if len(cands) == 0 {
		return c.Redirect(http.StatusSeeOther, req.RedirectError(&auth.AuthorizeError{Code: "access_denied", Description: noPatient}, s.cfg.BaseURL))
	}
	for _, p := range cands {
		if p.ID == chosen {
			req.Context.Patient = chosen
			req.Context.Banner = true // no EHR frames a standalone launch
			req.BrowserSession = b.SessionID
			return s.issueCode(c, req, b, http.StatusSeeOther)
		}
	}
	return s.pickerPage(c, http.StatusBadRequest, req, b, cands, request, "Choose one of the patients listed.")
}

// noPatient is the access_denied description of a launch/patient request by a user with
// no patient to pick.
const noPatient = "the signed-in user has no patient to launch with: their User record names none they may read"

func (s *Server) pickerPage(c echo.Context, status int, req *auth.AuthorizeRequest, b *auth.Browser, cands []ui.PatientChoice, request, msg string) error {
	return s.page(c, status, "picker", ui.Picker{Page: s.pageBase("Choose a patient"), Client: clientName(req.Client),
		User: userName(b.User), Patients: cands, CSRF: auth.CSRFToken(s.cookie(c, sessionCookie)),
		Request: request, Error: msg})
}

// patientCandidates lists the Patients the signed-in user may launch with (conformance
// L2): those their User record names — fhirUser when it references a Patient, then every
// reference in data.patients — that exist and that the access policies let the user
// read, through this client, decided as GET /fhir/Patient/{id} would be.
func (s *Server) patientCandidates(c echo.Context, client *auth.ClientConfig, b *auth.Browser) ([]ui.PatientChoice, error) {
	var refs []any
	refs = append(refs, b.User["fhirUser"])
	if data, ok := b.User["data"].(map[string]any); ok {
		if list, ok := data["patients"].([]any); ok {
			refs = append(refs, list...)
		}
	}
	var out []ui.PatientChoice
	seen := map[string]bool{}
	for _, ref := range refs {
		typ, id, ok := auth.RefOf(ref)
		if !ok || typ != "Patient" || seen[id] {
			continue
		}
		seen[id] = true
		if len(seen) > maxCandidates {
			break
		}
		ok, p, err := s.launchPatient(c, client, b, id)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// launchPatient reports whether Patient id exists and the signed-in user may read it
// through client, with what the picker shows of it. The decision is the policies' on
// GET /fhir/Patient/{id} sent by that user and client from this browser (equivalent,
// as readCheck builds its probes), and the read under the compartments it is confined
// to. The user has no token yet, so no scope narrows it.
func (s *Server) launchPatient(c echo.Context, client *auth.ClientConfig, b *auth.Browser, id string) (bool, ui.PatientChoice, error) {
	ctx := c.Request().Context()
	cdoc, err := s.oauth.Dir.Client(ctx, client.ID)
	if err != nil {
		return false, ui.PatientChoice{}, err
	}
	caller := &auth.Identity{ClientID: client.ID, Client: cdoc, UserID: b.UserID, User: b.User}
	probe := equivalent(s.requestInfo(c, caller), http.MethodGet, "/fhir/Patient/"+id, "", url.Values{}, "Patient", id, nil)
	d := s.policies.Decide(ctx, probe.Build(), false)
	if !d.Allowed {
		return false, ui.PatientChoice{}, nil
	}
	// A policy that allows only within compartments (the patient-own-compartment
	// template) allows the probe confined: the read decides, as it would for the user.
	r, err := s.svc.Read(resources.WithConfinement(ctx, d.Confinement()), "Patient", id)
	switch resources.ErrorCode(err) {
	case resources.CodeForbidden, resources.CodeNotFound, resources.CodeGone:
		return false, ui.PatientChoice{}, nil
	}
	if err != nil {
		return false, ui.PatientChoice{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Content, &doc); err != nil {
		return false, ui.PatientChoice{}, resources.Internal(err)
	}
	birth, _ := doc["birthDate"].(string)
	return true, ui.PatientChoice{ID: id, Name: patientName(doc), BirthDate: birth}, nil
}

// patientName is the first HumanName of a Patient, as its text or its given names and
// family; "" when it has none.
func patientName(doc map[string]any) string {
	names, _ := doc["name"].([]any)
	if len(names) == 0 {
		return ""
	}
	n, _ := names[0].(map[string]any)
	if t, _ := n["text"].(string); t != "" {
		return t
	}
	var parts []string
	given, _ := n["given"].([]any)
	for _, g := range given {
		if s, _ := g.(string); s != "" {
			parts = append(parts, s)
		}
	}
	if f, _ := n["family"].(string); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}
