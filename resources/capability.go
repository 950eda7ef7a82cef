package resources

import "strings"

// Modifiers lists the modifiers the parser accepts on p, as written after the colon,
// for the CapabilityStatement: the ones of its type (the modifiers table the parser
// reads) that it does not refuse for p (accepts), and for a reference "[type]", a
// target type. :exact on a uri changes nothing (uri values match exactly) and is listed
// since it is accepted.
func Modifiers(p *SearchParam) []string {
	if fullTextParam(p.Name) == p {
		return nil // _text and _content take none
	}
	var out []string
	for _, m := range modifiers[p.Type] {
		if accepts(p, m) {
			out = append(out, m)
		}
	}
	if p.Type == TypeReference {
		out = append(out, "[type]")
	}
	return out
}

// ModifierDoc is the sentence the CapabilityStatement adds to a parameter's
// documentation: R4's CapabilityStatement has no element for modifiers.
func ModifierDoc(p *SearchParam) string {
	mods := Modifiers(p)
	if len(mods) == 0 {
		return "Modifiers: none."
	}
	doc := "Modifiers: :" + strings.Join(mods, ", :")
	if p.Type == TypeReference && len(p.Targets) > 0 {
		doc += " (" + strings.Join(p.Targets, ", ") + ")"
	}
	return doc + "."
}

// accepts reports whether the parser takes modifier m of p's type on p itself: the
// parameters that read a column (_id, _lastUpdated) are never missing and take only
// :not; for the others it asks refuseModifier, which the parser asks. It must refuse
// what the parser refuses, so that the CapabilityStatement lists nothing a search would
// answer with a 400.
func accepts(p *SearchParam, m string) bool {
	if p.Column != "" {
		return m == "not"
	}
	return refuseModifier(p.Name, p, m) == nil
}
