package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// The bus follows the node its subscriptions must be on: a Cluster slot
// that moves, a Sentinel failover that demotes the primary. In both the
// old node keeps (or ends) the replicas' subscriptions while the publishes
// go to the new one, whose receiver count then misses them: each replica
// finds out by its probe and subscribes again on the new node.

// busPair is two replicas' Stores of one project on a real deployment:
// messages from b to a tell whether the bus reaches a.
type busPair struct {
	t    *testing.T
	a, b *Store
	got  chan message
	logs *logRecorder
}

func newBusPair(t *testing.T, project string, client func() redis.UniversalClient) *busPair {
	p := &busPair{t: t, got: make(chan message, 64), logs: &logRecorder{}}
	for _, name := range []string{"a", "b"} {
		st, err := New(client(), project, WithReplicaID(name), WithLogger(p.logs.logger(name)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.waitReady(t.Context()); err != nil {
			t.Fatalf("replica %s: %v", name, err)
		}
		if name == "a" {
			p.a = st
		} else {
			p.b = st
		}
	}
	p.a.handle("test", func(m message) { p.got <- m })
	return p
}

// send tells a from b, and reports whether Redis counted a receiver and a
// got it within a second.
func (p *busPair) send(text string) (counted, delivered bool) {
	msg, err := encodeMessage(message{Kind: "test", Text: text})
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.t.Context(), time.Second)
	defer cancel()
	n, err := p.b.publishRaw(ctx, p.b.keys.node(p.a.Replica()), msg)
	if err != nil {
		p.t.Logf("publishing %s: %v", text, err)
	}
	for {
		select {
		case m := <-p.got:
			if m.Text == text {
				return n == 1, true
			}
		case <-ctx.Done():
			return n == 1, false
		}
	}
}

// reachedAgain sends until a message to a is counted and delivered again
// after what happened at since, failing after three AliveRefresh rounds;
// both replicas must have logged their lost subscription.
func (p *busPair) reachedAgain(since time.Time, what string) {
	for i := 0; ; i++ {
		c, d := p.send(fmt.Sprintf("after %d", i))
		if c && d {
			break
		}
		if time.Since(since) > 3*AliveRefresh {
			p.logs.mu.Lock()
			p.t.Logf("the replicas' warnings: %q", p.logs.recs)
			p.logs.mu.Unlock()
			p.t.Fatalf("%v after %s, a message to replica a is still counted %v, delivered %v", time.Since(since).Round(time.Millisecond), what, c, d)
		}
	}
	p.t.Logf("replica a reached again %v after %s", time.Since(since).Round(time.Millisecond), what)
	if n := p.logs.count(slog.LevelWarn, "bus subscription"); n["a"] == 0 || n["b"] == 0 {
		p.t.Errorf("the lost subscriptions were logged %v times by replica, want at least once each", n)
	}
}

// TestClusterBusFollowsAMovedSlot: on a real three-node Cluster, the
// project's slot is moved to another node (a resharding; a primary that
// loses its slot in a failover does the same): the old node ends the
// replicas' sharded subscriptions, and go-redis does not subscribe again.
func TestClusterBusFollowsAMovedSlot(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	p := newBusPair(t, "moved", func() redis.UniversalClient { return cl.Client(t) })
	if c, d := p.send("before"); !c || !d {
		t.Fatalf("before the move: counted %v, delivered %v", c, d)
	}
	key := p.a.keys.node(p.a.Replica())
	from := cl.NodeOf(t, key)
	to := cl.Nodes[0]
	if to == from {
		to = cl.Nodes[1]
	}
	cl.MoveSlot(t, key, to)
	p.reachedAgain(time.Now(), "the slot moved to "+to.Addr)
}

// TestSentinelBusFollowsAFailover: on a Sentinel deployment, the replica is
// promoted and the old primary becomes its replica. go-redis's failover
// client moves its commands to the new primary but leaves its
// subscriptions on the old one, where PUBLISH's count does not look (and
// where messages arrive only through replication): without the probe, a
// stayed "gone" for good, its notices kept instead of delivered.
func TestSentinelBusFollowsAFailover(t *testing.T) {
	sen := redistest.StartSentinel(t)
	p := newBusPair(t, "failover", func() redis.UniversalClient { return sen.Client(t) })
	if c, d := p.send("before"); !c || !d {
		t.Fatalf("before the failover: counted %v, delivered %v", c, d)
	}
	sen.Sync(t)
	old := sen.Primary(t)
	sen.Failover(t)
	// b's commands reach the new primary once its client has followed
	// the Sentinel; a's subscription is still on the old one, which the
	// Sentinel demotes (killing its subscribers) only later: 20 s later
	// in the runs measured.
	next := sen.Primary(t)
	for deadline := time.Now().Add(10 * time.Second); !servedBy(t, p.b.client, next); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b's commands do not reach the new primary %s 10 s after the failover", next.Addr)
		}
	}
	since := time.Now()
	p.reachedAgain(since, "b's commands went to the new primary")
	if role := roleOf(t, old); role != "master" {
		// The Sentinel demoted it (killing its subscribers) before the
		// probe moved them: this run does not show the probe at work.
		t.Fatalf("the old primary was already a %s when a was reached again (the Sentinel was faster than the probe, unlike the 20 s measured)", role)
	}
	sen.Settle(t)
	t.Logf("the old primary was a replica of the new one %v after that", time.Since(since).Round(time.Millisecond))
	if c, d := p.send("settled"); !c || !d {
		t.Fatalf("once the old primary is a replica: counted %v, delivered %v", c, d)
	}
}

// servedBy reports whether c's commands reach node (its INFO's tcp_port).
func servedBy(t *testing.T, c redis.UniversalClient, node *redistest.Server) bool {
	info, err := c.Info(t.Context(), "server").Result()
	if err != nil {
		return false
	}
	_, port, _ := strings.Cut(node.Addr, ":")
	return strings.Contains(info, "tcp_port:"+port+"\r\n")
}

// roleOf is node's replication role ("master", "slave").
func roleOf(t *testing.T, node *redistest.Server) string {
	c := redis.NewClient(&redis.Options{Addr: node.Addr})
	defer c.Close()
	info, err := c.Info(t.Context(), "replication").Result()
	if err != nil {
		return "unreachable: " + err.Error()
	}
	_, rest, _ := strings.Cut(info, "role:")
	role, _, _ := strings.Cut(rest, "\r\n")
	return role
}
