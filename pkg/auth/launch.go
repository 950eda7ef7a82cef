package auth

import (
	"context"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// SMART App Launch contexts (conformance L1–L9). An EHR creates a LaunchContext
// resource naming the patient (and encounter) an app opens on, and sends the app its id
// as the launch parameter; /auth/authorize binds it to the code, and the token response
// carries patient and encounter. A standalone launch with launch/patient gets its
// patient from the picker page instead (pkg/server/launch.go). Either way the code, then
// the Session, record the context as references, {"resourceType": "Patient", "id": …}.

// LaunchType is the resource type of EHR launch contexts, fhirbox's own.
const LaunchType = "LaunchContext"

// LaunchTTL is how long a LaunchContext created without an expires stays usable, and
// the longest an EHR may give it: a launch is a click in the EHR, not a standing grant.
const LaunchTTL = time.Hour

// LaunchContext is what an authorization binds to its code and tokens: the patient and
// encounter in context, by id; "" when there is none.
type LaunchContext struct {
	Patient, Encounter string
	// Banner is SMART's need_patient_banner, sent beside the patient: true for a
	// standalone launch, which no EHR frames; an EHR launch's as its LaunchContext says
	// (need_patient_banner, default false: the EHR shows its own banner around the app).
	Banner bool
}

// Ref returns a reference to typ/id in the form Sessions and codes record, nil for "".
func Ref(typ, id string) map[string]any {
	if id == "" {
		return nil
	}
	return map[string]any{"resourceType": typ, "id": id}
}

// RefOf reads a reference to a resource in any of the forms a User or a LaunchContext
// may hold it: {"resourceType", "id"}, {"reference": "Type/id"} (FHIR's Reference, a
// relative URL) or the string "Type/id". ok is false for anything else.
func RefOf(v any) (typ, id string, ok bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case map[string]any:
		t, _ := x["resourceType"].(string)
		i, _ := x["id"].(string)
		if t != "" && i != "" {
			return t, i, resources.ValidID(i)
		}
		s, _ = x["reference"].(string)
	}
	typ, id, ok = strings.Cut(s, "/")
	if !ok || typ == "" || strings.Contains(id, "/") || !resources.ValidID(id) {
		return "", "", false
	}
	return typ, id, true
}

// validateLaunch checks a LaunchContext written through the API: patient (required) and
// encounter must reference a Patient and an Encounter, client (optional) a Client, and
// expires, when given, an instant at most LaunchTTL away. What it references is not
// checked for existence here: the authorization checks that the signed-in user may read
// the patient.
func (c *Codes) validateLaunch(_ context.Context, doc map[string]any) error {
	for _, f := range []struct {
		field, typ string
		required   bool
	}{{"patient", "Patient", true}, {"encounter", "Encounter", false}, {"client", "Client", false}} {
		v, ok := doc[f.field]
		if !ok {
			if f.required {
				return resources.Errorf(resources.CodeUnprocessable, "a LaunchContext needs patient, a reference to the Patient the app opens on")
			}
			continue
		}
		if typ, _, ok := RefOf(v); !ok || typ != f.typ {
			return resources.Errorf(resources.CodeUnprocessable, "LaunchContext.%s must reference a %s ({resourceType: %s, id: …} or {reference: %s/…})", f.field, f.typ, f.typ, f.typ)
		}
	}
	if v, ok := doc["need_patient_banner"]; ok {
		if _, isBool := v.(bool); !isBool {
			return resources.Errorf(resources.CodeUnprocessable, "LaunchContext.need_patient_banner must be true or false")
		}
	}
	if v, ok := doc["expires"]; ok {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return resources.Errorf(resources.CodeUnprocessable, "LaunchContext.expires must be an instant (2026-12-03T17:00:00Z)")
		}
		if t.After(c.now().Add(LaunchTTL + time.Minute)) {
			return resources.Errorf(resources.CodeUnprocessable, "LaunchContext.expires is at most %s away", LaunchTTL)
		}
	}
	return nil
}

// amendLaunch gives a new LaunchContext its expiry when the EHR gave none, and keeps an
// update from moving it: a launch lives LaunchTTL from its creation at most.
// It also records the expiry as exp (Unix seconds, hidden), by which the sweeper removes
// expired launches.
func (c *Codes) amendLaunch(_ context.Context, cur *resources.Resource, doc map[string]any) error {
	if cur != nil {
		old, err := decode(cur.Content)
		if err != nil {
			return resources.Internal(err)
		}
		doc["expires"] = old["expires"]
	} else if _, ok := doc["expires"]; !ok {
		doc["expires"] = resources.FormatInstant(c.now().UTC().Add(LaunchTTL))
	}
	s, _ := doc["expires"].(string)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return resources.Errorf(resources.CodeUnprocessable, "LaunchContext.expires must be an instant")
	}
	doc["exp"] = t.Unix()
	return nil
}

// Launch returns the launch context that the launch parameter id names for client: nil
// when there is no such LaunchContext, when it has expired, or when it was made for
// another client — the one answer for all three, so that a client learns nothing of
// others' launches.
func (c *Codes) Launch(ctx context.Context, id, client string) (*LaunchContext, error) {
	if !resources.ValidID(id) {
		return nil, nil
	}
	r, err := c.svc.Current(resources.WithTrusted(ctx), LaunchType, id)
	if err != nil || r == nil {
		return nil, err
	}
	doc, err := decode(r.Content)
	if err != nil {
		return nil, resources.Internal(err)
	}
	exp, _ := doc["expires"].(string)
	t, err := time.Parse(time.RFC3339, exp)
	if err != nil || !c.now().Before(t) {
		return nil, nil
	}
	if v, ok := doc["client"]; ok {
		if _, cid, _ := RefOf(v); cid != client {
			return nil, nil
		}
	}
	lc := &LaunchContext{}
	_, lc.Patient, _ = RefOf(doc["patient"])
	if v, ok := doc["encounter"]; ok {
		_, lc.Encounter, _ = RefOf(v)
	}
	lc.Banner = doc["need_patient_banner"] == true
	return lc, nil
}
