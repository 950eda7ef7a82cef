package testdb

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Browser tests drive a headless Chromium (Debian's chromium package). Like PostgreSQL,
// it is optional on a developer's machine and required in CI: FHIRBOX_TEST_BROWSER=required
// (.ci/run sets it) turns a missing browser into a failure; otherwise the tests skip and
// the package says so once.

// browserNames are the executables looked for in PATH, in order.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

var browserNotice sync.Once

// Browser returns the path of a Chromium to drive, FHIRBOX_TEST_BROWSER_PATH when set.
// Without one, it fails t when FHIRBOX_TEST_BROWSER=required, and skips it otherwise,
// telling the person running the tests once, in one line, how to run them.
func Browser(t testing.TB) string {
	t.Helper()
	path := os.Getenv("FHIRBOX_TEST_BROWSER_PATH")
	if path == "" {
		for _, name := range browserNames {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path != "" {
		return path
	}
	if os.Getenv("FHIRBOX_TEST_BROWSER") == "required" {
		t.Fatalf("testdb: FHIRBOX_TEST_BROWSER=required but no browser was found (%v in PATH, or FHIRBOX_TEST_BROWSER_PATH)", browserNames)
	}
	browserNotice.Do(func() {
		toTerminal(packagePath() + ": browser tests skipped: no chromium in PATH; to run them, apt-get install chromium (or set FHIRBOX_TEST_BROWSER_PATH)")
	})
	t.Skip("testdb: browser tests skipped: no chromium in PATH")
	return ""
}
