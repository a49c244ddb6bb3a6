package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of real redis-server processes on loopback,
// each node a primary serving an equal share of the 16,384 slots, with no
// replicas. It is stopped when the test ends.
type Cluster struct {
	// Nodes are the cluster's servers; Nodes[i].Addr is a seed address.
	Nodes []*Server
}

// StartCluster runs a cluster of n nodes (--cluster-enabled yes, each with
// its cluster bus on a free port of its own), assigns the slots, joins the
// nodes with CLUSTER MEET, and returns once every node reports
// cluster_state:ok and knows all n.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("redistest: StartCluster(%d): a cluster needs a node", n)
	}
	bin := lookPath(t, "redis-server")
	c := &Cluster{}
	bus := make([]int, n)
	for i := range n {
		c.Nodes = append(c.Nodes, startServer(t, bin, func(int) ([]string, []string, error) {
			p, err := freePort()
			if err != nil {
				return nil, nil, fmt.Errorf("finding a free cluster bus port: %w", err)
			}
			bus[i] = p
			return nil, []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf", // in the node's own --dir
				"--cluster-port", strconv.Itoa(p),
				"--cluster-node-timeout", "5000",
			}, nil
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const slots = 16384
	for i, s := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr})
		lo, hi := i*slots/n, (i+1)*slots/n-1
		err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err()
		if err == nil && i > 0 {
			host, port := splitAddr(c.Nodes[0].Addr)
			err = cl.Do(ctx, "CLUSTER", "MEET", host, port, bus[0]).Err()
		}
		_ = cl.Close()
		if err != nil {
			t.Fatalf("redistest: cluster node %s: %v", s.Addr, err)
		}
	}
	for _, s := range c.Nodes {
		if err := waitClusterOK(ctx, s.Addr, n); err != nil {
			t.Fatalf("redistest: cluster node %s: %v", s.Addr, err)
		}
	}
	return c
}

// Addrs returns the nodes' addresses, the seeds of a cluster client.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return addrs
}

// Client returns a go-redis cluster client seeded with every node, closed
// when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// NodeOf returns the node that serves key's slot, as the cluster reports it
// now (a client made for the question, so with no map of earlier).
func (c *Cluster) NodeOf(t testing.TB, key string) *Server {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cl.Close()
	m, err := cl.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatalf("redistest: the node of %q: %v", key, err)
	}
	for _, s := range c.Nodes {
		if s.Addr == m.Options().Addr {
			return s
		}
	}
	t.Fatalf("redistest: %q is on %s, none of the nodes", key, m.Options().Addr)
	return nil
}

func splitAddr(addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	port, _ := strconv.Atoi(addr[i+1:])
	return addr[:i], port
}

// waitClusterOK polls CLUSTER INFO on addr until the cluster is ok and the
// node knows n nodes.
func waitClusterOK(ctx context.Context, addr string, n int) error {
	cl := redis.NewClient(&redis.Options{Addr: addr})
	defer cl.Close()
	want := []string{"cluster_state:ok", "cluster_known_nodes:" + strconv.Itoa(n), "cluster_slots_assigned:16384"}
	var info string
	for {
		var err error
		info, err = cl.ClusterInfo(ctx).Result()
		ok := err == nil
		for _, w := range want {
			ok = ok && strings.Contains(info, w+"\r\n")
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ok in time (%v): %v; CLUSTER INFO: %s", ctx.Err(), err, info)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// MoveSlot moves the slot of key, with its keys, from the node serving it
// to node to, as a resharding does (CLUSTER SETSLOT IMPORTING and
// MIGRATING, MIGRATE of every key, then SETSLOT NODE on every node). The
// old node then ends its clients' sharded subscriptions of the slot
// (sunsubscribe), as a primary that loses a slot does.
func (c *Cluster) MoveSlot(t testing.TB, key string, to *Server) {
	t.Helper()
	from := c.NodeOf(t, key)
	if from == to {
		t.Fatalf("redistest: MoveSlot: %s already serves %q", to.Addr, key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := redis.NewClient(&redis.Options{Addr: from.Addr})
	defer src.Close()
	dst := redis.NewClient(&redis.Options{Addr: to.Addr})
	defer dst.Close()
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("redistest: MoveSlot %q from %s to %s: %s: %v", key, from.Addr, to.Addr, what, err)
		}
	}
	slot, err := src.ClusterKeySlot(ctx, key).Result()
	fail("CLUSTER KEYSLOT", err)
	srcID, err := src.Do(ctx, "CLUSTER", "MYID").Text()
	fail("CLUSTER MYID", err)
	dstID, err := dst.Do(ctx, "CLUSTER", "MYID").Text()
	fail("CLUSTER MYID", err)
	fail("SETSLOT IMPORTING", dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err())
	fail("SETSLOT MIGRATING", src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err())
	host, port := splitAddr(to.Addr)
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
		fail("CLUSTER GETKEYSINSLOT", err)
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "REPLACE", "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		fail("MIGRATE", src.Do(ctx, args...).Err())
	}
	// The new owner first, then the old (which then drops its shard
	// subscriptions), then the rest.
	fail("SETSLOT NODE", dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	fail("SETSLOT NODE", src.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err())
	for _, s := range c.Nodes {
		if s == from || s == to {
			continue
		}
		o := redis.NewClient(&redis.Options{Addr: s.Addr})
		err := o.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err()
		_ = o.Close()
		fail("SETSLOT NODE on "+s.Addr, err)
	}
}
