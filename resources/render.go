package resources

import (
	"encoding/json"
)

// View says how a resource is shown: which top-level elements are kept (_elements,
// conformance F12) and the _summary mode.
type View struct {
	Elements []string
	Summary  string
}

// subsetted is the meta.tag FHIR uses to mark a resource with elements left out.
var subsetted = map[string]any{
	"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
	"code":   "SUBSETTED",
}

// Public returns the content of r as a client may see it: secret fields (Client.secret,
// User.password) removed and the view applied. Documents that need no change are
// returned as stored, without decoding.
func (s *Service) Public(r *Resource, v View) (json.RawMessage, error) {
	td, ok := s.reg.Type(r.Type)
	hasSecret := ok && len(td.Secret)+len(td.Hidden) > 0
	subset := len(v.Elements) > 0 || v.Summary == "text" || v.Summary == "data"
	if !hasSecret && !subset {
		return r.Content, nil
	}
	var doc map[string]any
	if err := decodeNumbers(r.Content, &doc); err != nil {
		return nil, Internal(err)
	}
	if hasSecret {
		for _, f := range td.Secret {
			delete(doc, f)
		}
		for _, f := range td.Hidden {
			delete(doc, f)
		}
	}
	if subset {
		applyView(doc, v)
	}
	out, err := marshal(doc)
	if err != nil {
		return nil, Internal(err)
	}
	return out, nil
}

// applyView keeps what the view asks for and tags the result SUBSETTED.
func applyView(doc map[string]any, v View) {
	// The elements asked for that the document has, found by lookups in it: linear in
	// the names and the keys, where checking each key against the list was their product
	// (for every resource of the page).
	var asked map[string]bool
	if v.Summary != "text" && v.Summary != "data" {
		asked = make(map[string]bool, min(len(v.Elements), len(doc)))
		for _, el := range v.Elements {
			if _, ok := doc[el]; ok {
				asked[el] = true
			}
		}
	}
	keep := func(k string) bool {
		switch k {
		case "resourceType", "id", "meta":
			return true
		}
		switch v.Summary {
		case "text":
			return k == "text"
		case "data":
			return k != "text"
		}
		return asked[k]
	}
	for k := range doc {
		if !keep(k) {
			delete(doc, k)
		}
	}
	meta, _ := doc["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		doc["meta"] = meta
	}
	tags, _ := meta["tag"].([]any)
	meta["tag"] = append(tags, subsetted)
}
