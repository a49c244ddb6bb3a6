package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// usedMemory returns INFO memory's used_memory, in bytes.
func usedMemory(b *testing.B, c *redis.Client) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// settledMemory returns used_memory once the keys have settled: the
// replica writes a lease's keys at Start and its heartbeat session's at
// the next refresh (3 s), so it reads every second until two readings in
// a row agree within 0.5% (at most 15 s), and returns the last.
func settledMemory(b *testing.B, c *redis.Client) int64 {
	b.Helper()
	prev := usedMemory(b, c)
	for range 15 {
		time.Sleep(time.Second)
		cur := usedMemory(b, c)
		d := cur - prev
		if d < 0 {
			d = -d
		}
		if d*200 <= cur {
			return cur
		}
		prev = cur
	}
	return prev
}

// BenchmarkRedisMemory measures what a real deployment stores in Redis
// per user: one replica (a SessionManager with the Redis store for its
// leases and its heartbeat sessions, the CAR reference server in process)
// starts active users until every concurrency is busy, then queued users;
// Redis's used_memory (INFO memory) after the keys settle, minus before,
// divided by the users. An active user's figure is its lease, its
// heartbeat session and the indexes they are in; a queued user's is its
// queue entry, its lease and its heartbeat session. Every user's client
// connects its heartbeat (hbclient, in process) right after its Start, as
// a page does, so the figure is of connected users.
func BenchmarkRedisMemory(b *testing.B) {
	const active, queued = 1000, 1000
	key := []byte("0123456789abcdef0123456789abcdef")
	for range b.N {
		srv := redistest.Start(b)
		admin := srv.Client(b)
		r := newBenchReplica(b, benchCAR(b, active), append(redisOptions(b, srv, "bench", key), car.WithQueueLimit(queued))...)
		ctx := context.Background()
		before := settledMemory(b, admin)
		var clients []*hbclient.Client
		b.Cleanup(func() {
			for _, cl := range clients {
				cl.Close()
			}
		})
		connect := func(l *car.Lease) {
			cl, err := hbclient.Connect(ctx, r.url, l.HeartbeatSession, l.HeartbeatToken)
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, cl)
		}
		for i := range active {
			l, err := r.mgr.Start(ctx, car.StartRequest{UserId: "a" + strconv.Itoa(i), UserIp: "10.0.0.1", ClientSession: "cs"})
			if err != nil {
				b.Fatal(err)
			}
			if l.QueuePosition != 0 {
				b.Fatalf("active user %d queued at %d", i, l.QueuePosition)
			}
			connect(l)
		}
		withActive := settledMemory(b, admin)
		for i := range queued {
			l, err := r.mgr.Start(ctx, car.StartRequest{UserId: "q" + strconv.Itoa(i), UserIp: "10.0.0.1", ClientSession: "cs"})
			if err != nil {
				b.Fatal(err)
			}
			if l.QueuePosition == 0 {
				b.Fatalf("queued user %d got a concurrency", i)
			}
			connect(l)
		}
		withQueued := settledMemory(b, admin)
		b.Logf("used_memory: %d B before, %d with %d active users, %d with %d queued users more", before, withActive, active, withQueued, queued)
		b.ReportMetric(float64(withActive-before)/active, "B/active-user")
		b.ReportMetric(float64(withQueued-withActive)/queued, "B/queued-user")
	}
}
