package apiserver

import (
	"encoding/json"
	"math"
	"strconv"
)

// JSONAppender is a result that writes its own JSON object, byte for
// byte what json.Marshal writes for it, appended to b. ServeHTTP uses it
// instead of encoding/json's reflection for the answers that are written
// on every call (scftest's invoke results); a type that implements it
// must keep a test that compares it with json.Marshal.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendJSONString appends s as json.Marshal encodes a string. ASCII is
// escaped here, by encoding/json's rules (quote, backslash and the
// control characters; <, > and & as \u escapes); a string with any other
// byte goes to encoding/json itself.
func AppendJSONString(b []byte, s string) []byte {
	start := len(b)
	b = append(b, '"')
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); i++ {
		c := s[i]
		if jsonPlain[c] {
			continue
		}
		if c >= 0x80 {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b[:start], q...)
		}
		b = append(b, s[done:i]...)
		done = i + 1
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default: // the other control characters, and <, > and &
			const digits = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', digits[c>>4], digits[c&0xf])
		}
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}

// jsonPlain reports the bytes a JSON string holds as they are: printable
// ASCII (DEL too) but the quote, the backslash, <, > and &.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// AppendJSONFloat appends f as json.Marshal encodes a float64; NaN and
// the infinities are an error, as there.
func AppendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		_, err := json.Marshal(f)
		return b, err
	}
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		q, err := json.Marshal(f) // the exponent form, rare here
		return append(b, q...), err
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), nil
}
