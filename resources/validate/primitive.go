package validate

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// primitive checks v as a value of the primitive type typ (conformance V3): the JSON
// kind (boolean, number, string) and the type's regex from the specification, plus
// what a regex cannot say (a day that exists in its month, a 32-bit integer). It
// returns the value as text and whether it is valid.
func (c *checker) primitive(path, typ string, v any) (string, bool) {
	switch typ {
	case "boolean":
		if _, ok := v.(bool); !ok {
			c.add(CodeValue, path, fmt.Sprintf("must be a JSON boolean (true or false), not %s", describe(v)))
			return "", false
		}
		return "", true
	case "integer", "positiveInt", "unsignedInt", "decimal":
		s, ok := numberText(v)
		if !ok {
			c.add(CodeValue, path, fmt.Sprintf("must be a JSON number (a %s), not %s", typ, describe(v)))
			return "", false
		}
		if re := c.v.regex[typ]; re != nil && !re.MatchString(s) {
			c.add(CodeValue, path, fmt.Sprintf("%s is not a valid %s", s, typ))
			return "", false
		}
		if typ != "decimal" {
			if n, err := strconv.ParseInt(s, 10, 64); err != nil || n > math.MaxInt32 || n < math.MinInt32 {
				c.add(CodeValue, path, fmt.Sprintf("%s is outside the range of a %s (32 bits)", s, typ))
				return "", false
			}
		}
		return s, true
	}
	s, ok := v.(string)
	if !ok {
		c.add(CodeValue, path, fmt.Sprintf("must be a JSON string (a %s), not %s", typ, describe(v)))
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		// FHIR R4 §2.6.2: a value is absent or has at least one character that is not
		// whitespace.
		c.add(CodeValue, path, "an empty or blank value is not allowed: leave the element out")
		return "", false
	}
	switch typ {
	case "string", "markdown", "xhtml":
		return s, true // the regex [ \r\n\t\S]+ says only: not empty
	case "uri", "url", "canonical":
		if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
			c.add(CodeValue, path, fmt.Sprintf("%q is not a valid %s: it contains whitespace", clip(s), typ))
			return "", false
		}
		return s, true
	}
	if re := c.v.regex[typ]; re != nil && !re.MatchString(s) {
		c.add(CodeValue, path, fmt.Sprintf("%q is not a valid %s", clip(s), typ))
		return "", false
	}
	switch typ {
	case "date", "dateTime", "instant":
		if !dayExists(s) {
			c.add(CodeValue, path, fmt.Sprintf("%q is not a valid %s: no such day", clip(s), typ))
			return "", false
		}
	}
	return s, true
}

// dayExists reports whether the day of a date that matched its regex (YYYY-MM-DD…)
// is in its month: the regex allows 31 days in every month.
func dayExists(s string) bool {
	if len(s) < 10 {
		return true
	}
	y, _ := strconv.Atoi(s[0:4])
	m, _ := strconv.Atoi(s[5:7])
	d, _ := strconv.Atoi(s[8:10])
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && (y%4 == 0 && y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

func numberText(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return string(n), true
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64), true
	case int:
		return strconv.Itoa(n), true
	case int64:
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

// describe names the JSON kind of v for messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	if _, ok := numberText(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
