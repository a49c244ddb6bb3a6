package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"

	"github.com/tcconcurrency/sdk-go/internal/apierr"
)

// Decode reads the request's body into v strictly, mapping failures to the
// codes the real API uses: InvalidParameter.JsonParseError for malformed
// JSON, UnknownParameter for a field the action does not have, and
// InvalidParameterValue for a value of the wrong type. Each message names
// the field. An empty body is an empty object.
//
// The body must be strict JSON: bytes that are not UTF-8 in a string, a
// \u escape of a lone UTF-16 surrogate, or a key given twice in one
// object (at any depth, compared after unescaping) are refused with
// InvalidParameter.JsonParseError, where encoding/json would fold the first
// two into U+FFFD and keep the last of the duplicates.
//
// Parameter names are case-sensitive, as on the real service: encoding/json
// would take "userid" for "UserId", so the top-level names are checked
// against v's json tags after decoding, with each type's names kept in the
// server's cache. (Nested objects keep encoding/json's leniency.)
func (r *Request) Decode(v any) *Error {
	if decodeFlat(r.Body, v, r.names) {
		return nil
	}
	return decodeFull(r.Body, v, r.names)
}

// decodeFull is Decode without its fast path (decodeFlat).
func decodeFull(body []byte, v any, names *fieldCache) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		switch issue, key := checkStrict(body); issue {
		case strictInvalidUTF8:
			return Errorf("InvalidParameter.JsonParseError", "the request body is not valid JSON: a string holds bytes that are not UTF-8")
		case strictLoneSurrogate:
			return Errorf("InvalidParameter.JsonParseError", "the request body is not valid JSON: a \\u escape is half of a UTF-16 surrogate pair")
		case strictDuplicateKey:
			return Errorf("InvalidParameter.JsonParseError", "the request body is not valid JSON: the key %q appears twice in one object", clipKey(key))
		}
		return checkNames(body, v, names)
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && strings.Contains(syntax.Error(), "after top-level value"):
		return Errorf("InvalidParameter.JsonParseError", "the request body must be a single JSON object")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Errorf("InvalidParameter.JsonParseError", "the request body is not valid JSON: %v", err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Errorf("InvalidParameter.JsonParseError", "the request body must be a JSON object")
		}
		return Errorf("InvalidParameterValue", "the parameter `%s` must be of type %s, got a JSON %s", typ.Field, typeName(typ.Type.String()), typ.Value)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return Errorf(apierr.CodeUnknownParameter, "the parameter `%s` is not recognized", strings.Trim(field, `"`))
	}
	return Errorf("InvalidParameter.JsonParseError", "the request body cannot be decoded: %v", err)
}

func clipKey(k string) string {
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return strings.ToValidUTF8(k, "?")
}

func typeName(goType string) string {
	switch {
	case goType == "string":
		return "String"
	case strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "int"):
		return "Integer"
	case strings.HasPrefix(goType, "float"):
		return "Float"
	case goType == "bool":
		return "Boolean"
	case strings.HasPrefix(goType, "[]"):
		return "Array"
	}
	return "Object"
}

// Require returns MissingParameter naming the first empty field of pairs
// (name, value, name, value…).
func Require(pairs ...string) *Error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return Errorf(apierr.CodeMissingParameter, "the parameter `%s` is required", pairs[i])
		}
	}
	return nil
}

// fieldCache keeps the json names of struct types' fields; a nil cache
// keeps nothing.
type fieldCache struct {
	m    sync.Map // reflect.Type → map[string]bool
	flat sync.Map // reflect.Type → *flatLayout
}

func (c *fieldCache) namesOf(t reflect.Type) map[string]bool {
	if c != nil {
		if m, ok := c.m.Load(t); ok {
			return m.(map[string]bool)
		}
	}
	names := make(map[string]bool)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	if c != nil {
		c.m.Store(t, names)
	}
	return names
}

// checkNames reports a top-level name of body that is not exactly a field
// of v: an unknown parameter, or one whose case is wrong. body is valid
// JSON (it was just decoded), so a small scanner finds the keys without
// allocating.
func checkNames(body []byte, v any, cache *fieldCache) *Error {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	names := cache.namesOf(t)
	depth, inString, escaped, expectKey := 0, false, false, false
	keyStart := -1
	for i, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if keyStart >= 0 {
					if e := checkKey(body[keyStart:i], names); e != nil {
						return e
					}
					keyStart = -1
				}
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && expectKey {
				keyStart, expectKey = i+1, false
			}
		case '{', '[':
			depth++
			expectKey = depth == 1 && c == '{'
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		}
	}
	return nil
}

func checkKey(raw []byte, names map[string]bool) *Error {
	if names[string(raw)] { // the common case; the lookup does not allocate
		return nil
	}
	key := string(raw)
	if bytes.IndexByte(raw, '\\') >= 0 { // escaped: let encoding/json unquote it
		if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &key) != nil {
			return nil
		}
	}
	if names[key] {
		return nil
	}
	for name := range names {
		if strings.EqualFold(name, key) {
			return Errorf(apierr.CodeUnknownParameter, "the parameter `%s` is not recognized (names are case-sensitive: did you mean `%s`?)", key, name)
		}
	}
	return Errorf(apierr.CodeUnknownParameter, "the parameter `%s` is not recognized", key)
}
