package accesspolicy

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"

	"github.com/fhirbox/fhirbox/pkg/format"
	"github.com/fhirbox/fhirbox/resources"
)

// AdminPolicyID is the policy that lets the root client do everything.
const AdminPolicyID = "fhirbox-admin"

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Builtins returns the public policies fhirbox ships (for /health, /metadata,
// /.well-known/*, /auth/token and /auth/authorize), decoded from accesspolicy/builtin.
func Builtins() ([]map[string]any, error) {
	files, err := fs.Glob(builtinFS, "builtin/*.yaml")
	if err != nil {
		return nil, err
	}
	var docs []map[string]any
	for _, f := range files {
		data, err := builtinFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		doc, err := format.DecodeYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		docs = append(docs, doc)
	}
	return docs, nil
}

// AdminPolicy is the policy of the root client: engine allow, linked to it.
func AdminPolicy(adminClientID string) map[string]any {
	return map[string]any{
		"resourceType": ResourceType,
		"id":           AdminPolicyID,
		"description":  "fhirbox root client (FHIRBOX_ADMIN_CLIENT_ID) may do everything; restored at every start",
		"engine":       EngineAllow,
		"link":         []any{map[string]any{"resourceType": "Client", "id": adminClientID}},
	}
}

// EnsureBuiltins writes the shipped policies at start. The root client's policy is
// rewritten whenever it differs from AdminPolicy, so the root client can always get
// back in; a public policy is written when it is missing or deleted, and an edited one
// is kept as the admin left it.
func EnsureBuiltins(ctx context.Context, svc *resources.Service, adminClientID string) error {
	docs, err := Builtins()
	if err != nil {
		return err
	}
	admin := AdminPolicy(adminClientID)
	if err := ensure(ctx, svc, admin, true); err != nil {
		return err
	}
	for _, doc := range docs {
		if err := ensure(ctx, svc, doc, false); err != nil {
			return err
		}
	}
	return nil
}

func ensure(ctx context.Context, svc *resources.Service, doc map[string]any, exact bool) error {
	id, _ := doc["id"].(string)
	cur, err := svc.Current(ctx, ResourceType, id)
	if err != nil {
		return err
	}
	if cur != nil {
		if !exact {
			return nil
		}
		stored, err := Decode(cur.Content)
		if err == nil && sameFields(stored, doc) {
			return nil
		}
	}
	if _, _, err := svc.Update(ctx, ResourceType, id, doc, ""); err != nil {
		return fmt.Errorf("access policy %s: %w", id, err)
	}
	return nil
}

// sameFields reports whether stored has every field of want with the same value.
func sameFields(stored, want map[string]any) bool {
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	w, err := Decode(b)
	if err != nil {
		return false
	}
	for k, v := range w {
		if !reflect.DeepEqual(stored[k], v) {
			return false
		}
	}
	return true
}

//go:embed templates/*.yaml
var templateFS embed.FS

// Template returns the policy template name (accesspolicy/templates/name.yaml): shipped
// with fhirbox, documented, and not active until stored as an AccessPolicy.
func Template(name string) ([]byte, error) {
	return templateFS.ReadFile("templates/" + name + ".yaml")
}
