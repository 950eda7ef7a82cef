package auth

import (
	"encoding/json"
	"strings"
	"testing"
)

// Every choice of the sandbox's "Create a client" makes a Client that validates, with
// the settings asked for; its summary never carries the secret.
func TestClientSpec(t *testing.T) {
	const cb = "http://localhost:8080/ui/sandbox/callback"
	all := []string{"password", "client_credentials", "authorization_code", "refresh_token"}
	for mask := 1; mask < 1<<len(all); mask++ {
		var grants []string
		for i, g := range all {
			if mask&(1<<i) != 0 {
				grants = append(grants, g)
			}
		}
		for _, jwt := range []bool{false, true} {
			spec := ClientSpec{ID: "app", Name: "App", Secret: "app-secret-1", GrantTypes: grants, FirstParty: jwt, JWT: jwt}
			doc := spec.Document(cb)
			// As it would arrive over the wire.
			raw, _ := json.Marshal(doc)
			var wire map[string]any
			if err := json.Unmarshal(raw, &wire); err != nil {
				t.Fatal(err)
			}
			if err := ValidateClient(wire); err != nil {
				t.Fatalf("%v jwt=%v: %v\n%s", grants, jwt, err, raw)
			}
			cfg, _ := ParseClientConfig(wire)
			for _, g := range settingsGrants {
				if cfg.Allows(g) && cfg.Grant(g).JWT != jwt {
					t.Errorf("%v: %s token format", grants, g)
				}
			}
			sum := Summarize("app", wire, cb)
			if cfg.Allows("authorization_code") != sum.Callback || !sum.Confidential || sum.FirstParty != jwt || sum.Invalid != "" {
				t.Errorf("%v: summary %+v", grants, sum)
			}
			if out, _ := json.Marshal(sum); strings.Contains(string(out), "app-secret") || strings.Contains(string(out), `"secret"`) {
				t.Errorf("summary shows the secret: %s", out)
			}
		}
	}
	// No id, name or secret: a public client whose id the server assigns.
	doc := (&ClientSpec{GrantTypes: []string{"authorization_code"}}).Document(cb)
	for _, k := range []string{"id", "name", "secret"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s set: %v", k, doc)
		}
	}
	if sum := Summarize("x", map[string]any{"grant_types": []any{"implicit"}}, cb); sum.Invalid == "" {
		t.Errorf("an invalid Client's summary: %+v", sum)
	}
}
