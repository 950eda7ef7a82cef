package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// A write marked WithFreshID skips the row look-up; if the id exists after all, the
// unique violation sends it down the ordinary path, where fn sees the current version.
func TestWriteFreshIDCollision(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	put := func(ctx context.Context, content string) (*resources.Resource, *resources.Resource, error) {
		var seen *resources.Resource
		r, err := s.Write(ctx, "Basic", "same", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			seen = cur
			v := int64(1)
			if cur != nil {
				v = cur.VersionID + 1
			}
			return &resources.Resource{Type: "Basic", ID: "same", VersionID: v, LastUpdated: time.Now(), Content: []byte(content)}, &resources.Index{}, nil
		})
		return r, seen, err
	}
	if r, seen, err := put(resources.WithFreshID(ctx), `{"n":1}`); err != nil || seen != nil || r.VersionID != 1 {
		t.Fatalf("fresh create: %v %v %v", r, seen, err)
	}
	r, seen, err := put(resources.WithFreshID(ctx), `{"n":2}`)
	if err != nil || seen == nil || seen.VersionID != 1 || r.VersionID != 2 {
		t.Fatalf("a taken id written as fresh: %+v seen %+v err %v", r, seen, err)
	}
	got, err := s.Read(ctx, "Basic", "same")
	if err != nil || string(got.Content) != `{"n": 2}` && string(got.Content) != `{"n":2}` {
		t.Errorf("read back %s %v", got.Content, err)
	}
}
