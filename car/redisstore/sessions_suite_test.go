package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/hbstoretest"
)

// The shared heartbeat.Store suite on Redis (miniredis on a pipe inside the
// case's synctest bubble, so its TIME and TTLs follow the bubble's clock);
// package heartbeat runs it on the in-memory store.
func TestSessionsSuite(t *testing.T) {
	hbstoretest.Run(t, hbstoretest.Config{
		Synctest: true,
		New: func(t *testing.T) hbstoretest.Backend {
			m, _ := redistest.Pipe(t)
			stores := map[string]*Store{}
			return hbstoretest.Backend{
				Replica: func(name string) heartbeat.Store {
					st, err := New(redistest.PipeClient(t, m), "suite", WithReplicaID(name))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = st.Close() })
					// Listening from now on: the bus is subscribed.
					if err := st.waitReady(context.Background()); err != nil {
						t.Fatalf("replica %s: %v", name, err)
					}
					stores[name] = st
					return st.Sessions()
				},
				// A dead replica's bus connection is gone: nobody is
				// subscribed to its channel any more.
				Kill: func(name string) {
					st := stores[name]
					_ = st.Close()
					ch := st.keys.node(name)
					for {
						if n := m.PubSubNumSub(ch)[ch]; n == 0 {
							return
						}
						time.Sleep(time.Millisecond)
					}
				},
				Wipe: m.FlushAll,
				Down: func() { m.SetError("LOADING Redis is loading the dataset in memory") },
				Up:   func() { m.SetError("") },
			}
		},
	})
}
