package heartbeat_test

import (
	"testing"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/hbstoretest"
)

// The shared heartbeat.Store suite on the in-memory store; car/redisstore
// runs it on Redis.
func TestMemoryStoreSuite(t *testing.T) {
	hbstoretest.Run(t, hbstoretest.Config{
		Synctest: true,
		New: func(t *testing.T) hbstoretest.Backend {
			m := heartbeat.NewMemoryStore()
			return hbstoretest.Backend{
				Replica: func(name string) heartbeat.Store { return m.Replica(name) },
				Wipe:    m.Forget,
			}
		},
	})
}
