package heartbeat_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Rolling key rotation over replicas sharing a store (package doc, "Tokens
// and access"): phase 1 adds the new key as an older key everywhere, phase
// 2 makes it current everywhere, phase 3 drops the old key.

// helloResult says hello with token on e and returns the welcome, or the
// close code and reason if the hello was refused.
func helloResult(t *testing.T, e *env, id, token string) (c *rawClient, w frame, code int, reason string) {
	t.Helper()
	c = e.hello(id, token)
	select {
	case w = <-c.frames:
		if w.Type != "welcome" {
			t.Fatalf("hello %s: first frame %+v, want a welcome or a close", id, w)
		}
		return c, w, 0, ""
	case <-c.done:
		var ce *websocket.CloseError
		if !errors.As(c.err, &ce) {
			t.Fatalf("hello %s: connection ended with %v, want a close frame", id, c.err)
		}
		return c, w, ce.Code, ce.Text
	case <-time.After(time.Minute):
		t.Fatalf("hello %s: no answer within a minute", id)
	}
	return
}

// rotation drives the replicas of a cluster through a key rotation and
// checks, after each step, that every token minted anywhere is accepted
// everywhere and that the connected clients stay connected.
type rotation struct {
	t    *testing.T
	cl   *cluster
	live []*env
	n    int                   // probe sessions so far
	stay map[string]*rawClient // connected since the start, never reconnect
	tok  map[string]string     // their resume tokens (from their only welcome)
}

// check: for every pair (minting replica r, verifying replica v), a join
// token from Open on r joins on v, and the resume token of a welcome on r
// resumes on v (after the client's connection was lost); and no client
// connected since the start was closed or reported disconnected.
func (ro *rotation) check(step string) {
	t := ro.t
	t.Helper()
	for ri, r := range ro.live {
		for vi, v := range ro.live {
			ro.n++
			id := fmt.Sprintf("join%d", ro.n)
			c, _, code, reason := helloResult(t, v, id, r.Open(id))
			if code != 0 {
				t.Fatalf("%s: a join token from replica %d refused by replica %d: %d %q", step, ri, vi, code, reason)
			}
			c.ws.Close()

			id = fmt.Sprintf("resume%d", ro.n)
			c, w := r.join(id, r.Open(id))
			c.drop()
			synctest.Wait()
			c, w2, code, reason := helloResult(t, v, id, w.Token)
			if code != 0 || !w2.Resumed {
				t.Fatalf("%s: a resume token from replica %d refused by replica %d: %d %q (resumed %v)", step, ri, vi, code, reason, w2.Resumed)
			}
			c.ws.Close()
		}
	}
	time.Sleep(time.Minute) // pings, refreshes and sweeps go on
	synctest.Wait()
	for id, c := range ro.stay {
		if !c.isOpen() || ro.cl.count(id, "disconnect") != 0 {
			t.Fatalf("%s: %s was disconnected: %s", step, id, ro.cl.histories(id))
		}
	}
}

func (ro *rotation) set(step string, e *env, current []byte, older ...[]byte) {
	ro.t.Helper()
	if err := e.srv.SetTokenKeys(current, older...); err != nil {
		ro.t.Fatalf("%s: SetTokenKeys: %v", step, err)
	}
	ro.check(step)
}

func newRotation(t *testing.T, n int, k1 []byte) *rotation {
	cl := newCluster(t, n, heartbeat.WithTokenKeys(k1), heartbeat.WithIdleThreshold(time.Hour))
	ro := &rotation{t: t, cl: cl, live: cl.envs, stay: map[string]*rawClient{}, tok: map[string]string{}}
	for i, e := range cl.envs {
		id := fmt.Sprintf("stay%d", i)
		c, w := e.join(id, e.Open(id))
		ro.stay[id], ro.tok[id] = c, w.Token
	}
	return ro
}

// TestTokenKeyRollingRotation rotates three replicas one at a time in the
// documented order. At every step, every replica accepts the join and
// resume tokens every replica mints, and no connected client is closed.
// Once the old key is dropped, a resume token it signed (that of a client
// connected since before the rotation, whose only welcome came then) is
// refused with 4002 "invalid token" on every replica.
func TestTokenKeyRollingRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k1, k2 := key(1), key(2)
		ro := newRotation(t, 3, k1)
		ro.check("before")
		envs := ro.cl.envs
		for i, e := range envs {
			ro.set(fmt.Sprintf("phase 1 on r%d", i), e, k1, k2)
		}
		for i, e := range envs {
			ro.set(fmt.Sprintf("phase 2 on r%d", i), e, k2, k1)
		}
		for i, e := range envs {
			ro.set(fmt.Sprintf("phase 3 on r%d", i), e, k2)
		}

		// The clients connected since the start hold resume tokens signed
		// with k1, which is gone: once their connection is lost they
		// cannot resume, on any replica, and their sessions run out.
		for id, c := range ro.stay {
			c.drop()
			synctest.Wait()
			for vi, v := range envs {
				if _, _, code, reason := helloResult(t, v, id, ro.tok[id]); code != heartbeat.CloseUnauthorized || reason != "invalid token" {
					t.Fatalf("%s: a resume token of the dropped key on replica %d: %d %q, want %d \"invalid token\"", id, vi, code, reason, heartbeat.CloseUnauthorized)
				}
			}
		}
		time.Sleep(heartbeat.DefaultReconnectWindow + heartbeat.StoreOwnerTTL + 5*time.Second)
		synctest.Wait()
		for id := range ro.stay {
			if n := ro.cl.count(id, "expire"); n != 1 {
				t.Fatalf("%s: %d expire callbacks, want 1: %s", id, n, ro.cl.histories(id))
			}
		}
	})
}

// TestTokenKeyOnePhaseRotationBreaksLaggingReplicas shows why the
// rotation has two phases: a replica that makes the new key current before
// the others know it mints tokens they refuse with 4002, which a client
// takes as final. The refused hello consumes nothing: the same token still
// works on the replica that minted it.
func TestTokenKeyOnePhaseRotationBreaksLaggingReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k1, k2 := key(1), key(2)
		cl := newCluster(t, 2, heartbeat.WithTokenKeys(k1))
		a, b := cl.envs[0], cl.envs[1]
		if err := a.srv.SetTokenKeys(k2, k1); err != nil { // straight to phase 2 on a
			t.Fatal(err)
		}
		join := a.Open("u1")
		if _, _, code, reason := helloResult(t, b, "u1", join); code != heartbeat.CloseUnauthorized || reason != "invalid token" {
			t.Fatalf("a join token of the new key on the lagging replica: %d %q, want %d \"invalid token\"", code, reason, heartbeat.CloseUnauthorized)
		}
		c, w := a.join("u2", a.Open("u2"))
		c.drop()
		synctest.Wait()
		if _, _, code, reason := helloResult(t, b, "u2", w.Token); code != heartbeat.CloseUnauthorized || reason != "invalid token" {
			t.Fatalf("a resume token of the new key on the lagging replica: %d %q, want %d \"invalid token\"", code, reason, heartbeat.CloseUnauthorized)
		}
		a.join("u1", join)
		if _, w2 := a.join("u2", w.Token); !w2.Resumed {
			t.Fatal("resume on the minting replica: resumed = false")
		}
	})
}

// TestTokenKeyRotationSurvivesAReplicaDeath: a replica that made the new
// key current (phase 2) dies before the others did; its clients and the
// join tokens it issued come to the others, which accept them since phase
// 1 gave them the new key. The rotation then finishes without it.
func TestTokenKeyRotationSurvivesAReplicaDeath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k1, k2 := key(1), key(2)
		ro := newRotation(t, 3, k1)
		envs := ro.cl.envs
		for i, e := range envs {
			ro.set(fmt.Sprintf("phase 1 on r%d", i), e, k1, k2)
		}
		dead := envs[0]
		ro.set("phase 2 on r0", dead, k2, k1)
		type held struct {
			c     *rawClient
			token string
		}
		clients := map[string]held{}
		joins := map[string]string{}
		for i := range 4 {
			id := fmt.Sprintf("dead-c%d", i)
			c, w := dead.join(id, dead.Open(id))
			clients[id] = held{c, w.Token}
			id = fmt.Sprintf("dead-j%d", i)
			joins[id] = dead.Open(id)
		}
		delete(ro.stay, "stay0")    // dies with its replica
		ro.cl.flaky[0].kill()       // r0 dies: its store calls fail, it hears nothing
		dead.l.Close()              // no new connection reaches it
		for _, h := range clients { // and its clients lose theirs
			h.c.drop()
		}
		ro.live = envs[1:]
		i := 0
		for id, h := range clients {
			v := ro.live[i%2]
			i++
			if _, w, code, reason := helloResult(t, v, id, h.token); code != 0 || !w.Resumed {
				t.Fatalf("%s (resume token of the dead replica, new key): %d %q, resumed %v", id, code, reason, w.Resumed)
			}
		}
		for id, tok := range joins {
			v := ro.live[i%2]
			i++
			if _, _, code, reason := helloResult(t, v, id, tok); code != 0 {
				t.Fatalf("%s (join token of the dead replica, new key): %d %q", id, code, reason)
			}
		}
		ro.check("after r0 died")
		for i, e := range ro.live {
			ro.set(fmt.Sprintf("phase 2 on r%d", i+1), e, k2, k1)
		}
		for i, e := range ro.live {
			ro.set(fmt.Sprintf("phase 3 on r%d", i+1), e, k2)
		}
	})
}

// TestTokenKeyRotationRacesHellos: replicas rotating their keys over and
// over (the old and new key both in the ring at every moment) while
// sessions are opened, joined and resumed on them: every hello is
// accepted. Run with -race.
func TestTokenKeyRotationRacesHellos(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k1, k2 := key(1), key(2)
		cl := newCluster(t, 2, heartbeat.WithTokenKeys(k1, k2))
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for _, e := range cl.envs {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					cur, old := k1, k2
					if i%2 == 1 {
						cur, old = k2, k1
					}
					if err := e.srv.SetTokenKeys(cur, old); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		for u := range 4 {
			wg.Go(func() {
				for i := range 10 {
					id := fmt.Sprintf("u%d-%d", u, i)
					r, v := cl.envs[i%2], cl.envs[(i+u)%2]
					c, _, code, reason := helloResult(t, v, id, r.Open(id))
					if code != 0 {
						t.Errorf("%s: join refused: %d %q", id, code, reason)
						return
					}
					c2, w, code, reason := helloResult(t, r, id+"x", v.Open(id+"x"))
					if code != 0 {
						t.Errorf("%s: join refused: %d %q", id+"x", code, reason)
						return
					}
					c2.drop()
					c3, w2, code, reason := helloResult(t, v, id+"x", w.Token)
					if code != 0 || !w2.Resumed {
						t.Errorf("%s: resume refused: %d %q", id+"x", code, reason)
						return
					}
					c.ws.Close()
					c3.ws.Close()
				}
			})
		}
		time.Sleep(time.Second)
		close(stop)
		wg.Wait()
	})
}
