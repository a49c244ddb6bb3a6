package heartbeat_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
)

// TestChurn runs many Go clients through random drops, outages shorter and
// longer than the grace window, user activity and releases, then checks that
// the server's callbacks tell a consistent story for every session and agree
// with where each client ended up.
func TestChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const sessions = 300
		rng := rand.New(rand.NewPCG(20250101, 42))
		e := newEnv(t, heartbeat.WithIdleThreshold(2*time.Minute))

		type client struct {
			id         string
			d          *hbtest.SwitchDialer
			s          *hbclient.Client
			offUntil   time.Duration // dialer off until then (0: on)
			releasedAt time.Duration // 0: not released
		}
		clients := make([]*client, sessions)
		for i := range clients {
			c := &client{id: fmt.Sprintf("u%03d", i), d: &hbtest.SwitchDialer{L: e.l}}
			c.s = e.Connect(c.id, e.Open(c.id), hbclient.WithDialer(c.d.Dialer()))
			clients[i] = c
		}

		var drops, outages, releases int
		for step := 0; step < 180; step++ { // 15 minutes of churn
			now := e.Elapsed()
			for _, c := range clients {
				if c.offUntil != 0 && now >= c.offUntil {
					c.d.SetOff(false)
					c.offUntil = 0
				}
				if c.releasedAt != 0 {
					continue
				}
				switch r := rng.IntN(1000); {
				case r < 4: // a blip: the client reconnects at once
					c.d.Cut()
					drops++
				case r < 6: // an outage of 20 s to 150 s: often past the 90 s window
					c.d.SetOff(true)
					c.d.Cut()
					c.offUntil = now + time.Duration(20+rng.IntN(131))*time.Second
					outages++
				case r < 7:
					if err := e.srv.Release(context.Background(), c.id, "churn"); err == nil {
						c.releasedAt = now
						releases++
					}
				case r < 80:
					c.s.Touch()
				}
			}
			time.Sleep(5 * time.Second)
		}
		for _, c := range clients {
			c.d.SetOff(false)
		}
		time.Sleep(5 * time.Minute) // every outage ends: resumed or expired
		synctest.Wait()
		t.Logf("%d sessions: %d blips, %d outages, %d releases", sessions, drops, outages, releases)

		var resumed, expired int
		for _, c := range clients {
			recs := e.rec.of(c.id)
			st := checkStory(t, c.id, recs)
			resumed += st.resumes
			if st.expired {
				expired++
			}
			for _, r := range recs {
				if c.releasedAt != 0 && r.ev.At.Sub(e.start) > c.releasedAt {
					t.Errorf("%s: callback %v at %v after Release at %v", c.id, r, r.ev.At.Sub(e.start), c.releasedAt)
				}
			}

			info, exists := e.srv.Session(c.id)
			state, err := c.s.State(), c.s.Err()
			var released *heartbeat.ReleasedError
			switch {
			case c.releasedAt != 0:
				if exists {
					t.Errorf("%s: released but still listed", c.id)
				}
				// Connected at release: told so. Away at release: its resume is refused.
				if !(state == hbclient.StateClosed && errors.As(err, &released)) && !(state == hbclient.StateExpired && errors.Is(err, heartbeat.ErrExpired)) {
					t.Errorf("%s: released; client ended %v with %v", c.id, state, err)
				}
			case st.expired:
				if exists || state != hbclient.StateExpired || !errors.Is(err, heartbeat.ErrExpired) {
					t.Errorf("%s: server expired it; listed=%v, client %v with %v", c.id, exists, state, err)
				}
			default:
				if !info.Connected || state != hbclient.StateConnected {
					t.Errorf("%s: should be connected; server %v, client %v (%v); story %s", c.id, info.State, state, err, e.rec.history(c.id))
				}
			}
		}
		t.Logf("server callbacks: %d resumes, %d expiries", resumed, expired)
		if resumed == 0 || expired == 0 || releases == 0 {
			t.Errorf("churn too mild to mean anything: %d resumes, %d expiries, %d releases", resumed, expired, releases)
		}
	})
}

type story struct {
	resumes int
	expired bool
}

// checkStory checks that a session's callbacks follow the lifecycle:
//
//	connect, then any number of
//	  disconnect → (resume | expire), with idle(n) anywhere,
//	and nothing after expire.
//
// Idle counts go 1, 2, 3… and restart at 1 after activity.
func checkStory(t *testing.T, id string, recs []record) story {
	t.Helper()
	var st story
	state := "none"
	lastIdle := 0
	var lastAt time.Time
	for _, r := range recs {
		if r.ev.At.Before(lastAt) {
			t.Errorf("%s: %v out of order (%v before %v)", id, r, r.ev.At, lastAt)
		}
		lastAt = r.ev.At
		bad := false
		switch r.kind {
		case "connect":
			bad = state != "none"
			state = "connected"
		case "disconnect":
			bad = state != "connected"
			state = "disconnected"
		case "resume":
			bad = state != "disconnected"
			state = "connected"
			st.resumes++
		case "expire":
			bad = state != "disconnected"
			state = "expired"
			st.expired = true
		case "idle":
			bad = state == "none" || state == "expired" || (r.ev.Times != 1 && r.ev.Times != lastIdle+1)
			lastIdle = r.ev.Times
		}
		if bad {
			t.Errorf("%s: unexpected %v in state %s; story: %v", id, r, state, recs)
			return st
		}
	}
	if state == "disconnected" {
		// Only a release during the outage may leave it there.
		st.expired = false
	}
	return st
}
