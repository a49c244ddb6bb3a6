package cartest_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// BenchmarkSession measures one user's ApplyConcurrent, CreateSession and
// DestroySession through package car over loopback: the cost of the
// reference server in a load test (rate limits off, no cleanup delay).
func BenchmarkSession(b *testing.B) {
	srv := cartest.Start(b, cartest.WithManualClock(t0), cartest.WithoutRateLimits(), cartest.WithCleanupDelay(0),
		cartest.WithPack(cartest.Pack{PackId: "load", Size: 1000, Projects: []string{cartest.DefaultProjectId}}))
	c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
	ctx := b.Context()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			user := fmt.Sprintf("user-%d", n.Add(1))
			if _, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: user, UserIp: ip, ProjectId: cartest.DefaultProjectId}); err != nil {
				b.Fatal(err)
			}
			if _, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: user, UserIp: ip}); err != nil {
				b.Fatal(err)
			}
			if _, err := c.DestroySession(ctx, &car.DestroySessionInput{UserId: user}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
