package apiserver

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"
)

// The fast path of Request.Decode. Every API call of the SDKs sends a flat
// object of strings, and encoding/json, then checkStrict and checkNames,
// took nearly half of a reference server's handling of one (the profile of
// BenchmarkLifecycle). decodeFlat decodes exactly that shape itself, and
// leaves anything else to the full path: it either decodes the body as the
// full path would, with no error, or reports false having changed nothing,
// and the full path then decodes it and names what is wrong. FuzzDecodeFlat
// checks that both paths agree on every body.
//
// The shape: optional JSON whitespace, an object whose keys are each
// exactly (case included) the json name of a string field of the struct,
// none twice, with no escapes, and whose values are strings of valid UTF-8
// with no control characters and no escapes but the two-character ones
// (\" \\ \/ \b \f \n \r \t: an Event of JSON has them); then only
// whitespace.

// maxFlatKeys is how many keys the fast path takes.
const maxFlatKeys = 16

// flatLayout is a struct type as the fast path sees it: the field index of
// each json name of a string field, or ok false when the type is not for
// the fast path (not a struct, an embedded field, a name encoding/json
// might read otherwise, a decoder of its own).
type flatLayout struct {
	ok     bool
	fields map[string]int
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func decodesItself(t reflect.Type) bool {
	return t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
		reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
}

func (c *fieldCache) flatOf(t reflect.Type) *flatLayout {
	if c != nil {
		if l, ok := c.flat.Load(t); ok {
			return l.(*flatLayout)
		}
	}
	l := newFlatLayout(t)
	if c != nil {
		c.flat.Store(t, l)
	}
	return l
}

func newFlatLayout(t reflect.Type) *flatLayout {
	no := &flatLayout{}
	if t.Kind() != reflect.Struct || decodesItself(t) {
		return no
	}
	l := &flatLayout{ok: true, fields: make(map[string]int)}
	seen := make(map[string]bool)
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return no
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if opts != "" && opts != "omitempty" || tag == "-" {
			return no // ",string", "-" and the like: the full path
		}
		if name == "" {
			name = f.Name
		}
		if !plainName(name) {
			return no
		}
		folded := strings.ToLower(name)
		if seen[folded] {
			return no // names that differ only in case: encoding/json's rules
		}
		seen[folded] = true
		if f.Type.Kind() == reflect.String && !decodesItself(f.Type) {
			l.fields[name] = i
		}
	}
	return l
}

// plainName: ASCII letters, digits and '_', which encoding/json takes as
// they are.
func plainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return s != ""
}

// decodeFlat decodes body into v, a pointer to a struct, when body has the
// shape the fast path takes; otherwise it changes nothing and reports
// false.
func decodeFlat(body []byte, v any, cache *fieldCache) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	layout := cache.flatOf(rv.Type().Elem())
	if !layout.ok {
		return false
	}
	type span struct {
		field, start, end int
		escaped           bool
	}
	var spans [maxFlatKeys]span
	n := 0
	i := skipSpace(body, 0)
	if i == len(body) {
		return true // an empty body is an empty object
	}
	if body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			start, end, escaped, ok := plainString(body, i)
			if !ok || escaped {
				return false
			}
			field, known := layout.fields[string(body[start:end])]
			if !known || n == maxFlatKeys {
				return false
			}
			for _, s := range spans[:n] {
				if s.field == field {
					return false // a key twice
				}
			}
			i = skipSpace(body, end+1)
			if i == len(body) || body[i] != ':' {
				return false
			}
			vs, ve, escaped, ok := plainString(body, skipSpace(body, i+1))
			if !ok || !utf8.Valid(body[vs:ve]) {
				return false
			}
			spans[n] = span{field, vs, ve, escaped}
			n++
			i = skipSpace(body, ve+1)
			if i == len(body) {
				return false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return false
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return false
	}
	elem := rv.Elem()
	for _, s := range spans[:n] {
		raw := body[s.start:s.end]
		if s.escaped {
			elem.Field(s.field).SetString(unescape(raw))
		} else {
			elem.Field(s.field).SetString(string(raw))
		}
	}
	return true
}

// unescape returns the content of a string plainString accepted, its
// escapes replaced by what they stand for.
func unescape(raw []byte) string {
	var buf [256]byte
	out := buf[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' {
			i++
			c = unescaped(raw[i])
		}
		out = append(out, c)
	}
	return string(out)
}

// unescaped is the byte a two-character escape stands for; 0 for the
// others.
func unescaped(c byte) byte {
	switch c {
	case '"', '\\', '/':
		return c
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}

// plainString finds the string that opens at body[i]: its content is
// body[start:end] and body[end] its closing quote; escaped tells whether
// it has escapes, all of them two-character ones. ok is false when there
// is none, or it has a control character or another escape (\u…).
func plainString(body []byte, i int) (start, end int, escaped, ok bool) {
	if i >= len(body) || body[i] != '"' {
		return 0, 0, false, false
	}
	for j := i + 1; j < len(body); j++ {
		switch c := body[j]; {
		case c == '"':
			return i + 1, j, escaped, true
		case c == '\\':
			if j+1 == len(body) || unescaped(body[j+1]) == 0 {
				return 0, 0, false, false
			}
			escaped = true
			j++
		case c < 0x20:
			return 0, 0, false, false
		}
	}
	return 0, 0, false, false
}

func skipSpace(body []byte, i int) int {
	for i < len(body) {
		switch body[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
