package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// commandCalls sums the calls of every command in INFO commandstats (the
// commands run inside scripts included) and, apart, of EVAL and EVALSHA:
// the round trips.
func commandCalls(b *testing.B, c *redis.Client) (all, scripts int64) {
	b.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.ParseInt(v, 10, 64)
		all += n
		if name == "cmdstat_eval" || name == "cmdstat_evalsha" {
			scripts += n
		}
	}
	return all, scripts
}

// BenchmarkSessionsRedisCommands: the Redis load of connected sessions
// held by one replica over one minute of its timers (a refresh every 3 s,
// a sweep every second), on a real redis-server: round trips and commands
// (those inside the scripts included) per session per minute.
func BenchmarkSessionsRedisCommands(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	st := newReadyB(b, c, "a").Sessions()
	ctx := context.Background()
	const sessions = 1000
	var held []heartbeat.Held
	for i := range sessions {
		id := fmt.Sprint("u", i)
		if err := st.Open(ctx, id, "j", testTiming); err != nil {
			b.Fatal(err)
		}
		cl, err := st.Claim(ctx, id, "j", "r")
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, heartbeat.Held{Session: id, Epoch: cl.Epoch, Resume: "r", Timing: testTiming})
	}
	b.ResetTimer()
	for range b.N {
		all0, rt0 := commandCalls(b, c)
		for s := range 60 {
			if s%3 == 0 {
				for i := 0; i < len(held); i += 500 {
					if _, err := st.Refresh(ctx, held[i:min(i+500, len(held))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := st.Sweep(ctx, 256); err != nil {
				b.Fatal(err)
			}
		}
		all1, rt1 := commandCalls(b, c)
		all1 -= 2 // the two INFO calls
		b.ReportMetric(float64(rt1-rt0)/sessions, "scripts/session/min")
		b.ReportMetric(float64(all1-all0)/sessions, "commands/session/min")
	}
}

// BenchmarkSessionsClaim: one hello's store step (Open then Claim) on a
// real redis-server beside the MemoryStore.
func BenchmarkSessionsClaim(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, st heartbeat.Store) {
		b.ReportAllocs()
		for i := range b.N {
			id := fmt.Sprint("u", i)
			if err := st.Open(ctx, id, "j", testTiming); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Claim(ctx, id, "j", "r"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, heartbeat.NewMemoryStore().Replica("a")) })
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		run(b, newReadyB(b, srv.Client(b), "a").Sessions())
	})
}

func newReadyB(b *testing.B, c redis.UniversalClient, id string) *Store {
	b.Helper()
	s, err := New(c, "proj", WithReplicaID(id))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}
