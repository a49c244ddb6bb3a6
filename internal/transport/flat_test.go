package transport

import (
	"encoding/json"
	"reflect"
	"testing"
)

// flatOut is an output type with every kind of field decodeFlat reads.
type flatOut struct {
	Total     uint64  `json:"Total"`
	Running   uint8   `json:"Running"`
	Delta     int16   `json:"Delta"`
	Big       int     `json:"Big,omitempty"`
	Rate      float64 `json:"Rate"`
	Small     float32 `json:"Small"`
	Ok        bool    `json:"Ok"`
	Name      state   `json:"Name"`
	RequestId string  //nolint:revive // untagged: the field's name
}

type state string

// decodesItself implements encoding.TextUnmarshaler: decodeFlat leaves
// its type to encoding/json.
type selfDecoding struct {
	Code upper `json:"Code"`
}

type upper string

func (u *upper) UnmarshalText(b []byte) error { *u = upper("UP:" + string(b)); return nil }

// Whatever the bytes, the flat path gives what encoding/json gives, or
// gives up and leaves its output untouched.
func FuzzFlatMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"Total":10,"Running":6,"RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}`,
		`{ "Total" : 1 , "Rate": -0.5e-3, "Small": 3.4e38, "Ok": true, "Name": "on" }`,
		`{}`, ` {} `, `{"Total":01}`, `{"Total":1.0}`, `{"Total":-0}`, `{"Delta":-0}`, `{"Running":256}`,
		`{"total":1}`, `{"Total":1,"Total":2}`, `{"Name":"caf\u00e9"}`, `{"Name":"café"}`, `{"Name":null}`,
		`{"Ok":truex}`, `{"Rate":1e400}`, `{"Rate":.5}`, `{"Rate":1.}`, `{"Big":9223372036854775808}`,
		`{"RequestId":"a\"b"}`, `{"Total":1,}`, `{"Total":1}x`, `{"Unknown":1}`, `{"Total":[1]}`, `{"Small":1e39}`,
		`{"Delta":-32768}`, `{"Delta":32767}`, `{"Delta":32768}`, `{"Delta":-32769}`, `{"Running":255}`,
		`{"Total":18446744073709551615}`, `{"Total":18446744073709551616}`, `{"Total":-1}`,
		`{"Big":-9223372036854775808}`, `{"Big":-9223372036854775809}`, `{"Big":9223372036854775807}`,
	} {
		f.Add([]byte(s))
	}
	var plans flatPlans
	pl := plans.plan(reflect.TypeFor[flatOut]())
	if pl == nil {
		f.Fatal("flatOut is not eligible")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got flatOut
		if !decodeFlat(data, pl, reflect.ValueOf(&got).Elem()) {
			if got != (flatOut{}) {
				t.Fatalf("gave up on %q but set %+v", data, got)
			}
			return
		}
		var want flatOut
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("flat path took %q, encoding/json refuses it: %v", data, err)
		}
		if got != want {
			t.Fatalf("%q: flat %+v, encoding/json %+v", data, got, want)
		}
	})
}

// Only types encoding/json would decode field by field, by plain names,
// take the flat path.
func TestFlatPlanEligibility(t *testing.T) {
	var plans flatPlans
	type nested struct{ Inner struct{ A string } }
	type slice struct{ A []string }
	type pointer struct{ A *string }
	type dashed struct {
		A string `json:"a-b"`
	}
	type stringOpt struct {
		A int `json:"A,string"`
	}
	type folded struct {
		A string `json:"Name"`
		B string `json:"name"`
	}
	type unexported struct{ a string }
	_ = unexported{}.a
	for _, tc := range []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[flatOut](), true},
		{reflect.TypeFor[struct{}](), true},
		{reflect.TypeFor[selfDecoding](), false},
		{reflect.TypeFor[nested](), false},
		{reflect.TypeFor[slice](), false},
		{reflect.TypeFor[pointer](), false},
		{reflect.TypeFor[dashed](), false},
		{reflect.TypeFor[stringOpt](), false},
		{reflect.TypeFor[folded](), false},
		{reflect.TypeFor[unexported](), false},
		{reflect.TypeFor[map[string]string](), false},
	} {
		if got := plans.plan(tc.t) != nil; got != tc.want {
			t.Errorf("%v: eligible %v, want %v", tc.t, got, tc.want)
		}
	}
}

// BenchmarkDecodeAnswer: the inner object of a DescribeConcurrentCount
// answer, by the flat path and by encoding/json.
func BenchmarkDecodeAnswer(b *testing.B) {
	type out struct {
		Total, Running uint64
		RequestId      string //nolint:revive
	}
	data := []byte(`{"Total":10,"Running":6,"RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}`)
	b.Run("flat", func(b *testing.B) {
		var plans flatPlans
		b.ReportAllocs()
		for b.Loop() {
			var o out
			rv := reflect.ValueOf(&o)
			if !decodeFlat(data, plans.plan(rv.Type().Elem()), rv.Elem()) {
				b.Fatal("not flat")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var o out
			if err := json.Unmarshal(data, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
