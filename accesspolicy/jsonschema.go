package accesspolicy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaURL is the name the compiler files a policy's schema under; it is never fetched.
const schemaURL = "urn:fhirbox:accesspolicy-schema"

// errNoRemote refuses every $ref outside the policy's own schema: the library's default
// loader reads local files, which a policy admin must not be able to make the server do.
var errNoRemote = errors.New("a policy schema may only refer to itself ($ref to #/… or its own $defs)")

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) { return nil, fmt.Errorf("%s: %w", url, errNoRemote) }

// schemaRule is the json-schema engine: the request object must be valid against the
// schema. Draft 2020-12 unless the schema's $schema names draft-07 (or another draft the
// validator knows). The request object is validated as it is: empty values are not
// stripped first, so {"required": ["user"]} fails for an anonymous request whose user
// is absent, and a policy that wants a non-empty value says so (minLength, minItems).
type schemaRule struct{ s *jsonschema.Schema }

func compileSchema(raw any) (rule, error) {
	if _, ok := raw.(map[string]any); !ok {
		if _, ok := raw.(bool); !ok {
			return nil, errors.New("a schema is an object (or a boolean)")
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	c.AssertFormat()
	if err := c.AddResource(schemaURL, raw); err != nil {
		return nil, err
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, errors.New(cleanSchemaError(err.Error()))
	}
	return schemaRule{s}, nil
}

func (r schemaRule) eval(_ context.Context, req *Request, explain bool) (bool, string, error) {
	err := r.s.Validate(req.ObjectAny())
	if err == nil {
		return true, "", nil
	}
	if !explain {
		return false, "", nil
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return false, cleanSchemaError(firstCause(ve)), nil
	}
	return false, err.Error(), nil
}

// firstCause is the innermost first failure: the one that names the field.
func firstCause(ve *jsonschema.ValidationError) string {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	loc := "/" + strings.Join(ve.InstanceLocation, "/")
	return fmt.Sprintf("at %s: %s", loc, ve.Error())
}

// cleanSchemaError drops the internal schema URL from the library's messages.
func cleanSchemaError(s string) string {
	s = strings.ReplaceAll(s, schemaURL+"#", "")
	s = strings.ReplaceAll(s, schemaURL, "schema")
	return strings.Join(strings.Fields(s), " ")
}
