package server_test

import (
	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/resources"
)

// withValidation sets the server's R4 validation of writes (FHIRBOX_VALIDATION).
func withValidation(m resources.ValidationMode) envOption {
	return func(c *app.Config) { c.Validation = m }
}
