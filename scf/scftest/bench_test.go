package scftest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tcconcurrency/sdk-go/internal/benchmetric"
	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// BenchmarkInvoke measures synchronous invocations (InvokeFunction) from
// parallel clients over loopback:
//
//   - scftest: against the reference server, which verifies the signature,
//     decodes the input, admits the call against quota, burst and instance
//     limits, runs the function (an instant handler, with no cold start: the
//     model's 1 s for a new instance is model time, not overhead, and would
//     add one wait per run) on an instance and logs it;
//   - bare: against a net/http handler that reads the body and writes a
//     fixed Result envelope, doing no work.
func BenchmarkInvoke(b *testing.B) {
	run := func(b *testing.B, c *scf.Client) {
		in := &scf.InvokeFunctionInput{FunctionName: "bench", Event: `{"k":1}`}
		ctx := b.Context()
		benchmetric.Parallel(b, "invokes/s", func() error {
			_, err := c.InvokeFunction(ctx, in)
			return err
		})
	}
	b.Run("scftest", func(b *testing.B) {
		srv := scftest.Start(b, scftest.WithoutRateLimits())
		if err := srv.AddFunction(scftest.FunctionConfig{Name: "bench", ColdStart: scftest.NoColdStart, Handler: func(context.Context, *scftest.Invocation) (string, error) {
			return `"ok"`, nil
		}}); err != nil {
			b.Fatal(err)
		}
		cred := srv.Credentials()
		run(b, benchClient(b, srv.URL, cred.SecretId, cred.SecretKey))
	})
	b.Run("bare", func(b *testing.B) {
		body := []byte(`{"Response":{"Result":{"FunctionRequestId":"3f2b8f1e-5a7c-4c1e-9d1e-4b7a0e6f1a2b","Duration":0.1,"BillDuration":1,"MemUsage":3207168,"RetMsg":"\"ok\"","ErrMsg":"","Log":"","InvokeResult":0},"RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}}`)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
		defer srv.Close()
		run(b, benchClient(b, srv.URL, "AKIDbench00000000", "key"))
	})
}

// benchClient is the client of both sides of BenchmarkInvoke, made the
// same way (the SDK's own transport), so that they differ only in the
// server.
func benchClient(b *testing.B, url, id, key string) *scf.Client {
	c, err := scf.NewClient(scf.WithEndpoint(url), scf.WithRegion(scftest.DefaultRegion),
		scf.WithCredentials(scf.StaticCredentials(id, key)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	return c
}

// BenchmarkServeInvoke is the server's side of BenchmarkInvoke alone: one
// signed InvokeFunction request, captured from the SDK's client, served
// by scftest's ServeHTTP with no network and no client, so that the
// reference server's own cost per invoke (and its allocations) is
// measured without the noise of loopback and of the client.
func BenchmarkServeInvoke(b *testing.B) {
	srv := scftest.Start(b, scftest.WithoutRateLimits())
	if err := srv.AddFunction(scftest.FunctionConfig{Name: "bench", ColdStart: scftest.NoColdStart, Handler: func(context.Context, *scftest.Invocation) (string, error) {
		return `"ok"`, nil
	}}); err != nil {
		b.Fatal(err)
	}
	req, body := captureInvoke(b, srv)
	w := &discardWriter{h: http.Header{}}
	var rd bytes.Reader
	rc := io.NopCloser(&rd)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rd.Reset(body)
		req.Body = rc
		clear(w.h)
		w.code = 0
		srv.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// captureInvoke returns a server-side request of one InvokeFunction call
// the SDK's client signs, and its body.
func captureInvoke(b *testing.B, srv *scftest.Server) (*http.Request, []byte) {
	var got *http.Request
	var body []byte
	capture := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		var err error
		body, err = io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		return nil, errors.New("captured")
	})
	cred := srv.Credentials()
	c, err := scf.NewClient(scf.WithEndpoint(srv.URL), scf.WithRegion(scftest.DefaultRegion),
		scf.WithCredentials(scf.StaticCredentials(cred.SecretId, cred.SecretKey)),
		scf.WithHTTPClient(&http.Client{Transport: capture}), scf.WithRetry(scf.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		b.Fatal(err)
	}
	c.InvokeFunction(b.Context(), &scf.InvokeFunctionInput{FunctionName: "bench", Event: `{"k":1}`})
	if got == nil {
		b.Fatal("no request captured")
	}
	req := httptest.NewRequest(http.MethodPost, got.URL.String(), bytes.NewReader(body))
	for k, v := range got.Header {
		req.Header[k] = v
	}
	req.Host = got.URL.Host
	return req, body
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// discardWriter is a ResponseWriter that keeps the status and drops the
// body.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header  { return w.h }
func (w *discardWriter) WriteHeader(code int) { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(p), nil
}
