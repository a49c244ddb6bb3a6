package heartbeat_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The grace counts from the client's last frame, and its length depends on
// how the client left: a page that closed (1000, 1001, or no code) gets the
// reload grace, a lost connection, a ping timeout or any other close code
// the reconnect window, a client closed for what it sent the reload grace.
func TestGraceDependsOnHowTheClientLeft(t *testing.T) {
	closeWith := func(code int) func(c *rawClient) {
		return func(c *rawClient) {
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		}
	}
	cases := []struct {
		name     string
		leave    func(c *rawClient)
		reason   heartbeat.Reason
		code     int           // Event.CloseCode
		lastSeen time.Duration // since the start
		detected time.Duration
		grace    time.Duration
	}{
		{"page closed (1000)", closeWith(websocket.CloseNormalClosure), heartbeat.ReasonClientClosed, 1000, 15 * time.Second, 15 * time.Second, heartbeat.DefaultReloadGrace},
		{"page navigated away (1001)", closeWith(websocket.CloseGoingAway), heartbeat.ReasonClientClosed, 1001, 15 * time.Second, 15 * time.Second, heartbeat.DefaultReloadGrace},
		{"close without a code", closeWith(websocket.CloseNoStatusReceived), heartbeat.ReasonClientClosed, 1005, 15 * time.Second, 15 * time.Second, heartbeat.DefaultReloadGrace},
		{"client error (1011)", closeWith(websocket.CloseInternalServerErr), heartbeat.ReasonClientClosed, 1011, 15 * time.Second, 15 * time.Second, heartbeat.DefaultReconnectWindow},
		{"connection lost", func(c *rawClient) { c.drop() }, heartbeat.ReasonConnectionLost, 0, 10 * time.Second, 15 * time.Second, heartbeat.DefaultReconnectWindow},
		{"ping timeout", func(c *rawClient) { c.mute() }, heartbeat.ReasonPingTimeout, 0, 10 * time.Second, 10*time.Second + heartbeat.DefaultPingTimeout, heartbeat.DefaultReconnectWindow},
		{"bad frame", func(c *rawClient) { c.send(`{"type":"dance"}`) }, heartbeat.ReasonProtocolError, 0, 15 * time.Second, 15 * time.Second, heartbeat.DefaultReloadGrace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t)
				c, _ := e.join("u1", e.Open("u1"))
				e.SleepUntil(15 * time.Second) // the last pong answered the ping at 10 s
				tc.leave(c)
				e.SleepUntil(tc.detected)
				synctest.Wait()
				recs := e.rec.of("u1")
				if len(recs) != 2 || recs[1].kind != "disconnect" {
					t.Fatalf("callbacks %s, want connect disconnect", e.rec.history("u1"))
				}
				ev := recs[1].ev
				expires := tc.lastSeen + tc.grace
				if ev.Reason != tc.reason || ev.CloseCode != tc.code || ev.At.Sub(e.start) != tc.detected ||
					ev.LastSeen.Sub(e.start) != tc.lastSeen || ev.ExpiresAt.Sub(e.start) != expires {
					t.Errorf("OnDisconnect %s code %d at %v, LastSeen %v, ExpiresAt %v; want %s code %d at %v, LastSeen %v, ExpiresAt %v",
						ev.Reason, ev.CloseCode, ev.At.Sub(e.start), ev.LastSeen.Sub(e.start), ev.ExpiresAt.Sub(e.start),
						tc.reason, tc.code, tc.detected, tc.lastSeen, expires)
				}
				if info, _ := e.srv.Session("u1"); !info.ExpiresAt.Equal(ev.ExpiresAt) {
					t.Errorf("SessionInfo.ExpiresAt %v, want %v", info.ExpiresAt.Sub(e.start), expires)
				}
				e.SleepUntil(expires - time.Millisecond)
				synctest.Wait()
				if _, ok := e.srv.Session("u1"); !ok {
					t.Fatalf("expired before %v", expires)
				}
				e.SleepUntil(expires)
				synctest.Wait()
				wantHistory(t, e, "u1", "connect disconnect("+string(tc.reason)+") expire")
				if got := e.at("u1", "expire", 1); got != expires {
					t.Errorf("OnExpire at %v, want %v", got, expires)
				}
			})
		})
	}
}

// A reload resumes within the reload grace: the page closes with 1001 and
// comes back with its resume token a few seconds later.
func TestReloadWithinTheReloadGraceResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, w := e.join("u1", e.Open("u1"))
		e.SleepUntil(15 * time.Second)
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
		e.SleepUntil(15*time.Second + heartbeat.DefaultReloadGrace - time.Second)
		if _, w2 := e.join("u1", w.Token); !w2.Resumed {
			t.Errorf("welcome after the reload: resumed=false")
		}
		e.SleepUntil(2 * time.Minute) // well past the reload grace and the reconnect window
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(closed by client) resume")
	})
}
