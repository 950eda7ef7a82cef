package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/resources"
)

// reindexStatus is the answer of GET /$reindex-status.
type reindexStatus struct {
	// Jobs are this process's background reindex jobs, running first.
	Jobs []resources.ReindexJob `json:"jobs"`
	// SearchParameters are the parameters of SearchParameter resources, with whether
	// they are still being indexed, as every process on the database sees them.
	SearchParameters []customStatus `json:"searchParameters"`
}

type customStatus struct {
	SearchParameter string   `json:"searchParameter"`
	Version         int64    `json:"version"`
	Code            string   `json:"code"`
	Base            []string `json:"base"`
	Type            string   `json:"type"`
	// Status is active once every resource of the base is indexed, draft until then.
	Status string `json:"status"`
}

// handleReindexStatus shows the background reindex jobs of this process and the state
// of every SearchParameter (docs/search.md).
func (s *Server) handleReindexStatus(c echo.Context) error {
	f, err := negotiate(c, false)
	if err != nil {
		return err
	}
	st := reindexStatus{Jobs: s.svc.ReindexJobs(), SearchParameters: []customStatus{}}
	if st.Jobs == nil {
		st.Jobs = []resources.ReindexJob{}
	}
	for _, cp := range s.svc.Registry().Customs() {
		cs := customStatus{SearchParameter: resources.SearchParameterType + "/" + cp.ID, Version: cp.Version, Code: cp.Code, Base: cp.Base, Type: string(cp.Type), Status: "draft"}
		if cp.Active {
			cs.Status = "active"
		}
		st.SearchParameters = append(st.SearchParameters, cs)
	}
	return s.writeValue(c, http.StatusOK, f, st)
}
