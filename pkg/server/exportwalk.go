package server

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/export/exportjob"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/r4"
)

// membersPerSearch is how many Group members one compartment search names: a clause's
// values are capped (resources.Limits).
const membersPerSearch = 50

// exportWalker reads a job's resources through the server's Service, as the job's
// caller (jobContext).
type exportWalker struct{ s *Server }

// jobContext is the context every read of job runs in: the identity of the caller
// who kicked it off (client, user, session), so that whatever confines that caller's
// searches (resources.Service.prepare) confines the job's. Every read of a job goes
// through it; nothing of a job reads with another context.
func (s *Server) jobContext(ctx context.Context, job *exportjob.Job) context.Context {
	return auth.WithIdentity(ctx, &auth.Identity{ClientID: job.ClientID, UserID: job.UserID, SessionID: job.SessionID})
}

// Walk implements export.Walker: the resources of typ the job exports, by level. A
// system-level job exports every resource of the type; a patient-level job every
// resource of the Patient compartment's types; a group-level job the Group's
// member Patients and the resources of their compartments (a resource is in a
// Patient's compartment when one of the compartment's parameters of its type refers
// to the Patient).
func (w exportWalker) Walk(ctx context.Context, job *exportjob.Job, typ string, emit func([]byte) error) error {
	s := w.s
	ctx = s.jobContext(ctx, job)
	params := export.Params(job)
	pageSize := s.exports.Options().PageSize
	if job.Kind != exportjob.Group {
		return export.WalkType(ctx, s.svc, typ, params, job.TransactionTime, pageSize, emit)
	}
	members, err := s.groupMembers(ctx, job.GroupID)
	if err != nil {
		return err
	}
	var links []string
	if typ == "Patient" {
		links = []string{"_id"}
	} else {
		links = compartmentParams(typ)
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
// read as the job's caller.
func (s *Server) groupMembers(ctx context.Context, id string) ([]string, error) {
	g, err := s.svc.Read(ctx, "Group", id)
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

// compartmentParams are the parameters of typ that put a resource into a Patient's
// compartment (R4 CompartmentDefinition "Patient").
func compartmentParams(typ string) []string {
	for _, c := range r4.Compartments() {
		if c.Code == "Patient" {
			return c.Resources[typ]
		}
	}
	return nil
}
