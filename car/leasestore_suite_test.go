package car_test

import (
	"fmt"
	"testing"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/internal/leasestoretest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The shared LeaseStore suite on the in-memory store; car/redisstore runs
// it on Redis.
func TestMemoryLeaseStoreSuite(t *testing.T) {
	leasestoretest.Run(t, func(t *testing.T) leasestoretest.Backend {
		st := car.NewMemoryLeaseStore()
		sessions := heartbeat.NewMemoryStore()
		return leasestoretest.Backend{
			Replica: func(name string) car.LeaseStore { return st.Replica(name) },
			Left: func() []string {
				var left []string
				for _, r := range st.Leases() {
					left = append(left, fmt.Sprintf("%+v", r))
				}
				return left
			},
			Down:     func() error { st.Fail(leasestoretest.ErrDead); return leasestoretest.ErrDead },
			Up:       func() { st.Fail(nil) },
			FailFast: 0,
			Sessions: func(name string) heartbeat.Store { return sessions.Replica(name) },
		}
	})
}
