package resources

import (
	"strings"
)

// terminologyModifiers are the token modifiers that only a terminology service can
// answer: :above and :below follow a code system's hierarchy, :in and :not-in expand a
// ValueSet.
var terminologyModifiers = map[string]bool{"above": true, "below": true, "in": true, "not-in": true}

// prepareClause names the index rows of a composite clause's components (see
// rootComponents) and refuses the clauses that the modifier table of search.go lets
// through but fhirbox cannot answer.
func (p *searchParser) prepareClause(td *TypeDef, name string, c *Clause) error {
	if err := refuseModifier(name, c.Param, c.Modifier); err != nil {
		return err
	}
	if c.Param.Type != TypeComposite {
		return nil
	}
	if root := rootComponents(td, c.Param); root != nil {
		for _, d := range root {
			c.Components = append(c.Components, d.Name)
		}
		c.Ungrouped = true
		return nil
	}
	for k := range c.Param.Components {
		c.Components = append(c.Components, ComponentParam(c.Param.Name, k))
	}
	return nil
}

// refuseModifier refuses, each with what is missing, a modifier that needs terminology,
// :of-type on a parameter that holds no identifiers, a modifier on a parameter read
// from a column, and special parameters other than near.
func refuseModifier(name string, sp *SearchParam, mod string) error {
	if sp.Type == TypeSpecial && !isNear(sp) {
		return invalid(name, "%s is a special search parameter with its own search logic, which fhirbox does not implement", sp.Name)
	}
	if sp.Type == TypeComposite && componentParams(sp) == nil {
		return invalid(name, "%s: a component of this composite parameter has a type fhirbox cannot search", sp.Name)
	}
	switch {
	case mod == "":
	case sp.Type == TypeToken && terminologyModifiers[mod]:
		return invalid(name, "modifier :%s on %s (token) needs a terminology service (code system hierarchies, ValueSet expansions), which fhirbox does not have", mod, sp.Name)
	case sp.Column != "" && mod != "missing" && mod != "not":
		return invalid(name, "modifier :%s is not supported on %s (%s)", mod, sp.Name, sp.Type)
	case mod == "of-type" && sp.Type == TypeToken && !strings.Contains(strings.ToLower(sp.Expression), "identifier"):
		return invalid(name, "modifier :of-type applies to identifier parameters; %s (%s) holds no identifiers", sp.Name, sp.Expression)
	}
	return nil
}

// derivedValue reports whether an item of sp with modifier mod is parsed by
// parser.derivedValue rather than by the parameter type's own syntax.
func derivedValue(sp *SearchParam, mod string) bool {
	switch sp.Type {
	case TypeComposite, TypeSpecial:
		return true
	case TypeToken:
		return mod == "text" || mod == "of-type"
	case TypeReference:
		return mod == "identifier"
	}
	return false
}

// derivedValue parses one item of a composite or near parameter, or of a modifier that
// changes the syntax of the value (token :text and :of-type, reference :identifier).
func (p *searchParser) derivedValue(sp *SearchParam, mod, item string) (Value, bool, error) {
	bad := func(format string, args ...any) (Value, bool, error) {
		return Value{}, false, invalid(sp.Name, "%s: %q: "+format, append([]any{sp.Name, item}, args...)...)
	}
	var v Value
	switch {
	case sp.Type == TypeComposite:
		parts := splitEscaped(item, '$')
		if len(parts) != len(sp.Components) {
			codes := make([]string, len(sp.Components))
			for i, c := range sp.Components {
				codes[i] = c.Code
			}
			return bad("a value of %s has %d parts separated by $ (%s), not %d", sp.Name, len(codes), strings.Join(codes, "$"), len(parts))
		}
		for k, part := range parts {
			c := sp.Components[k]
			if part == "" {
				return bad("the part %s is empty", c.Code)
			}
			cv, ok, err := p.value(&SearchParam{Name: sp.Name, Type: c.Type}, "", part)
			if err != nil {
				return Value{}, false, err
			}
			if !ok {
				return bad("the part %s says nothing to search for", c.Code)
			}
			cv.Raw = part
			v.Components = append(v.Components, cv)
		}
		return v, true, nil

	case sp.Type == TypeSpecial:
		n, msg := parseNear(item)
		if msg != "" {
			return bad("%s", msg)
		}
		v.Near = n
		return v, true, nil

	case mod == "text":
		v.Str = NormalizeString(unescape(item))
		if len(v.Str) > MaxIndexValueBytes {
			return Value{}, false, invalid(sp.Name, "%s: a value of %d bytes is longer than any value the search index holds (%d bytes)", sp.Name, len(v.Str), MaxIndexValueBytes)
		}
		return v, v.Str != "", nil

	case mod == "of-type":
		parts := splitEscaped(item, '|')
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return bad("identifier:of-type takes type-system|type-code|value")
		}
		v.System, v.MatchSystem = unescape(parts[0]), true
		v.Code, v.MatchCode = unescape(parts[1])+"|"+unescape(parts[2]), true
		return v, true, nil

	default: // reference :identifier, a token
		return p.value(&SearchParam{Name: sp.Name, Type: TypeToken}, "", item)
	}
}
