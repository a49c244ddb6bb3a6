package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
			be := suiteBackend(t, func() redis.UniversalClient { return redistest.PipeClient(t, m) },
				func(ch string) int { return m.PubSubNumSub(ch)[ch] })
			be.Wipe = m.FlushAll
			be.Down = func() { m.SetError("LOADING Redis is loading the dataset in memory") }
			be.Up = func() { m.SetError("") }
			return be
		},
	})
}

// The suite on a real redis-server, whose clock nobody moves: the cases
// that need time to pass are skipped (they run on miniredis above).
func TestSessionsSuiteRedis(t *testing.T) {
	hbstoretest.Run(t, hbstoretest.Config{
		New: func(t *testing.T) hbstoretest.Backend {
			srv := redistest.Start(t)
			c := srv.Client(t)
			be := suiteBackend(t, func() redis.UniversalClient {
				// No retries: the calls made while it is down fail at once.
				c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
				t.Cleanup(func() { _ = c.Close() })
				return c
			},
				func(ch string) int {
					n, err := c.PubSubNumSub(context.Background(), ch).Result()
					if err != nil {
						t.Fatalf("PUBSUB NUMSUB: %v", err)
					}
					return int(n[ch])
				})
			be.Wipe = func() {
				if err := c.FlushAll(context.Background()).Err(); err != nil {
					t.Fatalf("FLUSHALL: %v", err)
				}
			}
			// Restarting it would lose the data: once down it stays
			// down (the case checks the errors only).
			be.Down = srv.Kill
			return be
		},
	})
}

// The suite on a Redis Cluster of three real redis-server nodes, each
// replica on a cluster client of its own; Down kills the node that serves
// the project's hash slot. Like the single server's, in real time.
func TestSessionsSuiteCluster(t *testing.T) {
	hbstoretest.Run(t, hbstoretest.Config{
		New: func(t *testing.T) hbstoretest.Backend {
			cl := redistest.StartCluster(t, 3)
			c := cl.Client(t)
			be := suiteBackend(t, func() redis.UniversalClient {
				c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), MaxRetries: -1})
				t.Cleanup(func() { _ = c.Close() })
				return c
			},
				func(ch string) int {
					// The bus is sharded on a Cluster: subscribers
					// are counted per node, by SHARDNUMSUB.
					n := 0
					for _, s := range cl.Nodes {
						nc := redis.NewClient(&redis.Options{Addr: s.Addr})
						m, err := nc.PubSubShardNumSub(context.Background(), ch).Result()
						_ = nc.Close()
						if err != nil {
							t.Fatalf("PUBSUB SHARDNUMSUB on %s: %v", s.Addr, err)
						}
						n += int(m[ch])
					}
					return n
				})
			be.Wipe = func() {
				err := c.ForEachMaster(context.Background(), func(ctx context.Context, n *redis.Client) error {
					return n.FlushAll(ctx).Err()
				})
				if err != nil {
					t.Fatalf("FLUSHALL: %v", err)
				}
			}
			be.Down = cl.NodeOf(t, "tcc:{suite}:").Kill
			return be
		},
	})
}

// suiteBackend makes the replicas of one case, each a Store of its own on a
// client of its own; numSub counts a channel's subscribers.
func suiteBackend(t *testing.T, client func() redis.UniversalClient, numSub func(ch string) int) hbstoretest.Backend {
	stores := map[string]*Store{}
	return hbstoretest.Backend{
		Replica: func(name string) heartbeat.Store {
			st, err := New(client(), "suite", WithReplicaID(name))
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
		// A dead replica's bus connection is gone: nobody is subscribed
		// to its channel any more.
		Kill: func(name string) {
			st := stores[name]
			_ = st.Close()
			ch := st.keys.node(st.Replica()) // the id with its per-process suffix
			for i := 0; numSub(ch) != 0; i++ {
				if i == 5000 {
					t.Fatalf("replica %s closed: its channel still has subscribers after 5 s", name)
				}
				time.Sleep(time.Millisecond)
			}
		},
	}
}
