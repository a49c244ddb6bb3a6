package cartest

import (
	"encoding/json"
	"testing"
)

func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte(`{"Type":"connected","ConcurrencyId":"pack-1","UserId":"u"}`))
	f.Add([]byte(`{"Type":"later","Extra":[1,2]}`))
	f.Add([]byte(`{"Type":"connected"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"Type":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			return
		}
		if fr.Type == "" || fr.Type == frameConnected && fr.ConcurrencyId == "" {
			t.Fatalf("accepted %q as %+v", data, fr)
		}
		b, _ := json.Marshal(fr)
		if again, err := decodeFrame(b); err != nil || again != fr {
			t.Fatalf("round trip of %+v: %+v %v", fr, again, err)
		}
	})
}
