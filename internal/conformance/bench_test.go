package conformance

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/tcconcurrency/sdk-go/car"
)

// fixedCount is the fixed answer every client in BenchmarkClientCall reads.
const fixedCount = `{"Response":{"Total":10,"Running":6,"RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}}`

// BenchmarkClientCall measures one DescribeConcurrentCount call against an
// in-process server that returns a fixed response over loopback, for:
//
//   - sdk: this SDK's car.Client (signing, headers, retry policy, decoding);
//   - nethttp: the floor, a bare net/http POST of the same body, reading
//     the response body, with only a Content-Type header;
//   - nethttp-signed: the same POST carrying the headers the API requires
//     (X-TC-Action, X-TC-Version, X-TC-Timestamp, Authorization), signed by
//     hand: what any correct client must at least send;
//   - official: the official Go SDK's generic client (common v1.3.209).
//
// Allocations include the in-process server's, the same for every client.
func BenchmarkClientCall(b *testing.B) {
	body := []byte(fixedCount)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	const id, key = "AKIDbenchmark0000", "benchmark-secret-key"
	payload := []byte(`{"ProjectId":"cap-12345678"}`)

	b.Run("sdk", func(b *testing.B) {
		c, err := car.NewClient(car.WithEndpoint(srv.URL), car.WithCredentials(car.StaticCredentials(id, key)))
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseIdleConnections()
		in := &car.DescribeConcurrentCountInput{ProjectId: "cap-12345678"}
		b.ReportAllocs()
		for b.Loop() {
			out, err := c.DescribeConcurrentCount(b.Context(), in)
			if err != nil || out.Total != 10 {
				b.Fatal(out, err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
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
	b.Run("nethttp-signed", func(b *testing.B) {
		hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		host := strings.TrimPrefix(srv.URL, "http://")
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), "POST", srv.URL, bytes.NewReader(payload))
			ts := time.Now().Unix()
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-TC-Action", "DescribeConcurrentCount")
			req.Header.Set("X-TC-Version", car.Version)
			req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts, 10))
			req.Header.Set("Authorization", handSign(id, key, ts, host, payload))
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("official", func(b *testing.B) {
		cpf := profile.NewClientProfile()
		cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
		cpf.HttpProfile.Scheme = "HTTP"
		client := common.NewCommonClient(common.NewCredential(id, key), "", cpf)
		b.ReportAllocs()
		for b.Loop() {
			req := tchttp.NewCommonRequest("car", car.Version, "DescribeConcurrentCount")
			if err := req.SetActionParameters(map[string]any{"ProjectId": "cap-12345678"}); err != nil {
				b.Fatal(err)
			}
			if err := client.Send(req, tchttp.NewCommonResponse()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
