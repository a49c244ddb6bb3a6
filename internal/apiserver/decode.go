package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// Decode reads a request body into v strictly, mapping failures to the codes
// the real API uses: InvalidParameter.JsonParseError for malformed JSON,
// UnknownParameter for a field the action does not have, and
// InvalidParameterValue for a value of the wrong type. Each message names
// the field. An empty body is an empty object.
func Decode(body []byte, v any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return Errorf("InvalidParameter.JsonParseError", "the request body must be a single JSON object")
		}
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Errorf("InvalidParameter.JsonParseError", "the request body is not valid JSON: %v", err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return Errorf("InvalidParameter.JsonParseError", "the request body must be a JSON object")
		}
		return Errorf("InvalidParameterValue", "the parameter `%s` must be of type %s, got a JSON %s", typ.Field, typeName(typ.Type.String()), typ.Value)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return Errorf("UnknownParameter", "the parameter `%s` is not recognized", strings.Trim(field, `"`))
	}
	return Errorf("InvalidParameter.JsonParseError", "the request body cannot be decoded: %v", err)
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
			return Errorf("MissingParameter", "the parameter `%s` is required", pairs[i])
		}
	}
	return nil
}
