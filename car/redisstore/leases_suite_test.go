package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/internal/leasestoretest"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The shared LeaseStore suite on Redis (miniredis on a pipe inside the
// case's synctest bubble, so its TTLs follow the bubble's clock); package
// car runs it on the in-memory store.
func TestLeasesSuite(t *testing.T) {
	leasestoretest.Run(t, func(t *testing.T) leasestoretest.Backend {
		m, _ := redistest.Pipe(t)
		prefix := "tcc:{" + leasestoretest.Project + "}:"
		stores := map[string]*Store{} // a replica's leases and sessions are of one Store
		store := func(name string) *Store {
			if st := stores[name]; st != nil {
				return st
			}
			st, err := New(redistest.PipeClient(t, m), leasestoretest.Project, WithReplicaID(name))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			stores[name] = st
			return st
		}
		return leasestoretest.Backend{
			Replica:  func(name string) car.LeaseStore { return store(name).Leases() },
			Sessions: func(name string) heartbeat.Store { return store(name).Sessions() },
			// The generation counter, the head lock, the boot mark and
			// the replicas' liveness keys stay; nothing else may.
			Left: func() []string {
				var left []string
				for _, k := range m.Keys() {
					switch {
					case k == prefix+"lgen", k == prefix+"qhead", k == prefix+"lboot", strings.HasPrefix(k, prefix+"alive:"):
					default:
						left = append(left, k)
					}
				}
				return left
			},
			Down: func() error { m.SetError("LOADING Redis is loading the dataset in memory"); return nil },
			Up:   func() { m.SetError("") },
			// go-redis retries a LOADING answer a few times (8 to 512
			// ms); the store timeout (500 ms) bounds it.
			FailFast: 500 * time.Millisecond,
		}
	})
}
