package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// FHIRBOX_KEY_ENCRYPTION_KEY and FHIRBOX_POLICY_DATABASE_URL (issue 12): read into the
// config, or refused with a message that names them.
func TestConfigKeyEncryptionAndPolicyURL(t *testing.T) {
	kek := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	c, err := parseConfig("serve", nil, envOf(map[string]string{
		"FHIRBOX_DATABASE_URL":        "postgres://u@h/db",
		"FHIRBOX_POLICY_DATABASE_URL": "postgres://p:pw@h/db",
		"FHIRBOX_KEY_ENCRYPTION_KEY":  kek,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.KeyEncryptionKey, bytes.Repeat([]byte{7}, 32)) || c.Database.PolicyURL != "postgres://p:pw@h/db" {
		t.Errorf("config %+v", c)
	}
	c, err = parseConfig("serve", []string{"--key-encryption-key", strings.Repeat("ab", 32), "--policy-database-url", "postgres://q@h/db"},
		envOf(map[string]string{"FHIRBOX_DATABASE_URL": "postgres://u@h/db"}), io.Discard)
	if err != nil || c.KeyEncryptionKey[0] != 0xab || c.Database.PolicyURL != "postgres://q@h/db" {
		t.Errorf("flags: %+v, %v", c, err)
	}
	for name, env := range map[string]map[string]string{
		"passphrase":        {"FHIRBOX_KEY_ENCRYPTION_KEY": "correct horse battery staple"},
		"short key":         {"FHIRBOX_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))},
		"policy URL sqlite": {"FHIRBOX_POLICY_DATABASE_URL": "postgres://p@h/db"},
		"policy URL kind":   {"FHIRBOX_DATABASE_URL": "postgres://u@h/db", "FHIRBOX_POLICY_DATABASE_URL": "sqlite:x.db"},
	} {
		_, err := parseConfig("serve", nil, envOf(env), io.Discard)
		want := "FHIRBOX_KEY_ENCRYPTION_KEY"
		if strings.HasPrefix(name, "policy") {
			want = "FHIRBOX_POLICY_DATABASE_URL"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, want)
		}
	}
}
