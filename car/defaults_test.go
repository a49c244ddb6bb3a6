package car_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tcconcurrency/sdk-go/car"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// With no endpoint option the client calls CAR's public endpoint over
// HTTPS, signing for the car service. Nothing leaves the process: the HTTP
// client answers itself.
func TestDefaultEndpoint(t *testing.T) {
	var got *http.Request
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		body := `{"Response":{"Total":2,"Running":1,"RequestId":"req"}}`
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	})}
	c, err := car.NewClient(car.WithHTTPClient(hc), car.WithCredentials(car.StaticCredentials("AKIDdefaults", "key")))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeConcurrentCount(context.Background(), nil)
	if err != nil || out.Total != 2 {
		t.Fatalf("got %+v, %v", out, err)
	}
	if got.URL.Scheme != "https" || got.URL.Host != "car.tencentcloudapi.com" || got.Method != http.MethodPost {
		t.Fatalf("request went to %s %s", got.Method, got.URL)
	}
	if got.Header.Get("X-TC-Version") != car.Version || !strings.Contains(got.Header.Get("Authorization"), "/car/tc3_request") {
		t.Fatalf("headers %v", got.Header)
	}
}
