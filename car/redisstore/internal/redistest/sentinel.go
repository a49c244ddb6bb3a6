package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the Sentinel of [StartSentinel] monitors.
const SentinelMaster = "tcc"

// Sentinel is a primary, one replica of it and a Sentinel watching them
// (quorum 1), real processes on loopback, stopped when the test ends.
type Sentinel struct {
	// Sentinel is the sentinel process (redis-server --sentinel).
	Sentinel *Server
	// Nodes are the two data nodes; Nodes[0] starts as the primary.
	Nodes [2]*Server
}

// StartSentinel starts a primary, a replica of it (--replicaof), and a
// Sentinel monitoring the primary as [SentinelMaster], and returns once the
// replica is in sync and the Sentinel knows it (so that a failover can
// pick it).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &Sentinel{}
	s.Nodes[0] = startServer(t, bin, nil)
	host, port := splitAddr(s.Nodes[0].Addr)
	s.Nodes[1] = startServer(t, bin, func(int) ([]string, []string, error) {
		return nil, []string{"--replicaof", host, strconv.Itoa(port)}, nil
	})
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // the Sentinel rewrites it
	s.Sentinel = startServer(t, bin, func(int) ([]string, []string, error) {
		text := fmt.Sprintf("sentinel monitor %s %s %d 1\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\n", SentinelMaster, host, port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return nil, nil, err
		}
		return []string{conf, "--sentinel"}, nil, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.waitReplica(ctx, s.Nodes[0].Addr, s.Nodes[1].Addr); err != nil {
		t.Fatalf("redistest: sentinel: %v", err)
	}
	return s
}

// Client returns a go-redis client that finds the primary through the
// Sentinel (a failover client), closed when the test ends.
func (s *Sentinel) Client(t testing.TB) redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		MasterName: SentinelMaster,
		Addrs:      []string{s.Sentinel.Addr},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Primary returns the node the Sentinel reports as the primary.
func (s *Sentinel) Primary(t testing.TB) *Server {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(context.Background(), SentinelMaster).Result()
	if err != nil || len(addr) != 2 {
		t.Fatalf("redistest: sentinel: the primary's address: %v %v", addr, err)
	}
	for _, n := range s.Nodes {
		if n.Addr == addr[0]+":"+addr[1] {
			return n
		}
	}
	t.Fatalf("redistest: sentinel: the primary %v is none of the nodes", addr)
	return nil
}

// Sync waits until the replica has every write the primary has taken (WAIT
// 1 on the primary), so that a failover loses nothing.
func (s *Sentinel) Sync(t testing.TB) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Primary(t).Addr})
	defer c.Close()
	n, err := c.Wait(context.Background(), 1, 10*time.Second).Result()
	if err != nil || n != 1 {
		t.Fatalf("redistest: sentinel: WAIT 1: %d replicas, %v", n, err)
	}
}

// Failover promotes the replica (SENTINEL FAILOVER) and returns once the
// Sentinel reports it as the primary and it answers as one. The old
// primary becomes its replica when the Sentinel next reaches it (seconds
// later; Failover does not wait for that).
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	old := s.Primary(t)
	next := s.Nodes[0]
	if old == next {
		next = s.Nodes[1]
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	defer sc.Close()
	nc := redis.NewClient(&redis.Options{Addr: next.Addr})
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sc.Failover(ctx, SentinelMaster).Err(); err != nil {
		t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	for {
		info, err := nc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "role:master\r\n") && s.Primary(t) == next {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("redistest: sentinel: %s not promoted in time: %v; INFO replication: %s", next.Addr, err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReplica waits until primary answers as the primary with replica
// connected and in sync, and the Sentinel lists replica as one.
func (s *Sentinel) waitReplica(ctx context.Context, primary, replica string) error {
	p := redis.NewClient(&redis.Options{Addr: primary})
	defer p.Close()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr})
	defer sc.Close()
	host, port := splitAddr(replica)
	want := fmt.Sprintf("ip=%s,port=%d,state=online", host, port)
	for {
		info, err := p.Info(ctx, "replication").Result()
		ok := err == nil && strings.Contains(info, "role:master\r\n") && strings.Contains(info, want)
		if ok {
			var reps []map[string]string
			reps, err = sc.Replicas(ctx, SentinelMaster).Result()
			ok = false
			for _, r := range reps {
				if r["name"] == replica && r["master-link-status"] == "ok" && !strings.Contains(r["flags"], "down") {
					ok = true
				}
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s of %s not in sync in time: %v; INFO replication: %s", replica, primary, err, info)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Settle waits, after a [Sentinel.Failover], until the old primary has
// become an online replica of the new one, in sync, and the Sentinel lists
// it so: the deployment is whole again.
func (s *Sentinel) Settle(t testing.TB) {
	t.Helper()
	primary := s.Primary(t)
	other := s.Nodes[0]
	if other == primary {
		other = s.Nodes[1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.waitReplica(ctx, primary.Addr, other.Addr); err != nil {
		t.Fatalf("redistest: sentinel: after the failover: %v", err)
	}
}
