package conformance

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// fixedCount is the fixed answer every client in BenchmarkClientCall reads.
const fixedCount = `{"Response":{"Total":10,"Running":6,"RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}}`

// BenchmarkClientCall measures one DescribeConcurrentCount call against an
// in-process server that returns a fixed response over loopback, for:
//
//   - sdk: this SDK's car.Client (signing, headers, retry policy, decoding);
//   - nethttp: the bare floor, a net/http POST of the same body, reading
//     the response body, with only a Content-Type header (net/http's
//     User-Agent and Accept-Encoding turned off, as this SDK does);
//   - nethttp-signed: the signed floor, the same POST carrying only the
//     headers the API requires (X-TC-Action, X-TC-Version, X-TC-Timestamp,
//     Authorization), signed by hand as cheaply as a correct client can
//     (signedFloor): what any correct client must at least send and do;
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
		hc := floorClient()
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), "POST", srv.URL, bytes.NewReader(payload))
			req.Header = http.Header{"Content-Type": {"application/json"}, "User-Agent": {""}}
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("nethttp-signed", func(b *testing.B) {
		hc := floorClient()
		f := &signedFloor{id: id, key: key, url: srv.URL}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := hc.Do(f.request(b.Context(), "DescribeConcurrentCount", payload))
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

// floorClient is the floors' HTTP client: net/http's default transport,
// without the Accept-Encoding header it adds (the API does not need it,
// and this SDK does not send it either).
func floorClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// signedFloor makes the cheapest correct CAR call with the standard
// library: the headers the API requires and no other, keyed in canonical
// form (no Header.Set), signed with TC3-HMAC-SHA256 with the derived key
// cached for the day, as any client can.
type signedFloor struct {
	id, key, url string
	date         string // of the cached derived key
	derived      []byte
}

func (f *signedFloor) request(ctx context.Context, action string, payload []byte) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "POST", f.url, bytes.NewReader(payload))
	ts := time.Now().Unix()
	req.Header = http.Header{
		"Content-Type":   {"application/json"},
		"X-Tc-Action":    {action},
		"X-Tc-Version":   {car.Version},
		"X-Tc-Timestamp": {strconv.FormatInt(ts, 10)},
		"Authorization":  {f.sign(ts, req.Host, payload)},
		"User-Agent":     {""}, // net/http sends none
	}
	return req
}

func (f *signedFloor) sign(ts int64, host string, payload []byte) string {
	mac := func(k []byte, msg string) []byte {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	date := time.Unix(ts, 0).UTC().Format(time.DateOnly)
	if date != f.date {
		f.date, f.derived = date, mac(mac(mac([]byte("TC3"+f.key), date), "car"), "tc3_request")
	}
	body := sha256.Sum256(payload)
	canonical := "POST\n/\n\ncontent-type:application/json\nhost:" + host + "\n\ncontent-type;host\n" + hex.EncodeToString(body[:])
	scope := date + "/car/tc3_request"
	hashed := sha256.Sum256([]byte(canonical))
	toSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + scope + "\n" + hex.EncodeToString(hashed[:])
	return "TC3-HMAC-SHA256 Credential=" + f.id + "/" + scope + ", SignedHeaders=content-type;host, Signature=" + hex.EncodeToString(mac(f.derived, toSign))
}

// The signed floor is a correct call: the reference server, which
// verifies every signature, answers it; and its signature is the one
// handSign computes from scratch.
func TestSignedFloorIsACorrectCall(t *testing.T) {
	srv := cartest.Start(t)
	cred := srv.Credentials()
	f := &signedFloor{id: cred.SecretId, key: cred.SecretKey, url: srv.URL}
	payload := []byte(`{"ProjectId":"` + cartest.DefaultProjectId + `"}`)
	for range 2 { // the second with the cached derived key
		req := f.request(t.Context(), "DescribeConcurrentCount", payload)
		ts, _ := strconv.ParseInt(req.Header.Get("X-TC-Timestamp"), 10, 64)
		if got, want := req.Header.Get("Authorization"), handSign(cred.SecretId, cred.SecretKey, ts, req.Host, payload); got != want {
			t.Fatalf("Authorization %q, handSign %q", got, want)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"Total"`) || strings.Contains(string(body), `"Error"`) {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
	}
}
