package redisstore

import (
	"fmt"
	"testing"
)

// FuzzDecodeMessage: whatever arrives on a channel, decoding never panics,
// and what it accepts encodes back to a message that decodes the same.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"k":"ping","f":"a","u":"u1","s":"u1#3","g":3,"t":"x","d":"AAEC"}`,
		`{"k":""}`, `{}`, `null`, `[]`, `{"k":1}`, `{"g":-1,"k":"x"}`, "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		m, err := decodeMessage(p)
		if err != nil {
			return
		}
		b, err := encodeMessage(m)
		if err != nil {
			t.Fatalf("an accepted message does not encode: %+v: %v", m, err)
		}
		m2, err := decodeMessage(string(b))
		if err != nil || fmt.Sprint(m2) != fmt.Sprint(m) {
			t.Fatalf("round trip: %+v → %s → %+v, %v", m, b, m2, err)
		}
	})
}
