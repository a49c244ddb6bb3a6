package cartest_test

import (
	"fmt"
	"github.com/tcconcurrency/sdk-go/internal/benchmetric"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// BenchmarkLifecycle measures full CAR lifecycles (ApplyConcurrent,
// CreateSession, DestroySession: three signed calls) from parallel clients
// over loopback:
//
//   - cartest: against the reference server, which verifies every
//     signature, decodes and validates the input, runs the model and logs
//     the calls;
//   - bare: against a net/http handler that reads the body and writes a
//     fixed envelope, doing no work: the floor for the same client.
//
// The difference is the reference server's overhead.
func BenchmarkLifecycle(b *testing.B) {
	const ip = "10.0.0.1"
	run := func(b *testing.B, c *car.Client) {
		var n atomic.Int64
		ctx := b.Context()
		benchmetric.Parallel(b, "lifecycles/s", func() error {
			user := fmt.Sprintf("user-%d", n.Add(1))
			if _, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: user, UserIp: ip, ProjectId: cartest.DefaultProjectId}); err != nil {
				return err
			}
			if _, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: user, UserIp: ip}); err != nil {
				return err
			}
			_, err := c.DestroySession(ctx, &car.DestroySessionInput{UserId: user})
			return err
		})
	}
	b.Run("cartest", func(b *testing.B) {
		srv := cartest.Start(b, cartest.WithManualClock(time.Now()), cartest.WithoutRateLimits(), cartest.WithCleanupDelay(0),
			cartest.WithPack(cartest.Pack{PackId: "load", Size: 1000, Projects: []string{cartest.DefaultProjectId}}))
		cred := srv.Credentials()
		run(b, benchClient(b, srv.URL, cred.SecretId, cred.SecretKey))
	})
	b.Run("bare", func(b *testing.B) {
		body := []byte(`{"Response":{"ServerSession":"eyJ2IjoxfQ==","RequestId":"0a6bd32e-36c5-4a64-9bd0-5e8e3b0e5f61"}}`)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
		defer srv.Close()
		run(b, benchClient(b, srv.URL, "AKIDbench00000000", "key"))
	})
}

// benchClient is the client of both sides of BenchmarkLifecycle, made the
// same way (the SDK's own transport), so that they differ only in the
// server.
func benchClient(b *testing.B, url, id, key string) *car.Client {
	c, err := car.NewClient(car.WithEndpoint(url), car.WithCredentials(car.StaticCredentials(id, key)),
		car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	return c
}
