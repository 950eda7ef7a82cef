package bulkimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fhirbox/fhirbox/pkg/format"
	"github.com/fhirbox/fhirbox/resources"
)

// parseResource decodes one resource: an object with a resourceType and an id, since an
// import keeps the ids it is given (a re-run then finds what the first run stored).
func parseResource(where string, raw []byte) *Item {
	it := &Item{Where: where, Raw: raw}
	doc, err := format.DecodeJSON(raw)
	if err != nil {
		it.Err = err
		return it
	}
	it.Err = identify(it, doc)
	return it
}

// identify fills it's Type, ID and Doc from doc, or says why it cannot be imported.
func identify(it *Item, doc map[string]any) error {
	typ, ok := doc["resourceType"].(string)
	if !ok || typ == "" {
		return errors.New("no resourceType")
	}
	id, ok := doc["id"].(string)
	switch {
	case !ok || id == "":
		return fmt.Errorf("the %s has no id: an import keeps the ids it is given, so that a re-run finds what it stored", typ)
	case !resources.ValidID(id):
		return fmt.Errorf("invalid id %q: ids match [A-Za-z0-9-.]{1,64}", id)
	}
	it.Type, it.ID, it.Doc = typ, id, doc
	return nil
}

// Decode decodes it.Raw again into it.Doc, for a retry: the write of a batch that was
// rolled back changed the documents it was given.
func (it *Item) decode() error {
	doc, err := format.DecodeJSON(it.Raw)
	if err != nil {
		return err
	}
	it.Doc = doc
	return nil
}

// bundleTypes are the Bundles whose entries are imported: a transaction or batch (their
// requests are not replayed: each entry's resource is stored under its id), or a
// collection, searchset or history of resources.
var bundleTypes = map[string]bool{"transaction": true, "batch": true, "collection": true, "searchset": true, "history": true}

// readBundle reads a Bundle file whole (it is one JSON document) and emits the resource
// of each entry. An entry without an id takes the one its fullUrl urn:uuid: names, as
// Synthea's transaction Bundles have them, and references to such a fullUrl are
// rewritten to Type/id, so the resources refer to each other as they were meant to.
func readBundle(name string, r io.Reader, emit func(*Item) bool) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxBundle+1))
	if err != nil {
		return err
	}
	if len(data) > MaxBundle {
		emit(&Item{Where: name, Err: fmt.Errorf("the Bundle is larger than %d MiB: split it, or use NDJSON", MaxBundle>>20)})
		return nil
	}
	items := parseBundle(name, data)
	for _, it := range items {
		if !emit(it) {
			return nil
		}
	}
	return nil
}

// parseBundle returns the items of a Bundle file's entries (or one item saying why the
// file is no Bundle that can be imported).
func parseBundle(name string, data []byte) []*Item {
	doc, err := format.DecodeJSON(data)
	if err != nil {
		return []*Item{{Where: name, Err: err}}
	}
	if rt, _ := doc["resourceType"].(string); rt != "Bundle" {
		// A single resource in a .json file is imported as itself.
		it := &Item{Where: name, Raw: data}
		it.Err = identify(it, doc)
		return []*Item{it}
	}
	if typ, _ := doc["type"].(string); !bundleTypes[typ] {
		return []*Item{{Where: name, Err: fmt.Errorf("a Bundle of type %q: only transaction, batch, collection, searchset and history Bundles are imported", typ)}}
	}
	list, _ := doc["entry"].([]any)
	items := make([]*Item, len(list))
	local := map[string]string{} // fullUrl urn:uuid: → Type/id
	for i, v := range list {
		it := &Item{Where: fmt.Sprintf("%s: entry %d", name, i)}
		items[i] = it
		e, _ := v.(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if res == nil {
			it.Err = errors.New("the entry has no resource (only entries with one are imported)")
			continue
		}
		full, _ := e["fullUrl"].(string)
		if _, ok := res["id"]; !ok {
			if u, ok := strings.CutPrefix(full, "urn:uuid:"); ok {
				res["id"] = u
			}
		}
		if it.Err = identify(it, res); it.Err != nil {
			continue
		}
		if strings.HasPrefix(full, "urn:") {
			local[full] = it.Type + "/" + it.ID
		}
	}
	for _, it := range items {
		if it.Err != nil {
			continue
		}
		if len(local) > 0 {
			it.Err = resources.RewriteReferences(it.Doc, func(_, ref string) (string, error) {
				if to, ok := local[ref]; ok {
					return to, nil
				}
				return ref, nil
			})
		}
		if it.Err == nil {
			// The entry's own JSON, for a retry (see Item.Raw).
			it.Raw, it.Err = json.Marshal(it.Doc)
		}
		if it.Err != nil {
			it.Doc = nil
		}
	}
	return items
}
