package conformance

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/tcconcurrency/sdk-go/car"
)

type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(fixedCount))), ContentLength: int64(len(fixedCount)), Request: r}, nil
}

func BenchmarkX(b *testing.B) {
	payload := []byte(`{"ProjectId":"cap-12345678"}`)
	b.Run("bare", func(b *testing.B) {
		hc := &http.Client{Transport: canned{}}
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), "POST", "http://x/", bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			resp, _ := hc.Do(req)
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("sdk", func(b *testing.B) {
		c, _ := car.NewClient(car.WithEndpoint("http://x"), car.WithHTTPClient(&http.Client{Transport: canned{}}), car.WithCredentials(car.StaticCredentials("AKIDbench0000000", "k")))
		in := &car.DescribeConcurrentCountInput{ProjectId: "cap-12345678"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.DescribeConcurrentCount(b.Context(), in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
