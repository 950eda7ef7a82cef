package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/resources"
)

// capabilityCache holds the CapabilityStatement of each base, as JSON, made on the
// first request for it: it depends only on the registry and the configuration, and
// with every R4 search parameter it is large enough that building and encoding it per
// request would cost more than any other read.
type capabilityCache struct {
	once [2]sync.Once
	body [2][]byte
	err  [2]error
}

// capabilityJSON returns the CapabilityStatement of the request's base, encoded.
func (s *Server) capabilityJSON(c echo.Context) ([]byte, error) {
	fhirBase := isFHIRBase(c)
	i := 0
	if fhirBase {
		i = 1
	}
	s.caps.once[i].Do(func() {
		body, err := json.Marshal(s.capabilities(s.base(c), fhirBase))
		if err != nil {
			err = resources.Internal(err)
		}
		s.caps.body[i], s.caps.err[i] = body, err
	})
	return s.caps.body[i], s.caps.err[i]
}

// paramDoc is a parameter's documentation in the CapabilityStatement: its description
// and the modifiers it takes, which R4 has no element for.
func paramDoc(p *resources.SearchParam) string {
	if p.Description == "" {
		return resources.ModifierDoc(p)
	}
	return p.Description + "\n\n" + resources.ModifierDoc(p)
}

// searchDocumentation is rest.documentation: what searches take beyond what the
// statement's elements say.
const searchDocumentation = `Search (see docs/search.md).

* **Modifiers** of each parameter are listed in its documentation, since R4's CapabilityStatement has no element for them.
* **_include / _revinclude**: the values each type takes are its searchInclude and searchRevInclude.
* **Chains** (` + "`subject:Patient.name=x`" + `) follow reference parameters; **_has** (` + "`_has:Observation:subject:code=x`" + `) reverse them.
* **Handling**: parameters the server cannot apply are ignored and named in an OperationOutcome entry (search.mode outcome), unless the request says ` + "`Prefer: handling=strict`" + ` (or the server is configured strict): then they are a 400. Malformed values and unsupported modifiers are a 400 either way.
* **Paging**: the next and previous links of a search with more than one page read a result set stored at its first page (` + "`_pageset`" + `), so that writes in between neither repeat nor skip a match; the links repeat the search's parameters, and a set expires some minutes after the first page (410: repeat the search).`

// commonParams lists the parameters every served type has, by name and type: those a
// system-level search could take.
func commonParams(reg *resources.Registry, fhirBase bool) []fhir.SearchParam {
	var common map[string]*resources.SearchParam
	for _, name := range reg.Types() {
		td, _ := reg.Type(name)
		if fhirBase && td.Own {
			continue
		}
		if common == nil {
			common = map[string]*resources.SearchParam{}
			for _, pn := range td.ParamNames() {
				common[pn] = td.Params[pn]
			}
			continue
		}
		for pn, p := range common {
			if q := td.Param(pn); q == nil || q.Type != p.Type {
				delete(common, pn)
			}
		}
	}
	names := make([]string, 0, len(common))
	for pn := range common {
		names = append(names, pn)
	}
	for _, p := range []*resources.SearchParam{resources.TextParam, resources.ContentParam} {
		common[p.Name] = p // every type has them, outside the registry
		names = append(names, p.Name)
	}
	sort.Strings(names)
	out := make([]fhir.SearchParam, len(names))
	for i, pn := range names {
		p := common[pn]
		out[i] = fhir.SearchParam{Name: pn, Type: string(p.Type), Documentation: paramDoc(p)}
	}
	return out
}

// systemInteractions are the system-level interactions the router serves: search-system
// once GET on the base itself is routed (GET /fhir?_type=…), history-system once
// GET [base]/_history is (conformance H1), transaction and batch once POST on it is.
func (s *Server) systemInteractions() []fhir.Interaction {
	var search, history bool
	for _, r := range s.echo.Routes() {
		if r.Method != http.MethodGet {
			continue
		}
		switch r.Path {
		case "", "/", "/fhir", "/fhir/":
			search = true
		case "/_history", "/fhir/_history":
			history = true
		}
	}
	var out []fhir.Interaction
	if search {
		out = append(out, fhir.Interaction{Code: "search-system"})
	}
	if history {
		out = append(out, fhir.Interaction{Code: "history-system"})
	}
	// Batch and transaction Bundles, once POST on the base is routed (transaction.go).
	for _, r := range s.echo.Routes() {
		if r.Method == http.MethodPost && (r.Path == "/" || r.Path == "/fhir") {
			out = append(out, fhir.Interaction{Code: "transaction"}, fhir.Interaction{Code: "batch"})
			break
		}
	}
	return out
}

// refIndex holds, per type, the _include values of its searches (its reference
// parameters) and the reference parameters of every type that may point at it.
type refIndex struct {
	include map[string][]string
	// target maps a type to the Other:param values that name it among their targets;
	// any to those that may point at every type (no targets).
	target map[string][]string
	any    []string
}

func newRefIndex(reg *resources.Registry, fhirBase bool) *refIndex {
	ix := &refIndex{include: map[string][]string{}, target: map[string][]string{}}
	for _, name := range reg.Types() {
		td, _ := reg.Type(name)
		if fhirBase && td.Own {
			continue
		}
		for _, pn := range td.ParamNames() {
			p := td.Params[pn]
			if p.Type != resources.TypeReference {
				continue
			}
			v := name + ":" + pn
			ix.include[name] = append(ix.include[name], v)
			if len(p.Targets) == 0 {
				ix.any = append(ix.any, v)
			}
			for _, t := range p.Targets {
				ix.target[t] = append(ix.target[t], v)
			}
		}
	}
	return ix
}

// revInclude returns the _revinclude values of searches of typ, sorted.
func (ix *refIndex) revInclude(typ string) []string {
	out := append(slices.Clone(ix.target[typ]), ix.any...)
	sort.Strings(out)
	return slices.Compact(out)
}
