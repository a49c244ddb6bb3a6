package heartbeat_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// lbDialer is a round-robin-free load balancer: each dial lands on a random
// live replica. It remembers its connections so a test can cut them.
type lbDialer struct {
	mu    sync.Mutex
	rng   *rand.Rand
	ls    []*memnet.Listener
	dead  []bool
	off   bool
	conns map[net.Conn]int // → replica
}

func (d *lbDialer) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: d.dial}
}

func (d *lbDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return nil, errors.New("network unreachable (test)")
	}
	var live []int
	for i := range d.ls {
		if !d.dead[i] {
			live = append(live, i)
		}
	}
	i := live[d.rng.IntN(len(live))]
	c, err := d.ls[i].DialContext(ctx, network, addr)
	if err == nil {
		d.conns[c] = i
	}
	return c, err
}

// cut closes this client's connections (to replica r, or all if r < 0).
func (d *lbDialer) cut(r int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, i := range d.conns {
		if r < 0 || i == r {
			c.Close()
			delete(d.conns, c)
		}
	}
}

func (d *lbDialer) set(f func()) {
	d.mu.Lock()
	f()
	d.mu.Unlock()
}

// TestStoreChurn: three replicas on one MemoryStore, every (re)connect on a
// random replica, drops, outages shorter and longer than the window,
// activity, releases on random replicas, and one replica killed (its store
// calls fail, its connections cut, no Shutdown) half way. Merged across
// replicas, every session's callbacks tell one consistent story, each
// expiry fires once, and every client that should be connected is
// connected to exactly one live replica.
func TestStoreChurn(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { storeChurn(t, seed) })
	}
}

func storeChurn(t *testing.T, seed uint64) {
	synctest.Test(t, func(t *testing.T) {
		const sessions = 150
		rng := rand.New(rand.NewPCG(seed, 2026))
		cl := newCluster(t, 3, heartbeat.WithIdleThreshold(2*time.Minute))
		var ls []*memnet.Listener
		for _, e := range cl.envs {
			ls = append(ls, e.l)
		}
		type client struct {
			id       string
			d        *lbDialer
			s        *hbclient.Client
			offUntil time.Duration
			released bool
		}
		start := cl.envs[0].start
		elapsed := func() time.Duration { return time.Since(start) }
		clients := make([]*client, sessions)
		for i := range clients {
			c := &client{id: fmt.Sprintf("u%03d", i), d: &lbDialer{rng: rand.New(rand.NewPCG(uint64(i), seed)), ls: ls, dead: make([]bool, 3), conns: map[net.Conn]int{}}}
			e := cl.envs[rng.IntN(3)]
			s, err := hbclient.Connect(context.Background(), wsURL, c.id, e.Open(c.id), hbclient.WithDialer(c.d.dialer()))
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			c.s = s
			clients[i] = c
		}

		var killedAt time.Duration
		var drops, outages, releases int
		for step := range 120 { // 10 minutes
			now := elapsed()
			if step == 40 {
				time.Sleep(500 * time.Millisecond) // between the replicas' ticks
				now = elapsed()
				killedAt = now
				cl.flaky[0].kill()
				cl.envs[0].l.Close()
				for _, c := range clients {
					c.d.set(func() { c.d.dead[0] = true })
					c.d.cut(0)
				}
			}
			for _, c := range clients {
				if c.offUntil != 0 && now >= c.offUntil {
					c.d.set(func() { c.d.off = false })
					c.offUntil = 0
				}
				if c.released {
					continue
				}
				switch r := rng.IntN(1000); {
				case r < 5:
					c.d.cut(-1)
					drops++
				case r < 8:
					c.d.set(func() { c.d.off = true })
					c.d.cut(-1)
					c.offUntil = now + time.Duration(20+rng.IntN(101))*time.Second
					outages++
				case r < 9:
					if err := cl.envs[1+rng.IntN(2)].srv.Release(context.Background(), c.id, "churn"); err == nil {
						c.released = true
						releases++
					} else {
						t.Logf("%s: Release: %v", c.id, err)
					}
				case r < 80:
					c.s.Touch()
				}
			}
			time.Sleep(5 * time.Second)
		}
		for _, c := range clients {
			c.d.set(func() { c.d.off = false })
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		t.Logf("%d sessions on 3 replicas (one killed at %v): %d drops, %d outages, %d releases", sessions, killedAt, drops, outages, releases)

		rank := map[string]int{"connect": 0, "disconnect": 1, "resume": 2, "idle": 3, "expire": 4}
		var resumed, expired int
		for _, c := range clients {
			var recs []record
			for i, e := range cl.envs {
				for _, r := range e.rec.of(c.id) {
					if i == 0 && r.ev.At.Sub(start) >= killedAt {
						continue // a dead process fires nothing
					}
					recs = append(recs, r)
				}
			}
			sort.SliceStable(recs, func(i, j int) bool {
				if !recs[i].ev.At.Equal(recs[j].ev.At) {
					return recs[i].ev.At.Before(recs[j].ev.At)
				}
				return rank[recs[i].kind] < rank[recs[j].kind]
			})
			st := checkStory(t, c.id, recs)
			resumed += st.resumes
			n := 0
			for _, r := range recs {
				if r.kind == "expire" {
					n++
				}
			}
			if n > 1 {
				t.Errorf("%s: expired %d times: %s", c.id, n, cl.histories(c.id))
			}
			if st.expired {
				expired++
			}
			connectedOn := 0
			for _, e := range cl.envs[1:] {
				if info, ok := e.srv.Session(c.id); ok && info.Connected {
					connectedOn++
				}
			}
			state, err := c.s.State(), c.s.Err()
			switch {
			case c.released:
				if connectedOn != 0 || n != 0 {
					t.Errorf("%s: released, yet connected on %d replicas, %d expiries", c.id, connectedOn, n)
				}
			case st.expired:
				if state != hbclient.StateExpired || !errors.Is(err, heartbeat.ErrExpired) {
					t.Errorf("%s: expired on the server; client %v with %v", c.id, state, err)
				}
			default:
				if connectedOn != 1 || state != hbclient.StateConnected {
					t.Errorf("%s: connected on %d live replicas, client %v (%v); %s", c.id, connectedOn, state, err, cl.histories(c.id))
				}
			}
		}
		t.Logf("callbacks: %d resumes, %d expiries", resumed, expired)
		if resumed == 0 || expired == 0 || releases == 0 {
			t.Errorf("churn too mild: %d resumes, %d expiries, %d releases", resumed, expired, releases)
		}
	})
}
