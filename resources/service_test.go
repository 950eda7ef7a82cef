package resources

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// conformance F18: ValidID accepts FHIR's id syntax and nothing else; the fuzz target holds
// it to the regular expression of the specification.
func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "Patient-1.2": true, strings.Repeat("x", 64): true, "ABCxyz019-.": true,
		"": false, strings.Repeat("x", 65): false, "a_b": false, "a/b": false, "a b": false, "é": false, "a\x00": false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func FuzzValidID(f *testing.F) {
	spec := regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	for _, s := range []string{"a", "", "a_b", strings.Repeat("y", 64), strings.Repeat("y", 65), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidID(id), spec.MatchString(id); got != want {
			t.Errorf("ValidID(%q) = %v, the specification's pattern says %v", id, got, want)
		}
	})
}

// Server-assigned ids are UUIDv7: valid FHIR ids that increase as they are made, so that
// creates append to the id indexes.
func TestNewID(t *testing.T) {
	prev := ""
	for range 2000 {
		id := NewID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || !ValidID(id) {
			t.Fatalf("NewID() = %q: version %d, variant %v, err %v", id, u.Version(), u.Variant(), err)
		}
		if id <= prev {
			t.Fatalf("NewID() = %q after %q: not increasing", id, prev)
		}
		prev = id
	}
	if ms := time.UnixMilli(int64(binaryTime(prev))); time.Since(ms).Abs() > time.Minute {
		t.Errorf("the id's time %s is not now", ms)
	}
}

// binaryTime reads the 48-bit Unix millisecond time of a UUIDv7.
func binaryTime(id string) uint64 {
	u := uuid.MustParse(id)
	var ms uint64
	for _, b := range u[:6] {
		ms = ms<<8 | uint64(b)
	}
	return ms
}

// The ETag a version is served with is the one If-Match and If-None-Match read back,
// and the forms clients write by hand read as the same version.
func TestETagRoundTrip(t *testing.T) {
	for _, v := range []int64{1, 7, 41, 1 << 40} {
		tag := ETag(v)
		if got, err := ParseETag(tag); err != nil || got != v {
			t.Errorf("ParseETag(%s) = %d, %v", tag, got, err)
		}
	}
	if got := ETag(3); got != `W/"3"` {
		t.Errorf("ETag(3) = %s", got)
	}
	for _, tag := range []string{`"3"`, `3`, ` W/"3" `} {
		if got, err := ParseETag(tag); err != nil || got != 3 {
			t.Errorf("ParseETag(%q) = %d, %v", tag, got, err)
		}
	}
	for _, tag := range []string{``, `W/"0"`, `W/"x"`, `W/"-1"`} {
		if _, err := ParseETag(tag); ErrorCode(err) != CodeInvalid {
			t.Errorf("ParseETag(%q): %v, want invalid", tag, err)
		}
	}
}

// readStore answers Read from a map; the other Store methods are not called.
type readStore struct {
	Store
	rows map[string]*Resource
	err  error
}

func (s readStore) Read(_ context.Context, typ, id string) (*Resource, error) {
	if s.err != nil {
		return nil, s.err
	}
	if r, ok := s.rows[typ+"/"+id]; ok {
		return r, nil
	}
	return nil, Errorf(CodeNotFound, "%s/%s not found", typ, id)
}

// Current is the server's own read: what is there, or nil for what is not (never
// written, deleted, an impossible id), and the store's failures as they are.
func TestCurrent(t *testing.T) {
	live := &Resource{Type: "Client", ID: "c1", VersionID: 2}
	store := readStore{rows: map[string]*Resource{
		"Client/c1":   live,
		"Client/gone": {Type: "Client", ID: "gone", VersionID: 3, Deleted: true},
	}}
	svc := NewService(nil, store, Options{})
	for _, tc := range []struct {
		id   string
		want *Resource
	}{{"c1", live}, {"gone", nil}, {"never", nil}, {"not/an id", nil}, {"", nil}} {
		got, err := svc.Current(context.Background(), "Client", tc.id)
		if got != tc.want || err != nil {
			t.Errorf("Current(%q) = %v, %v; want %v", tc.id, got, err, tc.want)
		}
	}
	down := Errorf(CodeUnavailable, "database unreachable")
	svc = NewService(nil, readStore{err: down}, Options{})
	if got, err := svc.Current(context.Background(), "Client", "c1"); got != nil || err != down {
		t.Errorf("store failure: %v, %v", got, err)
	}
}
