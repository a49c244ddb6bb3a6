package apiserver

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// strictIssue is what checkStrict found wrong with a body that
// encoding/json accepts.
type strictIssue int

const (
	strictOK strictIssue = iota
	strictInvalidUTF8
	strictLoneSurrogate
	strictDuplicateKey
)

// maxLinearKeys is the object size up to which keys are compared pairwise;
// a larger object is checked by sorting its keys.
const maxLinearKeys = 16

// checkStrict checks a body that encoding/json has accepted for what it
// lets through: bytes that are not UTF-8 (encoding/json turns them into
// U+FFFD), \u escapes of a lone UTF-16 surrogate (also turned into
// U+FFFD), and a key that appears twice in one object, at any depth
// (encoding/json keeps the last). Keys are compared after unescaping, so
// "a" and "\u0061" are the same key. It returns the issue and, for a
// duplicate, the key.
//
// It is a single pass that allocates only for objects with more than
// maxLinearKeys keys or keys with escapes; body must be valid JSON.
func checkStrict(body []byte) (strictIssue, string) {
	if !utf8.Valid(body) { // outside strings valid JSON is ASCII
		return strictInvalidUTF8, ""
	}
	type frame struct {
		object bool
		start  int // first of its keys in keys
	}
	var stackBuf [16]frame
	var keysBuf [32]keySpan
	stack, keys := stackBuf[:0], keysBuf[:0]
	var unescaped []byte // escaped keys, unescaped, back to back
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '"':
			end, escapes, ok := scanString(body, i)
			if !ok {
				return strictLoneSurrogate, ""
			}
			if expectKey && len(stack) > 0 && stack[len(stack)-1].object {
				k := keySpan{from: body, start: i + 1, end: end}
				if escapes {
					var s string
					if json.Unmarshal(body[i:end+1], &s) == nil {
						k = keySpan{fromUnescaped: true, start: len(unescaped), end: len(unescaped) + len(s)}
						unescaped = append(unescaped, s...)
					}
				}
				keys = append(keys, k)
				expectKey = false
			}
			i = end
		case '{', '[':
			stack = append(stack, frame{object: c == '{', start: len(keys)})
			expectKey = c == '{'
		case '}', ']':
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if f.object {
				if dup, ok := duplicateKey(keys[f.start:], unescaped); ok {
					return strictDuplicateKey, dup
				}
				keys = keys[:f.start]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		}
	}
	return strictOK, ""
}

// keySpan is a key: body[start:end], or unescaped[start:end].
type keySpan struct {
	from          []byte
	fromUnescaped bool
	start, end    int
}

func (k keySpan) bytes(unescaped []byte) []byte {
	if k.fromUnescaped {
		return unescaped[k.start:k.end]
	}
	return k.from[k.start:k.end]
}

func duplicateKey(keys []keySpan, unescaped []byte) (string, bool) {
	if len(keys) <= maxLinearKeys {
		for i := range keys {
			for j := range i {
				if bytes.Equal(keys[i].bytes(unescaped), keys[j].bytes(unescaped)) {
					return string(keys[i].bytes(unescaped)), true
				}
			}
		}
		return "", false
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, func(a, b keySpan) int { return bytes.Compare(a.bytes(unescaped), b.bytes(unescaped)) })
	for i := 1; i < len(sorted); i++ {
		if bytes.Equal(sorted[i].bytes(unescaped), sorted[i-1].bytes(unescaped)) {
			return string(sorted[i].bytes(unescaped)), true
		}
	}
	return "", false
}

// scanString scans the string that opens at body[open] (a '"'): it returns
// the index of the closing quote, whether the string has escapes, and
// false if a \u escape is a lone surrogate.
func scanString(body []byte, open int) (end int, escapes, ok bool) {
	for i := open + 1; i < len(body); i++ {
		switch body[i] {
		case '"':
			return i, escapes, true
		case '\\':
			escapes = true
			if i+1 < len(body) && body[i+1] == 'u' {
				r := hex4(body[i+2:])
				switch {
				case r >= 0xDC00 && r <= 0xDFFF: // a low surrogate first
					return 0, true, false
				case r >= 0xD800 && r <= 0xDBFF: // must be followed by a low one
					if i+6 > len(body) {
						return 0, true, false
					}
					next := body[i+6:]
					if len(next) < 6 || next[0] != '\\' || next[1] != 'u' {
						return 0, true, false
					}
					if lo := hex4(next[2:]); lo < 0xDC00 || lo > 0xDFFF {
						return 0, true, false
					}
					i += 6
				}
				i += 5
			} else {
				i++
			}
		}
	}
	return len(body), escapes, true // unterminated: not valid JSON, not ours to report
}

// hex4 decodes four hex digits; -1 if they are not.
func hex4(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	v := 0
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | int(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}
