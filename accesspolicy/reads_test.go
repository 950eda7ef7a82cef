package accesspolicy

import (
	"context"
	"testing"
)

// Reads errs towards true: a policy that can depend on the body, however it gets at it,
// says so; one that cannot is evaluated before the body is read.
func TestPolicyReads(t *testing.T) {
	tests := []struct {
		name         string
		src          string
		body, params bool
	}{
		{"allow", `{"engine":"allow"}`, false, false},
		{"matcho on method and uri", `{"engine":"matcho","matcho":{"request-method":"get","uri":"/x"}}`, false, false},
		{"matcho on the route type", `{"engine":"matcho","matcho":{"params":{"resource/type":"Patient"}}}`, false, true},
		{"matcho on the body", `{"engine":"matcho","matcho":{"body":{"resourceType":"Patient"}}}`, true, false},
		{"matcho referring to the body", `{"engine":"matcho","matcho":{"user":{"id":".body.subject"}}}`, true, false},
		{"schema naming the body", `{"engine":"json-schema","schema":{"required":["body"]}}`, true, false},
		{"schema closed to unnamed properties", `{"engine":"json-schema","schema":{"properties":{"uri":{"type":"string"}},"additionalProperties":false}}`, true, true},
		{"schema with a const", `{"engine":"json-schema","schema":{"const":{"uri":"/x"}}}`, true, true},
		{"schema on the uri", `{"engine":"json-schema","schema":{"properties":{"uri":{"type":"string"}}}}`, false, false},
		{"complex with a body branch", `{"engine":"complex","or":[{"engine":"allow"},{"engine":"matcho","matcho":{"body":{"a":1}}}]}`, true, false},
	}
	c := &Compiler{}
	for _, tt := range tests {
		p := compileJSON(t, c, "p", tt.src)
		if p.Reads("body") != tt.body || p.Reads("params") != tt.params {
			t.Errorf("%s: Reads(body)=%v Reads(params)=%v, want %v %v", tt.name, p.Reads("body"), p.Reads("params"), tt.body, tt.params)
		}
	}
}

// With the body pending, policies that may read it are left out and the decision says
// so; the same policies decide as always once the body is there.
func TestDecideDefersBodyPolicies(t *testing.T) {
	e := engineWith(t, map[string]string{
		"by-body": `{"engine":"matcho","matcho":{"body":{"resourceType":"Patient"}}}`,
		"by-uri":  `{"engine":"matcho","matcho":{"uri":"/fhir/Observation"}}`,
	})
	ctx := context.Background()
	pending := &Info{Method: "POST", Path: "/fhir/Patient", Pending: "body"}
	d := e.Decide(ctx, pending.Build(), true)
	if d.Allowed || !d.Deferred || len(d.Trace) != 2 {
		t.Fatalf("pending body: %+v", d)
	}
	read := &Info{Method: "POST", Path: "/fhir/Patient", Body: map[string]any{"resourceType": "Patient"}}
	if d := e.Decide(ctx, read.Build(), false); !d.Allowed || d.Policy != "by-body" || d.Deferred {
		t.Errorf("body read: %+v", d)
	}
	other := &Info{Method: "POST", Path: "/fhir/Observation", Pending: "body"}
	if d := e.Decide(ctx, other.Build(), false); !d.Allowed || d.Policy != "by-uri" {
		t.Errorf("a policy that does not read the body decides while it is pending: %+v", d)
	}
}
