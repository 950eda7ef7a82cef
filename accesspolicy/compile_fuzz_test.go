package accesspolicy

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzCompile feeds Compile with arbitrary AccessPolicy documents (what policy admins
// write): it must never panic, must refuse with a field-naming 422 or compile, and a
// compiled policy must evaluate an arbitrary request without panicking.
func FuzzCompile(f *testing.F) {
	f.Add(`{"engine":"allow"}`, `{"uri":"/x"}`)
	f.Add(`{"engine":"matcho","matcho":{"uri":"#^/fhir","params":{"resource/id":".user.data.id"}}}`, `{"uri":"/fhir/Patient/1","params":{"resource/id":"1"},"user":{"data":{"id":"1"}}}`)
	f.Add(`{"engine":"json-schema","schema":{"required":["user"]}}`, `{}`)
	f.Add(`{"engine":"complex","or":[{"engine":"matcho","matcho":{"x":1}},{"engine":"allow"}]}`, `{"x":1}`)
	f.Add(`{"engine":"complex","and":[{"engine":"complex","and":[]}]}`, `{}`)
	f.Add(`{"engine":"sql","sql":{"query":"SELECT true"}}`, `{}`)
	f.Add(`{"engine":"allow","link":[{"reference":"User/u"}],"roleName":"r"}`, `{"user":{"id":"u","roles":["r"]}}`)
	f.Fuzz(func(t *testing.T, policy, request string) {
		var doc map[string]any
		if json.Unmarshal([]byte(policy), &doc) != nil || doc == nil {
			return
		}
		p, err := (&Compiler{}).Compile(context.Background(), doc)
		if err != nil {
			return
		}
		var obj map[string]any
		if json.Unmarshal([]byte(request), &obj) != nil {
			return
		}
		req := NewRequest(obj)
		ok1, _, err1 := p.Eval(context.Background(), req)
		ok2, _, err2 := p.rule.eval(context.Background(), req, false)
		if ok1 != ok2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("explained and unexplained evaluations disagree: %v/%v %v/%v", ok1, ok2, err1, err2)
		}
	})
}
