package server_test

import (
	"go/scanner"
	gotoken "go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Requirement tags, as docs/conformance.md defines them: an anchor per tag.
var (
	anchorRe = regexp.MustCompile(`<a id="([A-Z][0-9]{1,2})"></a>`)
	// A citation in a comment: "conformance F9", "conformance C1, C5", "conformance J1–J9".
	citeRe = regexp.MustCompile(`conformance ([A-Z][0-9]{1,2}(?:(?:, |–| and | or )[A-Z][0-9]{1,2})*)`)
	// Something shaped like a tag of one of the document's letters, anywhere.
	tagRe = regexp.MustCompile(`(?:^|[^A-Za-z0-9_])([CTBRIPSJFM][0-9]{1,2})(?:[^A-Za-z0-9_]|$)`)
	// A tag inside a string literal: at the start of a subtest or failure-message name,
	// or in parentheses.
	stringTagRe = regexp.MustCompile(`(?:^|[ (])([CTBRIPSJFM][0-9]{1,2})[ :),]`)
	// Test and fuzz functions that docs/conformance.md names.
	docTestRe = regexp.MustCompile("`((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)`")
)

// TestConformanceTagsResolve keeps docs/conformance.md and the code in step: every tag a
// comment cites follows the word "conformance" and has its entry in the document; a tag in a
// string (a subtest or failure message) has one too; and every test the document names
// exists, so a rename cannot leave it pointing at nothing.
func TestConformanceTagsResolve(t *testing.T) {
	root := repoRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "conformance.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range anchorRe.FindAllStringSubmatch(string(doc), -1) {
		if defined[m[1]] {
			t.Errorf("docs/conformance.md defines %s twice", m[1])
		}
		defined[m[1]] = true
	}
	if len(defined) == 0 {
		t.Fatal("docs/conformance.md defines no tag")
	}

	funcs := map[string]bool{}
	cited := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fset := gotoken.NewFileSet()
		file := fset.AddFile(rel, -1, len(src))
		var s scanner.Scanner
		s.Init(file, src, nil, scanner.ScanComments)
		prevFunc := false
		for {
			pos, tok, lit := s.Scan()
			if tok == gotoken.EOF {
				break
			}
			at := fset.Position(pos)
			switch tok {
			case gotoken.IDENT:
				if prevFunc {
					funcs[lit] = true
				}
			case gotoken.COMMENT:
				cited += checkComment(t, at, lit, defined)
			case gotoken.STRING:
				if v, err := strconv.Unquote(lit); err == nil {
					for _, m := range stringTagRe.FindAllStringSubmatch(v, -1) {
						cited++
						if !defined[m[1]] {
							t.Errorf("%s: string %q names %s, which docs/conformance.md does not define", at, v, m[1])
						}
					}
				}
			}
			prevFunc = tok == gotoken.FUNC
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	named := 0
	for _, m := range docTestRe.FindAllStringSubmatch(string(doc), -1) {
		named++
		if !funcs[m[1]] {
			t.Errorf("docs/conformance.md names %s, which no .go file defines", m[1])
		}
	}
	t.Logf("%d tags defined, %d citations in code resolved, %d test names in the document found", len(defined), cited, named)
}

// checkComment checks the tags of one comment and returns how many it cites.
func checkComment(t *testing.T, at gotoken.Position, text string, defined map[string]bool) int {
	t.Helper()
	n := 0
	for _, m := range citeRe.FindAllStringSubmatchIndex(text, -1) {
		for _, tag := range expandTags(text[m[2]:m[3]]) {
			n++
			if !defined[tag] {
				t.Errorf("%s: %q cites %s, which docs/conformance.md does not define", at, text, tag)
			}
		}
	}
	// Whatever is left must not look like a tag: a bare one reads as no link at all.
	rest := citeRe.ReplaceAllStringFunc(text, func(s string) string { return strings.Repeat(" ", len(s)) })
	for _, m := range tagRe.FindAllStringSubmatchIndex(rest, -1) {
		tag, after := rest[m[2]:m[3]], rest[m[3]:]
		if len(after) >= 2 && after[0] == ':' && after[1] >= '0' && after[1] <= '9' {
			continue // a time of day: "T10:20:30Z"
		}
		if tag == "R4" {
			continue // FHIR release 4, as everywhere in the code; the tag R4 is cited as "conformance R4"
		}
		t.Errorf("%s: %q names %s without \"conformance \" in front of it", at, text, tag)
	}
	return n
}

// expandTags turns a list of tags ("conformance C1, C5", "conformance J1–J9") into the
// tags it cites; a range stands for each tag from its first to its last.
func expandTags(list string) []string {
	var out []string
	for _, part := range regexp.MustCompile(`, | and | or `).Split(list, -1) {
		from, to, isRange := strings.Cut(part, "–")
		if !isRange {
			out = append(out, part)
			continue
		}
		a, errA := strconv.Atoi(from[1:])
		b, errB := strconv.Atoi(to[1:])
		if errA != nil || errB != nil || from[0] != to[0] || a > b {
			out = append(out, from, to) // reported as written
			continue
		}
		for i := a; i <= b; i++ {
			out = append(out, from[:1]+strconv.Itoa(i))
		}
	}
	return out
}

// repoRoot is the directory of go.mod above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
