package resources

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/fhirbox/fhirbox/resources/validate"
)

// ValidationSetting is the environment variable of the server setting that turns R4
// validation of writes on or off.
const ValidationSetting = "FHIRBOX_VALIDATION"

// ValidationMode says whether writes of R4 types are validated: ValidationOn (the
// default, also the zero value) or ValidationOff (for loading legacy data, and for
// measuring what validation costs). $validate validates either way.
type ValidationMode string

// The validation modes.
const (
	ValidationOn  ValidationMode = ""
	ValidationOff ValidationMode = "off"
)

// ParseValidationMode reads the setting: on or off.
func ParseValidationMode(s string) (ValidationMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "on":
		return ValidationOn, nil
	case "off":
		return ValidationOff, nil
	}
	return "", fmt.Errorf("%s: %q is neither on nor off", ValidationSetting, s)
}

// String is the setting's value.
func (m ValidationMode) String() string {
	if m == ValidationOff {
		return "off"
	}
	return "on"
}

// baseProfilePrefix starts the canonical URL of every R4 base StructureDefinition.
const baseProfilePrefix = "http://hl7.org/fhir/StructureDefinition/"

// checkR4 validates a document about to be written (conformance V1): an R4 type's
// document with an error is refused, 422 with one issue per problem, before anything
// is stored. fhirbox's own types keep only their own validators. Warnings (a profile
// the server does not hold) do not refuse a write: it is accepted on the base checks.
func (s *Service) checkR4(ctx context.Context, td *TypeDef, doc map[string]any) error {
	// The server's own writes (a SearchParameter's status after its reindex) change
	// only what it sets on a document that was validated when a client wrote it, or
	// was loaded with validation off: they are not refused for what they did not write.
	if s.opts.Validation == ValidationOff || td.Own || trusted(ctx) {
		return nil
	}
	if bid, ok := doc["id"]; ok {
		// A malformed id is the 400 it is everywhere else (conformance F18).
		if sid, ok := bid.(string); !ok || !ValidID(sid) {
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("invalid id %v: ids match [A-Za-z0-9-.]{1,64}", bid), Expression: "id"}
		}
	}
	issues, err := s.ValidateR4(ctx, td.Name, doc, nil)
	if err != nil || !validate.Errors(issues) {
		return err
	}
	var errs []validate.Issue
	for _, is := range issues {
		if is.Severity == validate.SeverityError {
			errs = append(errs, is)
		}
	}
	msg := fmt.Sprintf("the %s is not valid FHIR R4: %d problems", td.Name, len(errs))
	if len(errs) == 1 {
		msg = fmt.Sprintf("the %s is not valid FHIR R4: %s", td.Name, errs[0].Diagnostics)
	}
	return &Error{Code: CodeUnprocessable, Message: msg, Expression: errs[0].Expression, Issues: errs}
}

// ValidateR4 validates doc as a resource of typ against the R4 base definitions and
// against the profiles its meta.profile names, and the extra profiles given
// (conformance V7): a profile stored on the server as a StructureDefinition (found by
// its url) is checked, any other is a warning saying it was not checked. A type that
// is not R4's (fhirbox's own, a custom one) has nothing to check: nil.
func (s *Service) ValidateR4(ctx context.Context, typ string, doc map[string]any, profiles []string) ([]validate.Issue, error) {
	v, err := validate.Default()
	if err != nil {
		return nil, Internal(err)
	}
	if !v.Known(typ) {
		return nil, nil
	}
	issues := v.Validate(typ, doc)
	if meta, ok := doc["meta"].(map[string]any); ok {
		if list, ok := meta["profile"].([]any); ok {
			for _, p := range list {
				if u, ok := p.(string); ok {
					profiles = append(profiles, u)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, u := range profiles {
		if seen[u] || u == baseProfilePrefix+typ {
			continue // the base definition of the type is what every document is checked against
		}
		seen[u] = true
		p, err := s.profile(ctx, u)
		if err != nil {
			return nil, err
		}
		if p == nil {
			issues = append(issues, validate.Issue{Severity: validate.SeverityWarning, Code: "not-supported",
				Expression:  typ + ".meta.profile",
				Diagnostics: fmt.Sprintf("profile %s not checked: no StructureDefinition with this url is stored on the server", u)})
			continue
		}
		issues = append(issues, p.Check(typ, doc)...)
	}
	return issues, nil
}

// profiles caches compiled profiles by the id and version of their StructureDefinition,
// so that an update of one is seen at once.
var profiles struct {
	sync.Mutex
	m map[string]*validate.Profile
}

// maxCachedProfiles bounds the cache; past it, it starts again empty.
const maxCachedProfiles = 256

// profile finds the StructureDefinition stored with canonical URL u (url|version
// names one version) and compiles it; nil when none is stored.
func (s *Service) profile(ctx context.Context, u string) (*validate.Profile, error) {
	params := url.Values{"url": {u}, "_count": {"1"}, "_sort": {"-_lastUpdated"}}
	if base, ver, ok := strings.Cut(u, "|"); ok {
		params = url.Values{"url": {base}, "version": {ver}, "_count": {"1"}, "_sort": {"-_lastUpdated"}}
	}
	if _, ok := s.reg.Type("StructureDefinition"); !ok {
		return nil, nil
	}
	res, _, err := s.Search(ctx, "StructureDefinition", params, false)
	if err != nil {
		return nil, err
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	r := res.Entries[0]
	key := r.ID + "/" + strconv.FormatInt(r.VersionID, 10)
	profiles.Lock()
	p := profiles.m[key]
	profiles.Unlock()
	if p != nil {
		return p, nil
	}
	var sd map[string]any
	if err := decodeNumbers(r.Content, &sd); err != nil {
		return nil, Internal(err)
	}
	if p, err = validate.CompileProfile(sd); err != nil {
		return nil, &Error{Code: CodeUnprocessable, Message: fmt.Sprintf("profile %s: %v", u, err), Expression: "meta.profile"}
	}
	profiles.Lock()
	if profiles.m == nil || len(profiles.m) >= maxCachedProfiles {
		profiles.m = map[string]*validate.Profile{}
	}
	profiles.m[key] = p
	profiles.Unlock()
	return p, nil
}
