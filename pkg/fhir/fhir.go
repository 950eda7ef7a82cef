// Package fhir holds the FHIR R4 wire shapes that fhirbox writes itself: Bundle,
// OperationOutcome and CapabilityStatement. Stored resources never pass through these
// types; they stay raw JSON.
package fhir

import (
	"encoding/json"
)

// OperationOutcome reports errors and warnings (conformance F15: every 4xx/5xx body is one).
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id,omitempty"`
	Issue        []Issue `json:"issue"`
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// NewOutcome returns an OperationOutcome with one issue.
func NewOutcome(severity, code, diagnostics string, expression ...string) *OperationOutcome {
	return &OperationOutcome{
		ResourceType: "OperationOutcome",
		Issue:        []Issue{{Severity: severity, Code: code, Diagnostics: diagnostics, Expression: expression}},
	}
}

// Bundle is a searchset or history Bundle.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *Meta         `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []Link        `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// Meta is the subset of Resource.meta a Bundle carries.
type Meta struct {
	LastUpdated string `json:"lastUpdated,omitempty"`
}

// Link is a Bundle.link (self, next, previous, first).
type Link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is one Bundle.entry. Resource is the raw stored JSON.
type BundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *EntrySearch    `json:"search,omitempty"`
	Request  *EntryRequest   `json:"request,omitempty"`
	Response *EntryResponse  `json:"response,omitempty"`
}

// EntrySearch is Bundle.entry.search.
type EntrySearch struct {
	Mode string `json:"mode"`
}

// EntryRequest is Bundle.entry.request (history bundles).
type EntryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// EntryResponse is Bundle.entry.response (history, batch-response and
// transaction-response bundles).
type EntryResponse struct {
	Status       string `json:"status"`
	Location     string `json:"location,omitempty"`
	Etag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	// Outcome is an OperationOutcome: why the entry failed, or what Prefer:
	// return=OperationOutcome asked for.
	Outcome *OperationOutcome `json:"outcome,omitempty"`
}

// CapabilityStatement is the server's /metadata answer (conformance F16).
type CapabilityStatement struct {
	ResourceType   string           `json:"resourceType"`
	Status         string           `json:"status"`
	Date           string           `json:"date"`
	Kind           string           `json:"kind"`
	Software       Software         `json:"software"`
	Implementation Implementation   `json:"implementation"`
	FHIRVersion    string           `json:"fhirVersion"`
	Format         []string         `json:"format"`
	Rest           []CapabilityRest `json:"rest"`
}

// Software names the server.
type Software struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Implementation gives the server's base URL.
type Implementation struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

// CapabilityRest is CapabilityStatement.rest.
type CapabilityRest struct {
	Mode string `json:"mode"`
	// Documentation (markdown) says what the server does beyond what the elements can.
	Documentation string               `json:"documentation,omitempty"`
	Resource      []CapabilityResource `json:"resource"`
	// Interaction lists the system-level interactions (search-system…).
	Interaction []Interaction `json:"interaction,omitempty"`
	// Operation lists the system-level operations ($export).
	Operation []Operation `json:"operation,omitempty"`
	// SearchParam lists the parameters of every type, for the system-level search.
	SearchParam []SearchParam `json:"searchParam,omitempty"`
	// Security says how clients authenticate (SMART's oauth-uris extension).
	Security *CapabilitySecurity `json:"security,omitempty"`
}

// CapabilitySecurity is CapabilityStatement.rest.security.
type CapabilitySecurity struct {
	Extension   []Extension       `json:"extension,omitempty"`
	Service     []CodeableConcept `json:"service,omitempty"`
	Description string            `json:"description,omitempty"`
}

// Extension is a FHIR extension: a url with a value (only valueUri here) or extensions
// of its own.
type Extension struct {
	URL       string      `json:"url"`
	ValueURI  string      `json:"valueUri,omitempty"`
	Extension []Extension `json:"extension,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is a FHIR Coding.
type Coding struct {
	System string `json:"system,omitempty"`
	Code   string `json:"code,omitempty"`
}

// CapabilityResource is one resource type's capabilities.
type CapabilityResource struct {
	Type              string        `json:"type"`
	Interaction       []Interaction `json:"interaction"`
	Versioning        string        `json:"versioning"`
	ReadHistory       bool          `json:"readHistory"`
	UpdateCreate      bool          `json:"updateCreate"`
	ConditionalCreate bool          `json:"conditionalCreate"`
	ConditionalUpdate bool          `json:"conditionalUpdate"`
	ConditionalDelete string        `json:"conditionalDelete"`
	// SearchInclude lists the _include values (Type:param) and SearchRevInclude the
	// _revinclude values (Other:param) that searches of the type take.
	SearchInclude    []string      `json:"searchInclude,omitempty"`
	SearchRevInclude []string      `json:"searchRevInclude,omitempty"`
	SearchParam      []SearchParam `json:"searchParam,omitempty"`
	// Operation lists the operations the type serves ($validate…).
	Operation []Operation `json:"operation,omitempty"`
}

// Operation is CapabilityStatement.rest.resource.operation: an operation's name
// (without $) and the canonical URL of its OperationDefinition.
type Operation struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Documentation string `json:"documentation,omitempty"`
}

// Interaction is a supported interaction code.
type Interaction struct {
	Code string `json:"code"`
}

// SearchParam is one supported search parameter.
type SearchParam struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}
