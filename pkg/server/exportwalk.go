package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/resources"
)

// membersPerSearch is how many Group members one compartment search names: a clause's
// values are capped (resources.Limits).
const membersPerSearch = 50

// exportWalker reads a job's resources through the server's Service, as the job's
// caller (jobContext).
type exportWalker struct{ s *Server }

// jobContext is the context every read of job's type typ runs in (conformance E3): the
// identity of the caller who kicked it off (client, user and session, read again now),
// and what confines that caller's search GET [base]/{typ} — the compartments of the
// policy that allows it and the token's scopes — as a request's authorization would
// set them. The search is decided again, as the caller: a policy or scope that no longer
// allows it leaves the type out (a 403 in the manifest's error file), and a session
// closed since the kick-off (signed out, revoked) ends the job. Every read of a job goes
// through it; nothing of a job reads with another context.
func (s *Server) jobContext(ctx context.Context, job *exportjob.Job, typ string) (context.Context, error) {
	id := &auth.Identity{ClientID: job.ClientID, UserID: job.UserID, SessionID: job.SessionID}
	own := resources.WithTrusted(ctx)
	load := func(typ, rid string) (map[string]any, error) {
		if rid == "" {
			return nil, nil
		}
		r, err := s.svc.Current(own, typ, rid)
		if err != nil || r == nil {
			return nil, err
		}
		// As authentication hands them to policies: secrets and token hashes removed.
		content, err := s.svc.Public(r, resources.View{})
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if err := json.Unmarshal(content, &doc); err != nil {
			return nil, resources.Internal(err)
		}
		return doc, nil
	}
	var err error
	if id.Session, err = load(auth.SessionType, job.SessionID); err != nil {
		return nil, err
	}
	if job.SessionID != "" && id.Session == nil {
		return nil, &resources.Error{Code: resources.CodeUnprocessable, Message: "the session that kicked the export off was closed", Err: export.ErrCallerGone}
	}
	if id.Client, err = load("Client", job.ClientID); err != nil {
		return nil, err
	}
	if id.User, err = load("User", job.UserID); err != nil {
		return nil, err
	}
	path := "/fhir/" + typ
	info := &accesspolicy.Info{Method: http.MethodGet, Path: path, Query: url.Values{}, Caller: id, ResourceType: typ}
	d := s.policies.Decide(ctx, info.Build(), false)
	if !d.Allowed {
		return nil, resources.Errorf(codeForbidden, "no access policy lets the caller search %s any more", typ)
	}
	if err := s.scopeRefusal(info); err != nil {
		return nil, err
	}
	ctx = auth.WithIdentity(ctx, id)
	ctx = confineScopes(ctx, id, http.MethodGet, path)
	return resources.WithConfinement(ctx, d.Confinement()), nil
}

// Walk implements export.Walker: the resources of typ the job exports, by level. A
// system-level job exports every resource of the type; a patient-level job the
// Patient compartment of all patients (conformance E10): every Patient, and the
// resources of the compartment's other types that refer to some Patient; a
// group-level job the Group's member Patients and the resources of their compartments
// (a resource is in a Patient's compartment when one of the compartment's parameters
// of its type refers to the Patient).
func (w exportWalker) Walk(ctx context.Context, job *exportjob.Job, typ string, emit func([]byte) error) error {
	s := w.s
	base := ctx
	ctx, err := s.jobContext(ctx, job, typ)
	if err != nil {
		return err
	}
	params := export.Params(job)
	pageSize := s.exports.Options().PageSize
	switch job.Kind {
	case exportjob.System:
		return export.WalkType(ctx, s.svc, typ, params, job.TransactionTime, pageSize, emit)
	case exportjob.Patient:
		return export.WalkCompartments(ctx, s.svc, "Patient", typ, params, job.TransactionTime, pageSize, emit)
	}
	// The Group is read again, as the caller's GET [base]/Group/{id} would read it now:
	// as the caller, but not under the confinement of the search of typ, which may be
	// another policy's.
	members, err := s.groupMembers(auth.WithIdentity(base, auth.FromContext(ctx)), job.GroupID)
	if err != nil {
		return err
	}
	var links []string
	if typ == "Patient" {
		links = []string{"_id"}
	} else {
		links = resources.CompartmentParams("Patient", typ)
	}
	// A resource may refer to several members, or to one through several parameters:
	// each is written once.
	seen := map[string]bool{}
	for chunk := range slices.Chunk(members, membersPerSearch) {
		for _, link := range links {
			p := url.Values{}
			for k, v := range params {
				p[k] = v
			}
			if link == "_id" {
				p.Set("_id", strings.Join(chunk, ","))
			} else {
				refs := make([]string, len(chunk))
				for i, m := range chunk {
					refs[i] = "Patient/" + m
				}
				p.Set(link, strings.Join(refs, ","))
			}
			err := export.WalkTypeResources(ctx, s.svc, typ, p, job.TransactionTime, pageSize, func(r *resources.Resource, content []byte) error {
				if seen[r.ID] {
					return nil
				}
				seen[r.ID] = true
				return emit(content)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// groupMembers returns the ids of the Patients a Group's member.entity refers to,
// read as the job's caller (ctx carries its identity) would read the Group.
func (s *Server) groupMembers(ctx context.Context, id string) ([]string, error) {
	caller := auth.FromContext(ctx)
	info := &accesspolicy.Info{Method: http.MethodGet, Query: url.Values{}, Caller: caller}
	g, err := s.readGroupAs(ctx, info, id)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Member []struct {
			Entity struct {
				Reference string `json:"reference"`
			} `json:"entity"`
		} `json:"member"`
	}
	if err := json.Unmarshal(g.Content, &doc); err != nil {
		return nil, resources.Internal(err)
	}
	var out []string
	for _, m := range doc.Member {
		ref := m.Entity.Reference
		if id, ok := strings.CutPrefix(ref, "Patient/"); ok && resources.ValidID(id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// readGroupAs reads Group id as GET [base]/Group/{id} from the caller of info would
// (conformance E9): decided by the caller's policies and token scopes, and read under
// the confinements that decision and the scopes impose — a caller confined to a
// patient's compartment reads only the Groups that have the patient as a member. A
// refusal is that GET's: 401 or 403 when no policy allows it, 403 when the Group is
// beyond the caller's compartment, 404 when there is none. ctx may carry more
// confinements (a kick-off's own): they only narrow.
func (s *Server) readGroupAs(ctx context.Context, info *accesspolicy.Info, id string) (*resources.Resource, error) {
	path := "/fhir/Group/" + id
	read := equivalent(info, http.MethodGet, path, "", url.Values{}, "Group", id, nil)
	ok, conf := s.decideProbe(ctx, read)
	if !ok {
		if info.Caller.Anonymous() {
			return nil, resources.Errorf(codeUnauthorized, "authentication required: no access policy allows anonymous GET %s", path)
		}
		return nil, resources.Errorf(codeForbidden, "no access policy allows %s to GET %s", info.Caller.String(), path)
	}
	ctx = confineScopes(ctx, info.Caller, http.MethodGet, path)
	return s.svc.Read(resources.WithConfinement(ctx, conf), "Group", id)
}
