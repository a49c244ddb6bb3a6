package redisstore

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
)

// TestClusterBusFollowsAMovedSlot: on a real three-node Cluster, the
// project's slot is moved to another node (a resharding; a primary that
// loses its slot in a failover does the same): the old node ends the
// replicas' sharded subscriptions. Each replica finds its subscription gone
// within an AliveRefresh or two, logs it at warn level, and subscribes on
// the new node: a message to it is again counted and delivered.
func TestClusterBusFollowsAMovedSlot(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	logs := &logRecorder{}
	stores := map[string]*Store{}
	for _, name := range []string{"a", "b"} {
		st, err := New(cl.Client(t), "moved", WithReplicaID(name), WithLogger(logs.logger(name)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if err := st.waitReady(t.Context()); err != nil {
			t.Fatalf("replica %s: %v", name, err)
		}
		stores[name] = st
	}
	a, b := stores["a"], stores["b"]
	got := make(chan message, 64)
	a.handle("test", func(m message) { got <- m })
	// send tells a from b, and reports whether Redis counted a receiver
	// and a got it within a second.
	send := func(text string) (counted, delivered bool) {
		p, err := encodeMessage(message{Kind: "test", Text: text})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		n, err := b.publishRaw(ctx, b.keys.node(a.Replica()), p)
		if err != nil {
			t.Logf("publishing %s: %v", text, err)
		}
		for {
			select {
			case m := <-got:
				if m.Text == text {
					return n == 1, true
				}
			case <-ctx.Done():
				return n == 1, false
			}
		}
	}
	if c, d := send("before"); !c || !d {
		t.Fatalf("before the move: counted %v, delivered %v", c, d)
	}
	key := a.keys.node(a.Replica())
	from := cl.NodeOf(t, key)
	to := cl.Nodes[0]
	if to == from {
		to = cl.Nodes[1]
	}
	cl.MoveSlot(t, key, to)
	moved := time.Now()
	for i := 0; ; i++ {
		c, d := send("after " + string(rune('a'+i%26)))
		if c && d {
			break
		}
		if time.Since(moved) > 3*AliveRefresh {
			logs.mu.Lock()
			t.Logf("the replicas' warnings: %q", logs.recs)
			logs.mu.Unlock()
			t.Fatalf("%v after the slot moved to %s, a message to replica a is still counted %v, delivered %v", time.Since(moved).Round(time.Millisecond), to.Addr, c, d)
		}
	}
	t.Logf("replica a reached again %v after the slot moved", time.Since(moved).Round(time.Millisecond))
	if n := logs.count(slog.LevelWarn, "bus subscription"); n["a"] == 0 || n["b"] == 0 {
		t.Errorf("the lost subscriptions were logged %v times by replica, want at least once each", n)
	}
}
