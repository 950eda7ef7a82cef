package resources

import (
	"sync"
	"testing"
)

// A SearchParameter changes the registry by a new snapshot: a TypeDef read before keeps
// what it had, the types it does not touch are shared, Extract and ParseSearch see the
// parameter at once, and removing it restores the type as built.
func TestRegistryCustomCopyOnWrite(t *testing.T) {
	reg := DefaultRegistry()
	before, _ := reg.Type("Patient")
	obsBefore, _ := reg.Type("Observation")
	doc := map[string]any{"code": "nick", "base": []any{"Patient"}, "type": "string", "status": "active",
		"expression": "Patient.extension('http://example.org/nick').value"}
	c, err := reg.ParseSearchParameter("nick", doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetCustom(c); err != nil {
		t.Fatal(err)
	}
	after, _ := reg.Type("Patient")
	if before.Param("nick") != nil || after.Param("nick") == nil || after == before {
		t.Fatalf("Patient before has nick: %v; after: %v", before.Param("nick") != nil, after.Param("nick") != nil)
	}
	if obsAfter, _ := reg.Type("Observation"); obsAfter != obsBefore {
		t.Error("a type the parameter does not touch was copied")
	}
	idx, err := reg.Extract("Patient", map[string]any{"resourceType": "Patient",
		"extension": []any{map[string]any{"url": "http://example.org/nick", "valueString": "Bobby"}}})
	if err != nil || len(idx.Strings) != 1 || idx.Strings[0].Param != "nick" || idx.Strings[0].Value != "bobby" {
		t.Errorf("Extract: %+v, %v", idx, err)
	}
	if _, err := ParseSearch(reg, "Patient", map[string][]string{"nick": {"bob"}}, ParseOptions{Strict: true}); err != nil {
		t.Errorf("ParseSearch: %v", err)
	}
	// The same code from another SearchParameter clashes; its own new version does not.
	if _, err := reg.ParseSearchParameter("other", doc); err == nil {
		t.Error("a second SearchParameter with the code was accepted")
	}
	if _, err := reg.ParseSearchParameter("nick", doc); err != nil {
		t.Errorf("a new version of the same SearchParameter: %v", err)
	}
	if reg.RemoveCustom("nick") == nil {
		t.Fatal("RemoveCustom found nothing")
	}
	if td, _ := reg.Type("Patient"); td.Param("nick") != nil || len(td.indexed) != len(before.indexed) {
		t.Error("the parameter outlived its removal")
	}
}

// Readers never see a half-made snapshot while SearchParameters come and go (go test
// -race checks the rest).
func TestRegistryConcurrentChanges(t *testing.T) {
	reg := DefaultRegistry()
	doc := map[string]any{"code": "nick", "base": []any{"Patient", "Person"}, "type": "string", "status": "draft",
		"expression": "Patient.name.text | Person.name.text"}
	c, err := reg.ParseSearchParameter("nick", doc)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			td, _ := reg.Type("Patient")
			if p := td.Param("nick"); p != nil && !p.Indexing() {
				t.Error("a draft parameter is not marked indexing")
				return
			}
			if _, err := reg.Extract("Patient", map[string]any{"name": []any{map[string]any{"text": "x"}}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		if err := reg.SetCustom(c); err != nil {
			t.Fatal(err)
		}
		reg.RemoveCustom("nick")
	}
	close(stop)
	wg.Wait()
}
