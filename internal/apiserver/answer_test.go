package apiserver

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tcconcurrency/sdk-go/internal/clock"
	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/internal/transport"
)

// seen is what a client saw of one answer, before the SDK read it.
type seen struct {
	status           int
	contentLength    int64
	transferEncoding []string
	contentType      string
}

type capture struct {
	inner http.RoundTripper
	mu    sync.Mutex
	last  seen
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.inner.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.last = seen{resp.StatusCode, resp.ContentLength, resp.TransferEncoding, resp.Header.Get("Content-Type")}
		c.mu.Unlock()
	}
	return resp, err
}

// padChar is the letter a Pad of n bytes is made of: answers of different
// sizes differ in every byte.
func padChar(n int) string { return string(rune('a' + n%26)) }

type padIn struct {
	Size int `json:"Size"`
}

type padOut struct {
	Pad       string `json:"Pad"`
	RequestId string `json:"RequestId"`
}

// TestAnswerHasContentLength: every answer, small or large, success or
// injected error, is sent whole with its Content-Length and Content-Type
// application/json, never chunked, and its body is the one built for it
// even when answers are built concurrently (their buffers are reused).
func TestAnswerHasContentLength(t *testing.T) {
	s := New(Config{Service: "demo", Version: "2020-01-01", Clock: clock.New()})
	t.Cleanup(s.Clock().Close)
	s.AddCredential(id, key, "")
	s.Register(Action{Name: "Pad", Handle: func(_ context.Context, r *Request) (any, error) {
		var in padIn
		if err := r.Decode(&in); err != nil {
			return nil, err
		}
		return map[string]string{"Pad": strings.Repeat(padChar(in.Size), in.Size)}, nil
	}})
	l := memnet.Listen("demo")
	hs := &http.Server{Handler: s}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	newClient := func() (*transport.Client, *capture) {
		cp := &capture{inner: &http.Transport{DialContext: l.DialContext}}
		c, err := transport.New(transport.Config{Service: "demo", Version: "2020-01-01", Endpoint: "http://demo.test"},
			transport.WithCredentials(credential.NewStatic(id, key)),
			transport.WithHTTPClient(&http.Client{Transport: cp}),
			transport.WithRetry(transport.RetryPolicy{MaxAttempts: 1}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return c, cp
	}
	c, cp := newClient()
	// The envelope around Pad is 71 bytes: sizes on both sides of 2,048.
	sizes := []int{0, 10, implicitLengthMax - 80, implicitLengthMax - 72, implicitLengthMax - 71, implicitLengthMax - 70, implicitLengthMax + 1, 5000, 100_000}
	for _, n := range sizes {
		var out padOut
		if err := c.Call(t.Context(), "Pad", padIn{Size: n}, &out); err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		if len(out.Pad) != n || strings.Trim(out.Pad, padChar(n)) != "" || out.RequestId == "" {
			t.Fatalf("size %d: got a Pad of %d bytes, RequestId %q", n, len(out.Pad), out.RequestId)
		}
		got := cp.last
		want := int64(len(`{"Response":{"Pad":"","RequestId":"`) + n + 36 + len(`"}}`))
		if got.status != 200 || got.contentLength != want || got.transferEncoding != nil || got.contentType != "application/json" {
			t.Fatalf("size %d: status %d, Content-Length %d (want %d), Transfer-Encoding %v, Content-Type %q",
				n, got.status, got.contentLength, want, got.transferEncoding, got.contentType)
		}
	}
	if err := s.InjectFault("Pad", Fault{Code: "InternalError", Message: "injected", HTTPStatus: 503}); err != nil {
		t.Fatal(err)
	}
	var out padOut
	if err := c.Call(t.Context(), "Pad", padIn{Size: 1}, &out); err == nil {
		t.Fatal("the injected error was not returned")
	}
	if got := cp.last; got.status != 503 || got.contentLength <= 0 || got.transferEncoding != nil || got.contentType != "application/json" {
		t.Fatalf("injected 503: status %d, Content-Length %d, Transfer-Encoding %v, Content-Type %q",
			got.status, got.contentLength, got.transferEncoding, got.contentType)
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			c, _ := newClient()
			for i := range 50 {
				n := sizes[(g+i)%len(sizes)]
				var out padOut
				if err := c.Call(t.Context(), "Pad", padIn{Size: n}, &out); err != nil {
					t.Errorf("size %d: %v", n, err)
					return
				}
				if len(out.Pad) != n || strings.Trim(out.Pad, padChar(n)) != "" {
					t.Errorf("size %d: got a Pad of %d bytes", n, len(out.Pad))
					return
				}
			}
		})
	}
	wg.Wait()
}
