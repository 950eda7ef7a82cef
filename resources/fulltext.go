package resources

import (
	"html"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fhirbox/fhirbox/resources/fhirdate"
)

// Full-text search (_text over the narrative, _content over the whole resource).
//
// The text is cut into words here, in Go, and both stores index exactly these words:
// PostgreSQL as a tsvector made with array_to_tsvector (no parser, no dictionary), SQLite
// in an FTS5 table whose unicode61 tokenizer finds the same words again. A word is a run
// of letters and digits after NormalizeString (lower case, accents removed), so the
// matching is that of PostgreSQL's 'simple' configuration plus unaccent: no stemming and
// no stop words. Clinical text is full of drug names, codes and proper names that an
// English stemmer conflates or cuts (PostgreSQL's 'english' makes "hepatitis" "hepat"
// and "organic" and "organ" one word), resources are written in many languages, and its
// stop words would make the "A" of "vitamin A" or "hepatitis A" unsearchable; doing it in Go also
// makes both databases, whatever their locale, give the same answers.

// Full-text limits. A resource's text beyond MaxFullTextBytes (per column, counted in the
// distinct words kept) is not indexed: PostgreSQL refuses a tsvector past 1 MB, and the
// cost of a write grows with its words. Words longer than MaxWordBytes (base64 data,
// long identifiers) are not indexed either, and a search for one is refused.
const (
	MaxFullTextBytes = 64 << 10
	MaxWordBytes     = 64
	// MaxFullTextWords caps the words of one _text or _content value (they are AND-ed).
	MaxFullTextWords = 32
)

// Columns of the full-text parameters: they read the search_text table, not an index
// table of the registry's parameters (see SearchParam.Column).
const (
	ColumnNarrative = "narrative"
	ColumnContent   = "content"
)

// TextParam and ContentParam are the full-text parameters every type has. They are not
// in the registry: the parser recognises them by name.
var (
	TextParam = &SearchParam{Name: "_text", Type: TypeString, Column: ColumnNarrative,
		Description: "Words of the narrative (text.div), all of them (comma: any of the values)"}
	ContentParam = &SearchParam{Name: "_content", Type: TypeString, Column: ColumnContent,
		Description: "Words of the resource's text, narrative included (comma: any of the values)"}
)

// fullTextParam returns the full-text parameter called name, or nil.
func fullTextParam(name string) *SearchParam {
	switch name {
	case "_text":
		return TextParam
	case "_content":
		return ContentParam
	}
	return nil
}

// FullText is the text of a resource version that _text and _content search: each a
// space-separated list of distinct words (see Words), in the order first met.
type FullText struct {
	Narrative string
	Content   string
}

// contentSkipped are the keys whose string values say nothing a person searches for:
// ids, references, code systems and URLs, base64 data, and meta (the server's
// bookkeeping; tags and profiles have parameters of their own).
var contentSkipped = map[string]bool{
	"id": true, "meta": true, "reference": true, "system": true, "url": true, "fullUrl": true,
	"data": true, "resourceType": true,
}

// ExtractFullText returns the full text of doc: the words of its narrative (text.div,
// tags removed and entities decoded) and of every string value of the resource
// (narrative included; keys, contentSkipped, dates and the top-level fields of skip —
// secret and hidden ones — left out; text.status too).
func ExtractFullText(doc map[string]any, skip []string) FullText {
	narrative := newWordSet()
	if t, ok := doc["text"].(map[string]any); ok {
		if div, ok := t["div"].(string); ok {
			narrative.addText(StripXHTML(div))
		}
	}
	// The content begins with the narrative's words: a copy, not a second reading.
	content := narrative.clone()
	for k, v := range doc {
		if k == "text" || contentSkipped[k] || slices.Contains(skip, k) {
			continue
		}
		content.addValue(v)
	}
	return FullText{Narrative: narrative.text.String(), Content: content.text.String()}
}

// wordSet collects distinct words up to MaxFullTextBytes.
type wordSet struct {
	seen map[string]struct{}
	text strings.Builder // the words, space-separated, in the order first met
	size int
	buf  []byte // scratch for eachWord
}

func newWordSet() *wordSet { return &wordSet{seen: map[string]struct{}{}} }

func (ws *wordSet) clone() *wordSet {
	c := &wordSet{seen: maps.Clone(ws.seen), size: ws.size}
	c.text.WriteString(ws.text.String())
	return c
}

func (ws *wordSet) full() bool { return ws.size >= MaxFullTextBytes }

func (ws *wordSet) addText(s string) {
	if ws.full() || s == "" {
		return
	}
	ws.buf = eachWord(s, ws.buf, func(w []byte) bool {
		if _, dup := ws.seen[string(w)]; dup || len(w) > MaxWordBytes {
			return true
		}
		if ws.size+len(w)+1 > MaxFullTextBytes {
			ws.size = MaxFullTextBytes
			return false
		}
		if ws.text.Len() > 0 {
			ws.text.WriteByte(' ')
		}
		start := ws.text.Len()
		ws.text.Write(w)
		// The key is the word's bytes in text, which a Builder never changes once written.
		ws.seen[ws.text.String()[start:]] = struct{}{}
		ws.size += len(w) + 1
		return true
	})
}

// addValue adds the words of every string in v, skipping the keys of contentSkipped and
// nested narratives (a contained resource's text.div is XHTML, stripped like the
// resource's own).
func (ws *wordSet) addValue(v any) {
	if ws.full() {
		return
	}
	switch x := v.(type) {
	case string:
		if !isDate(x) {
			ws.addText(x)
		}
	case []any:
		for _, e := range x {
			ws.addValue(e)
		}
	case map[string]any:
		for k, e := range x {
			switch {
			case contentSkipped[k]:
			case k == "div":
				if s, ok := e.(string); ok {
					ws.addText(StripXHTML(s))
				}
			case k == "status" && x["div"] != nil:
				// A narrative's status (generated, extensions…) is no text of the resource.
			default:
				ws.addValue(e)
			}
		}
	}
}

// Words cuts s into the words full-text search indexes and looks for: runs of letters
// and digits of NormalizeString(s), in order, repeats included.
func Words(s string) []string {
	return strings.FieldsFunc(NormalizeString(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
}

// eachWord calls yield with the words of s, as Words cuts them, until it returns false.
// A word is written in buf, returned for the next call, and holds only during its
// yield. ASCII text, where a word is a run of letters and digits in lower case, is cut
// without normalising it into a new string first.
func eachWord(s string, buf []byte, yield func(w []byte) bool) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			for _, w := range Words(s) {
				if buf = append(buf[:0], w...); !yield(buf) {
					break
				}
			}
			return buf
		}
	}
	for i := 0; i < len(s); {
		if !asciiAlnum(s[i]) {
			i++
			continue
		}
		buf = buf[:0]
		for ; i < len(s) && asciiAlnum(s[i]); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		}
		if !yield(buf) {
			break
		}
	}
	return buf
}

func asciiAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// StripXHTML returns the text of an XHTML fragment: tags (and comments) replaced by a
// space, entities decoded. It reads a narrative, which the server does not validate, so
// anything that is not a tag is taken as text.
func StripXHTML(s string) string {
	if !strings.ContainsAny(s, "<&") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			b.WriteString(s[i : i+j])
			i += j
			continue
		}
		if strings.HasPrefix(s[i:], "<!--") {
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				break
			}
			i += 4 + end + 3
			b.WriteByte(' ')
			continue
		}
		// A tag ends at the first '>' outside a quoted attribute value.
		j, quote := i+1, byte(0)
	tag:
		for ; j < len(s); j++ {
			switch {
			case quote != 0:
				if s[j] == quote {
					quote = 0
				}
			case s[j] == '"' || s[j] == '\'':
				quote = s[j]
			case s[j] == '>':
				break tag
			}
		}
		b.WriteByte(' ')
		i = j + 1
	}
	return html.UnescapeString(b.String())
}

// fullText parses one occurrence of _text or _content: each comma-separated value is a
// set of words that must all be found; the values are OR-ed. Value.Str holds a value's
// distinct words, space-separated.
func (p *searchParser) fullText(sp *SearchParam, name, mod, raw string) error {
	if mod != "" {
		return invalid(name, "modifier :%s is not supported on %s", mod, sp.Name)
	}
	c := Clause{Param: sp}
	var used []string
	for _, item := range splitEscaped(raw, ',') {
		if item == "" {
			continue
		}
		text := unescape(item)
		words := Words(text)
		if len(words) == 0 {
			return invalid(name, "%s: %q has no word to search for (letters or digits)", name, text)
		}
		if len(words) > MaxFullTextWords {
			return invalid(name, "%s: %d words in one value; at most %d", name, len(words), MaxFullTextWords)
		}
		var distinct []string
		for _, w := range words {
			if len(w) > MaxWordBytes {
				return invalid(name, "%s: the word %q is longer than any word the full-text index holds (%d bytes)", name, w, MaxWordBytes)
			}
			if !slices.Contains(distinct, w) {
				distinct = append(distinct, w)
			}
		}
		c.Values = append(c.Values, Value{Raw: item, Str: strings.Join(distinct, " ")})
		used = append(used, item)
	}
	if len(c.Values) == 0 {
		return nil
	}
	p.q.Clauses = append(p.q.Clauses, c)
	p.q.Used.Add(sp.Name, strings.Join(used, ","))
	return nil
}

// isDate reports whether s is a FHIR date, dateTime or instant: its numbers are no words
// anyone searches for ("2011-10-04T10:…" would index "04t10"), and the date parameters
// find them.
func isDate(s string) bool {
	if len(s) < 4 || s[0] < '0' || s[0] > '9' || (len(s) > 4 && s[4] != '-') {
		return false
	}
	_, _, err := fhirdate.ParseRange(s)
	return err == nil
}
