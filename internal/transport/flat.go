package transport

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The flat fast path of decoding an answer. Most answers of the API are
// a flat object of strings and numbers whose keys are exactly the output
// type's field names (CAR's all are). For an output struct whose fields
// are all strings, booleans, integers or floats named by a plain tag,
// decodeFlat reads such an object straight into it, and gives up (false)
// on anything else: a key it does not know exactly or twice, an escape
// or a non-ASCII byte in a string, null, a nested value, a number that
// is not in JSON's grammar or does not fit. encoding/json then decodes
// the same bytes the general way, so the result is always the one
// encoding/json gives (FuzzFlatMatchesEncodingJSON).

// flatPlan is how an eligible struct type's fields are set.
type flatPlan struct {
	fields map[string]flatField
}

type flatField struct {
	index int
	kind  reflect.Kind
	bits  int // of a number
}

// flatPlans caches, per output type, its plan (nil: not eligible).
type flatPlans struct{ m sync.Map }

func (p *flatPlans) plan(t reflect.Type) *flatPlan {
	if v, ok := p.m.Load(t); ok {
		return v.(*flatPlan)
	}
	pl := newFlatPlan(t)
	p.m.Store(t, pl)
	return pl
}

// A type that decodes itself is left to encoding/json.
var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) ||
		p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler)
}

func newFlatPlan(t reflect.Type) *flatPlan {
	if t.Kind() != reflect.Struct || decodesItself(t) {
		return nil
	}
	pl := &flatPlan{fields: make(map[string]flatField, t.NumField())}
	folded := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous || decodesItself(f.Type) {
			return nil
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			n, opts, _ := strings.Cut(tag, ",")
			if n == "-" || (opts != "" && opts != "omitempty") || !plainName(n) {
				return nil
			}
			if n != "" {
				name = n
			}
		}
		switch f.Type.Kind() {
		case reflect.String, reflect.Bool, reflect.Float64, reflect.Float32,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return nil
		}
		// Two names that encoding/json would match case-insensitively to
		// one another: leave the type to it.
		low := strings.ToLower(name)
		if folded[low] {
			return nil
		}
		folded[low] = true
		ff := flatField{index: i, kind: f.Type.Kind()}
		if ff.kind != reflect.String && ff.kind != reflect.Bool {
			ff.bits = f.Type.Bits()
		}
		pl.fields[name] = ff
	}
	return pl
}

// plainName reports whether a tag name is letters, digits and '_' only.
func plainName(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// flatMax is the most keys decodeFlat reads: a larger object is left to
// encoding/json.
const flatMax = 16

// flatSet is one field's value, read and not yet set.
type flatSet struct {
	f flatField
	s string
	n uint64 // the bits of a bool, int, uint or float
}

// decodeFlat decodes data, a JSON object, into out (a struct of plan),
// and reports whether it could. On false, out is untouched.
func decodeFlat(data []byte, pl *flatPlan, out reflect.Value) bool {
	var sets [flatMax]flatSet
	n, ok := readFlat(data, pl, &sets)
	if !ok {
		return false
	}
	for _, s := range sets[:n] {
		v := out.Field(s.f.index)
		switch s.f.kind {
		case reflect.String:
			v.SetString(s.s)
		case reflect.Bool:
			v.SetBool(s.n != 0)
		case reflect.Float32, reflect.Float64:
			v.SetFloat(math.Float64frombits(s.n))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			v.SetInt(int64(s.n))
		default:
			v.SetUint(s.n)
		}
	}
	return true
}

// readFlat reads data's keys and values into sets, checking each value
// against its field's type (t).
func readFlat(data []byte, pl *flatPlan, sets *[flatMax]flatSet) (int, bool) {
	var seen uint64
	n := 0
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return 0, skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := flatBytes(data, i)
		if !ok || n == flatMax {
			return 0, false
		}
		f, ok := pl.fields[string(key)]
		if !ok || f.index >= 64 || seen&(1<<f.index) != 0 {
			return 0, false
		}
		seen |= 1 << f.index
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return 0, false
		}
		i = skipSpace(data, i+1)
		sets[n].f = f
		if i, ok = flatValue(data, i, &sets[n], f); !ok {
			return 0, false
		}
		n++
		i = skipSpace(data, i)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return n, skipSpace(data, i+1) == len(data)
		default:
			return 0, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// flatString reads a string of printable ASCII without escapes at
// data[i], returning it and the index after its closing quote.
func flatString(data []byte, i int) (string, int, bool) {
	b, next, ok := flatBytes(data, i)
	return string(b), next, ok
}

// flatBytes is flatString's bytes, not copied.
func flatBytes(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// flatValue reads the value at data[i] for field f into set.
func flatValue(data []byte, i int, set *flatSet, f flatField) (int, bool) {
	k := f.kind
	switch k {
	case reflect.String:
		s, next, ok := flatString(data, i)
		set.s = s
		return next, ok
	case reflect.Bool:
		switch {
		case hasWord(data, i, "true"):
			set.n = 1
			return i + 4, true
		case hasWord(data, i, "false"):
			set.n = 0
			return i + 5, true
		}
		return 0, false
	}
	end, integer := numberEnd(data, i)
	if end < 0 {
		return 0, false
	}
	text := data[i:end]
	switch k {
	case reflect.Float32, reflect.Float64:
		bits := 64
		if k == reflect.Float32 {
			bits = 32
		}
		x, err := strconv.ParseFloat(string(text), bits)
		if err != nil {
			return 0, false
		}
		set.n = math.Float64bits(x)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		neg := text[0] == '-'
		if neg {
			text = text[1:]
		}
		limit := uint64(1)<<(f.bits-1) - 1 // the maximum; |minimum| is one more
		if neg {
			limit++
		}
		x, ok := parseDigits(text, limit)
		if !integer || !ok {
			return 0, false
		}
		if neg {
			set.n = -x
		} else {
			set.n = x
		}
	default:
		if text[0] == '-' {
			return 0, false // encoding/json refuses any sign, even -0
		}
		x, ok := parseDigits(text, math.MaxUint64>>(64-f.bits))
		if !integer || !ok {
			return 0, false
		}
		set.n = x
	}
	return end, true
}

// parseDigits reads decimal digits as a number of at most limit.
func parseDigits(text []byte, limit uint64) (uint64, bool) {
	if len(text) == 0 || len(text) > 20 {
		return 0, false
	}
	var x uint64
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if x > (math.MaxUint64-d)/10 {
			return 0, false
		}
		x = x*10 + d
	}
	return x, x <= limit
}

func hasWord(data []byte, i int, w string) bool {
	return len(data)-i >= len(w) && string(data[i:i+len(w)]) == w
}

// numberEnd returns the end of the JSON number at data[i] (-1 if there is
// none there) and whether it is an integer (no fraction, no exponent).
func numberEnd(data []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(data) && '0' <= data[j] && data[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	switch {
	case j < len(data) && data[j] == '0':
		j++
	case j < len(data) && '1' <= data[j] && data[j] <= '9':
		j = digits(j + 1)
	default:
		return -1, false
	}
	integer := true
	if j < len(data) && data[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return -1, false
		}
		j, integer = k, false
	}
	if j < len(data) && (data[j] == 'e' || data[j] == 'E') {
		j++
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return -1, false
		}
		j, integer = k, false
	}
	return j, integer
}
