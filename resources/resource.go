// Package resources is the resource engine of fhirbox: it stores, versions and searches
// every resource type as a JSON document. It knows nothing of HTTP or of a particular
// database; the server layer calls the Service and a Store implementation persists.
package resources

import (
	"encoding/json"
	"time"
)

// Resource is one stored version of a resource. Content is the complete JSON document,
// including resourceType, id and meta (versionId, lastUpdated) as the server set them.
// For a deletion Content holds the last live version and Deleted is true.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	Content     json.RawMessage
}
