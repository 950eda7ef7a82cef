package auth

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// SMART resource scopes, v2 and v1, and the tokens that are none (conformance M3, M4).
func TestParseSMARTScope(t *testing.T) {
	for _, tt := range []struct {
		in string
		// want is context|type|permissions|v1|query, "" for no resource scope, "!" for
		// an error.
		want string
	}{
		{"patient/Observation.rs", "patient|Observation|rs|false|"},
		{"user/*.cruds", "user|*|cruds|false|"},
		{"system/*.rs", "system|*|rs|false|"},
		{"patient/Observation.rs?category=vital-signs", "patient|Observation|rs|false|category=vital-signs"},
		{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "patient|Observation|rs|false|category=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fobservation-category%7Claboratory"},
		{"user/Patient.c", "user|Patient|c|false|"},
		{"user/Patient.ds", "user|Patient|ds|false|"},
		{"patient/*.read", "patient|*|rs|true|"},
		{"user/Observation.write", "user|Observation|cud|true|"},
		{"patient/*.*", "patient|*|cruds|true|"},
		{"openid", ""}, {"fhirUser", ""}, {"launch", ""}, {"launch/patient", ""}, {"launch/encounter", ""},
		{"offline_access", ""}, {"online_access", ""}, {"my-scope", ""}, {"api:read", ""}, {"other/thing.x", ""},
		{"patient/Observation", "!"},
		{"patient/Observation.", "!"},
		{"patient/Observation.xyz", "!"},
		{"patient/Observation.sr", "!"},
		{"patient/Observation.rr", "!"},
		{"patient/observation.rs", "!"},
		{"patient/.rs", "!"},
		{"patient/Obs-ervation.rs", "!"},
		{"patient/*.read?category=x", "!"},
		{"patient/*.rs?", "!"},
		{"patient/*.rs?category", "!"},
		{"patient/*.rs?=x", "!"},
		{"patient/*.rs?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11", "!"},
		{"patient/*.rs?a=%zz", "!"},
		{"launch/somewhere", "!"},
	} {
		s, err := ParseSMARTScope(tt.in)
		got := ""
		switch {
		case err != nil:
			got = "!"
			if !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
				t.Errorf("%q: the error %q does not name the scope", tt.in, err)
			}
		case s != nil:
			got = strings.Join([]string{s.Context, s.Type, s.Permissions, map[bool]string{true: "true", false: "false"}[s.V1], s.Query.Encode()}, "|")
		}
		if got != tt.want {
			t.Errorf("ParseSMARTScope(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if s != nil {
			back, err := ParseSMARTScope(s.String())
			if err != nil || back.String() != s.String() {
				t.Errorf("%q: String %q reads back as %v, %v", tt.in, s.String(), back, err)
			}
		}
	}
}

// A scope the parser accepts writes back to a scope it accepts as the same; nothing
// panics, and every error names the scope.
func FuzzParseSMARTScope(f *testing.F) {
	for _, s := range []string{"patient/Observation.rs?category=vital-signs", "user/*.cruds", "system/*.read", "patient/*.*",
		"launch/patient", "openid", "patient/Observation.rs?a=1&a=2", "user/X.write?x", "patient/*.rs?%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSMARTScope(in)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(in)) {
				t.Errorf("error %q does not name %q", err, in)
			}
			return
		}
		if s == nil {
			return
		}
		back, err := ParseSMARTScope(s.String())
		if err != nil || back == nil || back.String() != s.String() || back.Permissions != s.Permissions || back.V1 != s.V1 {
			t.Errorf("%q: String %q reads back as %+v, %v", in, s.String(), back, err)
		}
	})
}

// The SMART configuration follows the grants the token endpoint serves: with an
// authorization-code handler, the authorization endpoint, PKCE and the launch
// capabilities appear with nothing else changed (conformance M1).
func TestSMARTConfigurationFollowsGrants(t *testing.T) {
	e := &TokenEndpoint{Grants: []GrantHandler{&fakeGrant{takes: []string{"password"}}, &fakeGrant{takes: []string{"client_credentials", "refresh_token"}}}}
	grants := e.GrantTypes()
	if !slices.Equal(grants, []string{"password", "client_credentials", "refresh_token"}) {
		t.Fatalf("GrantTypes() = %v", grants)
	}
	doc := SMARTConfiguration("https://fhir.example", grants)
	if _, ok := doc["authorization_endpoint"]; ok || slices.Contains(doc["capabilities"].([]string), "launch-standalone") {
		t.Errorf("without the authorization-code grant: %v", doc)
	}
	e.Grants = append(e.Grants, &fakeGrant{takes: []string{"authorization_code"}})
	doc = SMARTConfiguration("https://fhir.example", e.GrantTypes())
	caps := doc["capabilities"].([]string)
	if doc["authorization_endpoint"] != "https://fhir.example/auth/authorize" || !slices.Contains(caps, "launch-standalone") ||
		!slices.Contains(caps, "client-public") || !slices.Contains(caps, "launch-ehr") || !slices.Contains(caps, "context-ehr-encounter") ||
		!slices.Contains(caps, "permission-patient") || !slices.Equal(doc["code_challenge_methods_supported"].([]string), []string{"S256"}) ||
		!slices.Contains(doc["grant_types_supported"].([]string), "authorization_code") {
		t.Errorf("with the authorization-code grant: %v", doc)
	}
}

// A Client whose scope list breaks SMART's grammar is refused when written, and still
// loads when it was stored before the grammar was checked; asking for that scope is
// invalid_scope (conformance M3).
func TestClientSMARTScopes(t *testing.T) {
	doc := map[string]any{"id": "old", "grant_types": []any{"client_credentials"}, "scope": []any{"patient/*.rs", "patient/*.bogus"}}
	if err := ValidateClient(doc); err == nil || !strings.Contains(err.Error(), "patient/*.bogus") {
		t.Errorf("ValidateClient: %v", err)
	}
	if _, err := ParseClientConfig(doc); err != nil {
		t.Errorf("a stored Client with a malformed SMART scope no longer loads: %v", err)
	}
	if _, oe := parseScope("patient/*.bogus"); oe == nil || oe.Code != ErrCodeInvalidScope {
		t.Errorf("asking for it: %v", oe)
	}
	if err := ValidateClient(map[string]any{"id": "ok", "scope": "patient/*.rs my-own"}); err != nil {
		t.Errorf("a valid scope list: %v", err)
	}
}
