package car_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// TestManagerTokenKeyRotation rotates the token key of two replicas at run
// time with SessionManager.SetTokenKeys, in the documented two phases,
// while a user's client is connected: no step closes its connection, after
// each step the client moves to the other replica and resumes there with
// the token the last one minted, and nothing is released. A lease token
// minted under the old key before the rotation is refused (4002) once the
// key is dropped, and a new Start for that user issues one that works; a
// client connected since before the rotation resumes with a token of the
// old key, so once the key is dropped it is refused (4002) and stops, and
// its lease is released at the end of the reconnect wait, once.
// Bad keys are refused with the key and the rule named, and change nothing.
func TestManagerTokenKeyRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, rt := newSharedFleet(t, 2, 3)
		a, b := f.Reps[0], f.Reps[1]
		k1, k2 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32) // k1: the fleet's key
		l := f.Start(a, "u1")
		stale := f.Start(a, "u2") // its token is signed with k1 and never used

		var dials atomic.Int32
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return rt.Dial(ctx, network, addr)
		}
		cl, err := hbclient.Connect(t.Context(), "ws://heartbeat/", l.HeartbeatSession, l.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: dial}),
			hbclient.WithReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// u3 stays connected to r2 throughout: its resume token, from its
		// only welcome, is signed with k1.
		l3 := f.Start(b, "u3")
		rt3 := rt.Another("r2")
		cl3, err := hbclient.Connect(t.Context(), "ws://heartbeat/", l3.HeartbeatSession, l3.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt3.Dial}),
			hbclient.WithReconnectDelay(func(int) time.Duration { return 100 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl3.Close()

		// Bad input first: refused, named, and nothing changes (the
		// client's moves below still work with k1).
		short := []byte("0123456789abcdef")
		many := make([][]byte, heartbeat.MaxTokenKeys)
		for i := range many {
			many[i] = k2
		}
		for _, c := range []struct {
			name           string
			current        []byte
			older          [][]byte
			field, ruleHas string
		}{
			{"short current", short, nil, "current key", "must be at least 32 bytes, got 16"},
			{"nil current", nil, [][]byte{k1}, "current key", "must be at least 32 bytes, got 0"},
			{"short older", k2, [][]byte{k1, short}, "older key 2", "must be at least 32 bytes, got 16"},
			{"too many", k2, many, "keys", "must be at most 8 in all (current and older), got 9"},
		} {
			err := a.Mgr.SetTokenKeys(c.current, c.older...)
			var ve *car.ValidationError
			if !errors.As(err, &ve) || ve.Action != "SetTokenKeys" || ve.Field != c.field || ve.Rule != c.ruleHas {
				t.Errorf("%s: SetTokenKeys = %v, want a *car.ValidationError for %q: %s", c.name, err, c.field, c.ruleHas)
			}
			if err != nil && (strings.Contains(err.Error(), string(short)) || strings.Contains(err.Error(), string(k2))) {
				t.Errorf("%s: the error reveals a key: %v", c.name, err)
			}
		}

		at := map[string]*replica{"r1": a, "r2": b}
		where := "r1"
		moveOn := func(step string) {
			t.Helper()
			time.Sleep(time.Second)
			synctest.Wait()
			if got := dials.Load(); got != 1 && step == "start" {
				t.Fatalf("%s: %d dials, want 1", step, got)
			}
			before := dials.Load()
			time.Sleep(10 * time.Second) // the rotation closes nothing
			if dials.Load() != before || cl.State() != hbclient.StateConnected || cl3.State() != hbclient.StateConnected {
				t.Fatalf("%s: the connection was lost (dials %d → %d, state %v)", step, before, dials.Load(), cl.State())
			}
			where = map[string]string{"r1": "r2", "r2": "r1"}[where]
			rt.Move(where, false)
			time.Sleep(5 * time.Second)
			synctest.Wait()
			if cl.State() != hbclient.StateConnected {
				t.Fatalf("%s: the client did not resume on %s: state %v", step, where, cl.State())
			}
			if u := userState(t, at[where].Mgr, "u1"); u.State != car.LeaseActive || u.HeartbeatSession != l.HeartbeatSession || !u.Connected {
				t.Fatalf("%s: u1 on %s: %+v, want the same lease, active and connected", step, where, u)
			}
		}
		moveOn("start")
		for _, s := range []struct {
			step    string
			r       *replica
			current []byte
			older   [][]byte
		}{
			{"phase 1 on r1", a, k1, [][]byte{k2}},
			{"phase 1 on r2", b, k1, [][]byte{k2}},
			{"phase 2 on r1", a, k2, [][]byte{k1}},
			{"phase 2 on r2", b, k2, [][]byte{k1}},
		} {
			if err := s.r.Mgr.SetTokenKeys(s.current, s.older...); err != nil {
				t.Fatalf("%s: %v", s.step, err)
			}
			moveOn(s.step)
		}
		// The client's token is now one minted with k2 (its last welcome
		// came after phase 2 everywhere): k1 can go.
		moveOn("settle")
		for _, r := range []*replica{a, b} {
			if err := r.Mgr.SetTokenKeys(k2); err != nil {
				t.Fatalf("phase 3 on %s: %v", r.Name, err)
			}
			moveOn("phase 3 on " + r.Name)
		}

		// u2's token was signed with the dropped key: refused as invalid,
		// final for the client; a new Start issues a token that works.
		rt2 := rt.Another("r2")
		_, err = hbclient.Connect(t.Context(), "ws://heartbeat/", stale.HeartbeatSession, stale.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt2.Dial}))
		var ce *heartbeat.CloseError
		if !errors.Is(err, heartbeat.ErrUnauthorized) || !errors.As(err, &ce) || ce.Code != heartbeat.CloseUnauthorized {
			t.Fatalf("a token of the dropped key: %v, want 4002 (heartbeat.ErrUnauthorized)", err)
		}
		again := f.Start(b, "u2")
		cl2, err := hbclient.Connect(t.Context(), "ws://heartbeat/", again.HeartbeatSession, again.HeartbeatToken,
			hbclient.WithDialer(&websocket.Dialer{NetDialContext: rt2.Dial}))
		if err != nil {
			t.Fatalf("u2 after a new Start: %v", err)
		}
		cl2.Close()

		for _, r := range f.Released() { // u2, never connected, is released at the end of its wait
			if strings.Contains(r, " u1 ") || strings.Contains(r, " u3 ") {
				t.Fatalf("released during the rotation: %v", f.Released())
			}
		}
		if n := f.destroyed("u1") + f.destroyed("u3"); n != 0 {
			t.Fatalf("%d DestroySession calls for u1 and u3 during the rotation", n)
		}

		// u3's connection is lost: its resume token (k1) is refused, the
		// client stops, and the lease is released once its reconnect wait
		// is over.
		rt3.Move("r2", false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if cl3.State() != hbclient.StateExpired || !errors.Is(cl3.Err(), heartbeat.ErrUnauthorized) {
			t.Fatalf("u3 after a resume with a token of the dropped key: %v, %v; want expired, refused with 4002", cl3.State(), cl3.Err())
		}
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		var u3 []string
		for _, r := range f.Released() {
			if strings.Contains(r, " u3 ") {
				u3 = append(u3, r)
			}
		}
		if len(u3) != 1 || !strings.HasSuffix(u3[0], " u3 disconnected") {
			t.Fatalf("u3 released %v; want once, disconnected", u3)
		}
		if cl.State() != hbclient.StateConnected || f.destroyed("u1") != 0 {
			t.Fatalf("u1: %v, destroyed %d times", cl.State(), f.destroyed("u1"))
		}
	})
}
