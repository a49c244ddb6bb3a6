package apiserver

import (
	"reflect"
	"strings"
	"testing"
)

// The shapes FuzzDecodeFlat decodes into: the SDK's request bodies (flat
// structs of strings, with and without tags), and types the fast path must
// leave to the full one.
type (
	flatPlain struct {
		UserId    string //nolint:revive
		UserIp    string //nolint:revive
		ProjectId string //nolint:revive
	}
	flatTagged struct {
		FunctionName string `json:"FunctionName"`
		Event        string `json:"Event,omitempty"`
		Count        int    `json:"Count"`
		//lint:ignore U1000 unexported: encoding/json never decodes it, nor must the fast path
		hidden string
	}
	flatQuoted struct {
		N string `json:"N,string"`
	}
	flatEmbedded struct {
		flatPlain
		Role string
	}
	flatFolded struct {
		Name string
		NAME string `json:"name"`
	}
	flatNamed struct {
		Mode runMode
	}
	runMode string
)

func decodeTargets() []func() any {
	return []func() any{
		func() any { return new(flatPlain) },
		func() any { return new(flatTagged) },
		func() any { return new(flatQuoted) },
		func() any { return new(flatEmbedded) },
		func() any { return new(flatFolded) },
		func() any { return new(flatNamed) },
		func() any { return new(map[string]string) },
	}
}

// FuzzDecodeFlat: Decode, with its fast path, and the full path alone
// agree on every body: the same error (code and message), or no error and
// the same value; and where the fast path declines, it changed nothing.
func FuzzDecodeFlat(f *testing.F) {
	for _, s := range []string{
		`{"UserId":"u1","UserIp":"10.0.0.1","ProjectId":"p"}`,
		` { "UserId" : "u1" , "UserIp":"ä€𝄞" } `, `{}`, ``, " \t\r\n", `{"UserId":"a","UserId":"b"}`,
		`{"userid":"a"}`, `{"UserId":"a\"b"}`, `{"UserId":"a\u0062"}`, `{"UserId":"\t"}`, "{\"UserId\":\"a\x01\"}",
		"{\"UserId\":\"\xff\"}", `{"UserId":null}`, `{"UserId":1}`, `{"UserId":"a"} {}`, `{"UserId":"a"`, `{"UserId":"a",}`,
		`{"FunctionName":"f","Event":"{\"k\":1}","Count":2}`, `{"FunctionName":"f","hidden":"x"}`, `{"N":"1"}`,
		`{"UserId":"u","Role":"Player"}`, `{"Name":"a","name":"b"}`, `{"Mode":"x"}`, `{"a":"b"}`, "\v{}", `[]`, `"x"`,
		`{"UserId":"a\\b\/c\n\t\r\b\f\""}`, `{"UserId":"\u00e9\ud834\udd1e"}`, `{"UserId":"a\x"}`, `{"UserId":"a\`, `{"User\u0049d":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range decodeTargets() {
			fast, full, untouched := target(), target(), target()
			var cache fieldCache
			errFast := (&Request{Body: body, names: &cache}).Decode(fast)
			errFull := decodeFull(body, full, &cache)
			switch {
			case (errFast == nil) != (errFull == nil):
				t.Fatalf("%T, %q: Decode says %v, the full path %v", fast, body, errFast, errFull)
			case errFast != nil && *errFast != *errFull:
				t.Fatalf("%T, %q: Decode says %v, the full path %v", fast, body, errFast, errFull)
			case errFast == nil && !reflect.DeepEqual(fast, full):
				t.Fatalf("%T, %q: Decode made %+v, the full path %+v", fast, body, fast, full)
			}
			declined := target()
			if !decodeFlat(body, declined, &cache) && !reflect.DeepEqual(declined, untouched) {
				t.Fatalf("%T, %q: the fast path declined but changed the value to %+v", declined, body, declined)
			}
		}
	})
}

// TestDecodeFlatTakesTheSDKsBodies: the bodies the SDK sends take the fast
// path, which allocates only the strings it decodes.
func TestDecodeFlatTakesTheSDKsBodies(t *testing.T) {
	var cache fieldCache
	for _, body := range []string{
		`{"UserId":"user-1","UserIp":"10.0.0.1","ProjectId":"cap-12345678"}`,
		`{"UserId":"user-1"}`,
		`{}`,
	} {
		var in flatPlain
		if !decodeFlat([]byte(body), &in, &cache) {
			t.Fatalf("%s: the fast path declined it", body)
		}
		strs := float64(strings.Count(body, ":"))
		r := &Request{Body: []byte(body), names: &cache}
		if allocs := testing.AllocsPerRun(100, func() { r.Decode(&in) }); allocs > strs {
			t.Fatalf("%s: Decode made %.0f allocations for %.0f strings", body, allocs, strs)
		}
	}
	var tagged flatTagged
	if !decodeFlat([]byte(`{"FunctionName":"f","Event":"{\"k\":1}"}`), &tagged, &cache) || tagged.FunctionName != "f" || tagged.Event != `{"k":1}` {
		t.Fatalf("a tagged struct: the fast path declined it or decoded %+v", tagged)
	}
}
