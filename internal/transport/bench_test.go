package transport

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tcconcurrency/sdk-go/internal/credential"
)

// fixedCount is the fixed CAR answer both benchmarks read.
const fixedCount = `{"Response":{"Total":10,"Running":6,"RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}}`

func fixedServer(b *testing.B) *httptest.Server {
	body := []byte(fixedCount)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkCallVsFloor compares a signed, decoded call with a bare POST of
// the same body, against the same server.
func BenchmarkCallVsFloor(b *testing.B) {
	srv := fixedServer(b)
	payload := []byte(`{"ProjectId":"cap-12345678"}`)
	b.Run("sdk", func(b *testing.B) {
		c, err := New(Config{Service: "car", Version: "2022-01-10", Endpoint: srv.URL, Language: "en-US"},
			WithCredentials(credential.NewStatic("AKIDbench", "bench-key")))
		if err != nil {
			b.Fatal(err)
		}
		in := struct{ ProjectId string }{"cap-12345678"}
		var out struct {
			Total, Running uint64
			RequestId      string
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Call(b.Context(), "DescribeConcurrentCount", in, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		hc := &http.Client{}
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), "POST", srv.URL, bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
}
