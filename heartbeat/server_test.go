package heartbeat_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
)

func TestIdleFiresAtEachThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, _ := e.join("u1", e.Open("u1"))

		e.SleepUntil(950 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect idle(1) idle(2) idle(3)")
		for n, want := range []time.Duration{300 * time.Second, 600 * time.Second, 900 * time.Second} {
			if got := e.at("u1", "idle", n+1); got != want {
				t.Errorf("OnIdle #%d at %v, want %v", n+1, got, want)
			}
		}
		for n := 1; n <= 3; n++ {
			if f := c.next(); f.Type != "idle" || f.Times != n {
				t.Errorf("client got %+v, want idle notice times=%d", f, n)
			}
		}
		if info, _ := e.srv.Session("u1"); info.IdleTimes != 3 {
			t.Errorf("SessionInfo.IdleTimes = %d, want 3", info.IdleTimes)
		}
	})
}

func TestActivityRestartsIdleCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, _ := e.join("u1", e.Open("u1"))

		e.SleepUntil(200 * time.Second)
		c.send(`{"type":"activity"}`)
		e.SleepUntil(850 * time.Second)
		c.send(`{"type":"activity"}`) // after idle(2): the count starts again
		synctest.Wait()
		info, _ := e.srv.Session("u1")
		if info.IdleTimes != 0 || info.LastActivity.Sub(e.start) != 850*time.Second {
			t.Errorf("after activity: IdleTimes=%d LastActivity=%v, want 0 and 850s", info.IdleTimes, info.LastActivity.Sub(e.start))
		}
		e.SleepUntil(1200 * time.Second)
		synctest.Wait()

		wantHistory(t, e, "u1", "connect idle(1) idle(2) idle(1)")
		for n, want := range []time.Duration{500 * time.Second, 800 * time.Second, 1150 * time.Second} {
			if got := e.at("u1", "idle", n+1); got != want {
				t.Errorf("OnIdle #%d at %v, want %v", n+1, got, want)
			}
		}
	})
}

// Idle time keeps counting while the client is away (documented choice): a
// disconnected user is not active.
func TestIdleCountsWhileDisconnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, heartbeat.WithIdleThreshold(60*time.Second), heartbeat.WithReconnectWindow(90*time.Second))
		c, _ := e.join("u1", e.Open("u1"))
		e.SleepUntil(115 * time.Second) // last frame: the pong to the ping at 110 s
		c.drop()
		e.SleepUntil(300 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect idle(1) disconnect(connection lost) idle(2) idle(3) expire")
		if got := e.at("u1", "expire", 1); got != 200*time.Second {
			t.Errorf("OnExpire at %v, want 200s", got)
		}
	})
}

func TestSilentClientIsDroppedAtPingTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t) // ping every 25 s, dead after 60 s of silence
		c, _ := e.join("u1", e.Open("u1"))
		c.mute() // keeps reading, never answers a ping

		code, reason := c.closed()
		if code != heartbeat.ClosePingTimeout || reason != "ping timeout" {
			t.Errorf("close = %d %q, want %d \"ping timeout\"", code, reason, heartbeat.ClosePingTimeout)
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(ping timeout)")
		if got, limit := e.at("u1", "disconnect", 1), heartbeat.DefaultPingInterval+heartbeat.DefaultPingTimeout; got != heartbeat.DefaultPingTimeout || got > limit {
			t.Errorf("ping timeout detected at %v, want exactly %v (within interval+timeout = %v)", got, heartbeat.DefaultPingTimeout, limit)
		}
	})
}

// A browser tab: it answers pings (the WebSocket layer does) and sends
// nothing else. It must never be dropped.
func TestBrowserLikeClientIsNotDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, _ := e.join("u1", e.Open("u1"))

		e.SleepUntil(30 * time.Minute)
		synctest.Wait()
		if !c.isOpen() {
			t.Fatalf("connection closed: %v", c.err)
		}
		info, _ := e.srv.Session("u1")
		if !info.Connected {
			t.Fatalf("session state %v, want connected", info.State)
		}
		if silent := e.Elapsed() - info.LastSeen.Sub(e.start); silent >= heartbeat.DefaultPingInterval {
			t.Errorf("last frame %v ago, want less than a ping interval", silent)
		}
		if h := e.rec.history("u1"); strings.Contains(h, "disconnect") {
			t.Errorf("callbacks %s include a disconnect", h)
		}
	})
}

func TestAnyFrameCountsAsAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, _ := e.join("u1", e.Open("u1"))
		c.mute() // no pongs: only activity frames show it is alive
		for range 10 {
			time.Sleep(heartbeat.DefaultPingTimeout - time.Second)
			c.send(`{"type":"activity"}`)
		}
		synctest.Wait()
		if info, _ := e.srv.Session("u1"); !info.Connected || !c.isOpen() {
			t.Fatalf("dropped a client that sent a frame every 29 s: %s", e.rec.history("u1"))
		}
		wantHistory(t, e, "u1", "connect")
	})
}

func TestResumeWithinGraceWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, w := e.join("u1", e.Open("u1"))
		e.SleepUntil(15 * time.Second) // last frame: the pong to the ping at 10 s
		c.drop()

		// The window counts from the last frame, not from the drop.
		e.SleepUntil(10*time.Second + heartbeat.DefaultReconnectWindow - time.Second)
		_, w2 := e.join("u1", w.Token)
		if !w2.Resumed || w2.Token == w.Token {
			t.Errorf("welcome on resume: resumed=%v, fresh token=%v; want true, true", w2.Resumed, w2.Token != w.Token)
		}
		e.SleepUntil(290 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) resume")
		if got := e.at("u1", "disconnect", 1); got != 15*time.Second {
			t.Errorf("OnDisconnect at %v, want 15s", got)
		}
		if ev := e.rec.of("u1")[1].ev; ev.LastSeen.Sub(e.start) != 10*time.Second || ev.ExpiresAt.Sub(e.start) != 70*time.Second {
			t.Errorf("OnDisconnect LastSeen %v ExpiresAt %v, want 10s and 70s", ev.LastSeen.Sub(e.start), ev.ExpiresAt.Sub(e.start))
		}
		if got := e.at("u1", "resume", 1); got != 69*time.Second {
			t.Errorf("OnResume at %v, want 69s", got)
		}
		if info, _ := e.srv.Session("u1"); !info.Connected {
			t.Errorf("state %v after resume, want connected", info.State)
		}
		// A resume token is single-use: whoever replays it is refused and
		// the resumed connection stays.
		replay := e.hello("u1", w.Token)
		if code, reason := replay.closed(); code != heartbeat.CloseUnauthorized || !strings.Contains(reason, "already used") {
			t.Errorf("replayed resume token: closed with %d %q, want %d and \"already used\"", code, reason, heartbeat.CloseUnauthorized)
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) resume")
	})
}

func TestExpireExactlyAtGraceWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, w := e.join("u1", e.Open("u1"))
		e.SleepUntil(15 * time.Second) // last frame at 10 s: expiry at 70 s
		c.drop()

		e.SleepUntil(70*time.Second - time.Millisecond)
		synctest.Wait()
		if info, ok := e.srv.Session("u1"); !ok || info.State != heartbeat.SessionDisconnected {
			t.Fatalf("1 ms before the end of the grace window: %+v, %v; want disconnected", info, ok)
		}
		e.SleepUntil(70 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) expire")
		if got := e.at("u1", "expire", 1); got != 70*time.Second {
			t.Errorf("OnExpire at %v, want 70s", got)
		}
		if _, ok := e.srv.Session("u1"); ok || e.srv.Len() != 0 {
			t.Errorf("expired session still listed (Len %d)", e.srv.Len())
		}

		late := e.hello("u1", w.Token)
		if code, reason := late.closed(); code != heartbeat.CloseExpired || !strings.Contains(reason, "expired") {
			t.Errorf("resume after the grace window closed with %d %q, want %d and an expired reason", code, reason, heartbeat.CloseExpired)
		}
		e.SleepUntil(time.Hour)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) expire")
	})
}

func TestOpenWithoutConnectionExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.Open("u1")
		e.SleepUntil(30 * time.Second)
		e.Open("u2")
		e.Open("u1") // a fresh join token restarts the window
		e.SleepUntil(200 * time.Second)
		synctest.Wait()
		if got := e.at("u1", "expire", 1); got != 90*time.Second {
			t.Errorf("u1 expired at %v, want 90s", got)
		}
		if got := e.at("u2", "expire", 1); got != 90*time.Second {
			t.Errorf("u2 expired at %v, want 90s", got)
		}
	})
}

// Callbacks may call back into the Server (they run with no lock held), and
// nothing of a session starts after Release.
func TestCallbacksCanCallTheServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e *env
		e = newEnv(t,
			heartbeat.OnIdle(func(ev heartbeat.Event) {
				e.rec.add("idle", ev)
				if ev.Times == 2 {
					if err := e.srv.Release(context.Background(), ev.SessionID, "idle for too long"); err != nil {
						t.Errorf("Release from OnIdle: %v", err)
					}
				}
			}),
			heartbeat.OnConnect(func(ev heartbeat.Event) {
				e.rec.add("connect", ev)
				if err := e.srv.Send(context.Background(), ev.SessionID, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 1}); err != nil {
					t.Errorf("Send from OnConnect: %v", err)
				}
				if _, err := e.srv.Open(context.Background(), ev.SessionID); err != nil {
					t.Errorf("Open from OnConnect: %v", err)
				}
			}),
		)
		c, _ := e.join("u1", e.Open("u1"))
		if f := c.next(); f.Type != "queue" || f.Position != 1 {
			t.Errorf("got %+v, want the queue notice sent by OnConnect", f)
		}
		code, reason := c.closed()
		if code != heartbeat.CloseReleased || reason != "idle for too long" {
			t.Errorf("close %d %q, want %d \"idle for too long\"", code, reason, heartbeat.CloseReleased)
		}
		e.SleepUntil(2 * time.Hour)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect idle(1) idle(2)")
	})
}

// A slow callback of one session delays neither the callbacks of others nor
// the heartbeat.
func TestSlowCallbackDoesNotDelayOtherSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e *env
		e = newEnv(t, heartbeat.OnConnect(func(ev heartbeat.Event) {
			if ev.SessionID == "slow" {
				time.Sleep(time.Hour)
			}
			e.rec.add("connect", ev)
		}))
		e.join("slow", e.Open("slow"))
		e.SleepUntil(time.Second)
		e.join("fast", e.Open("fast"))
		e.SleepUntil(400 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "fast", "connect idle(1)")
		if got := e.at("fast", "connect", 1); got != time.Second {
			t.Errorf("fast OnConnect at %v, want 1s", got)
		}
		if info, _ := e.srv.Session("slow"); !info.Connected {
			t.Errorf("slow session dropped while its callback ran")
		}
		wantHistory(t, e, "slow", "") // its OnConnect is still sleeping…
		e.SleepUntil(time.Hour + 2*time.Second)
		synctest.Wait()
		wantHistory(t, e, "slow", "connect idle(1) idle(2) idle(3) idle(4) idle(5) idle(6) idle(7) idle(8) idle(9) idle(10) idle(11) idle(12)") // …then the queue runs in order
	})
}

// Callbacks queued behind a running one never start once Release returns.
func TestReleaseDropsQueuedCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		unblock := make(chan struct{})
		var e *env
		e = newEnv(t, heartbeat.OnConnect(func(ev heartbeat.Event) {
			<-unblock
			e.rec.add("connect", ev)
		}))
		c, _ := e.join("u1", e.Open("u1"))
		e.SleepUntil(400 * time.Second) // idle(1) is queued behind the blocked OnConnect
		c.drop()                        // and so is disconnect
		synctest.Wait()
		if err := e.srv.Release(context.Background(), "u1", "bye"); err != nil {
			t.Fatal(err)
		}
		close(unblock)
		e.SleepUntil(time.Hour)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect")
	})
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	type tc struct {
		name        string
		run         func(e *env) *rawClient // returns the offending client
		code        int
		reason      string // substring of the close reason
		history     string // callbacks of session "bad"
		atMostAfter time.Duration
	}
	hello := func(e *env) *rawClient {
		c, _ := e.join("bad", e.Open("bad"))
		return c
	}
	cases := []tc{
		{name: "oversized frame", code: heartbeat.CloseMessageTooBig, reason: "message too big: the limit is " + strconv.Itoa(heartbeat.DefaultMaxMessageSize) + " bytes",
			history: "connect disconnect(message too big)",
			run: func(e *env) *rawClient {
				c := hello(e)
				c.sendMayFail(`{"type":"activity","pad":"` + strings.Repeat("x", heartbeat.DefaultMaxMessageSize) + `"}`)
				return c
			}},
		// A giant frame is cut off by the WebSocket library before it is
		// read: the same code, without text.
		{name: "giant frame", code: heartbeat.CloseMessageTooBig, history: "connect disconnect(message too big)",
			run: func(e *env) *rawClient {
				c := hello(e)
				c.sendMayFail(`{"type":"activity","pad":"` + strings.Repeat("x", 20*heartbeat.DefaultMaxMessageSize) + `"}`)
				return c
			}},
		{name: "invalid JSON", code: heartbeat.CloseProtocolError, reason: "not a valid JSON", history: "connect disconnect(bad frame)",
			run: func(e *env) *rawClient { c := hello(e); c.send(`{"type":`); return c }},
		{name: "unknown frame type", code: heartbeat.CloseProtocolError, reason: `unknown frame type "dance"`, history: "connect disconnect(bad frame)",
			run: func(e *env) *rawClient { c := hello(e); c.send(`{"type":"dance"}`); return c }},
		{name: "invalid UTF-8", code: heartbeat.CloseInvalidPayload, reason: "not valid UTF-8", history: "connect disconnect(bad frame)",
			run: func(e *env) *rawClient { c := hello(e); c.send("{\"type\":\"activity\",\"x\":\"\xff\"}"); return c }},
		{name: "invalid UTF-8 hello", code: heartbeat.CloseInvalidPayload, reason: "not valid UTF-8",
			run: func(e *env) *rawClient {
				c := e.dialRaw(nil)
				c.send("{\"type\":\"hello\",\"v\":1,\"session\":\"bad\xc0\",\"token\":\"" + e.Open("bad") + "\"}")
				return c
			}},
		{name: "over the frame rate limit", code: heartbeat.CloseRateLimited, reason: "at most 20 frames per second, bursts of 100", history: "connect disconnect(rate limited)",
			run: func(e *env) *rawClient {
				c := hello(e)
				for range heartbeat.DefaultFrameBurst + 1 {
					c.sendMayFail(`{"type":"activity"}`)
				}
				return c
			}},
		{name: "binary frame", code: heartbeat.CloseProtocolError, reason: "binary", history: "connect disconnect(bad frame)",
			run: func(e *env) *rawClient {
				c := hello(e)
				c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
				return c
			}},
		{name: "second hello", code: heartbeat.CloseProtocolError, reason: "duplicate hello", history: "connect disconnect(bad frame)",
			run: func(e *env) *rawClient {
				tok := e.Open("bad")
				c, _ := e.join("bad", tok)
				c.send(`{"type":"hello","v":1,"session":"bad","token":"` + tok + `"}`)
				return c
			}},
		{name: "missing hello", code: heartbeat.CloseProtocolError, reason: "first frame must be hello",
			run: func(e *env) *rawClient { c := e.dialRaw(nil); c.send(`{"type":"activity"}`); return c }},
		{name: "hello without token", code: heartbeat.CloseProtocolError, reason: `"token" is required`,
			run: func(e *env) *rawClient {
				c := e.dialRaw(nil)
				c.send(`{"type":"hello","v":1,"session":"bad"}`)
				return c
			}},
		{name: "no hello in time", code: heartbeat.CloseProtocolError, reason: "no hello within 10s", atMostAfter: 10 * time.Second,
			run: func(e *env) *rawClient { return e.dialRaw(nil) }},
		{name: "oversized hello", code: heartbeat.CloseMessageTooBig, reason: "message too big",
			run: func(e *env) *rawClient {
				c := e.dialRaw(nil)
				c.sendMayFail(`{"type":"hello","v":1,"session":"bad","token":"` + strings.Repeat("x", 5000) + `"}`)
				return c
			}},
		{name: "wrong version", code: heartbeat.CloseUnsupportedVersion, reason: "unsupported protocol version 2",
			run: func(e *env) *rawClient {
				c := e.dialRaw(nil)
				c.send(`{"type":"hello","v":2,"session":"bad","token":"` + e.Open("bad") + `"}`)
				return c
			}},
		{name: "subprotocol not offered", code: heartbeat.CloseUnsupportedVersion, reason: heartbeat.Subprotocol,
			run: func(e *env) *rawClient { return e.dialRaw(nil, "tcc.heartbeat.v9") }},
		{name: "wrong token", code: heartbeat.CloseUnauthorized, reason: "invalid token",
			run: func(e *env) *rawClient { e.Open("bad"); return e.hello("bad", "not-a-token") }},
		{name: "token of another session", code: heartbeat.CloseUnauthorized, reason: "invalid token",
			run: func(e *env) *rawClient { e.Open("bad"); return e.hello("bad", e.Open("other")) }},
		{name: "reused token", code: heartbeat.CloseUnauthorized, reason: "already used", history: "connect",
			run: func(e *env) *rawClient {
				tok := e.Open("bad")
				e.join("bad", tok)
				return e.hello("bad", tok)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t)
				bystander, _ := e.join("ok", e.Open("ok"))
				synctest.Wait()

				bad := tc.run(e)
				code, reason := bad.closed()
				if code != tc.code || !strings.Contains(reason, tc.reason) {
					t.Errorf("closed with %d %q, want %d and a reason containing %q", code, reason, tc.code, tc.reason)
				}
				if tc.atMostAfter > 0 && e.Elapsed() > tc.atMostAfter {
					t.Errorf("closed after %v, want at most %v", e.Elapsed(), tc.atMostAfter)
				}
				synctest.Wait()
				wantHistory(t, e, "bad", tc.history)
				wantHistory(t, e, "ok", "connect")
				if info, _ := e.srv.Session("ok"); !info.Connected || !bystander.isOpen() {
					t.Errorf("bystander session disturbed: %+v", info)
				}
				bystander.send(`{"type":"activity"}`)
				synctest.Wait()
				if !bystander.isOpen() {
					t.Errorf("bystander connection closed: %v", bystander.err)
				}
			})
		})
	}
}

func TestOriginCheck(t *testing.T) {
	dial := func(t *testing.T, e *env, origin string) int {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := e.Dialer().Dial(wsURL, h)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			return resp.StatusCode
		}
		ws.Close()
		return resp.StatusCode
	}
	t.Run("same host by default", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t)
			for origin, want := range map[string]int{
				"":                     http.StatusSwitchingProtocols, // not a browser
				"http://hb":            http.StatusSwitchingProtocols,
				"https://evil.example": http.StatusForbidden,
				"http://hb.evil":       http.StatusForbidden,
			} {
				if got := dial(t, e, origin); got != want {
					t.Errorf("Origin %q: status %d, want %d", origin, got, want)
				}
			}
		})
	})
	t.Run("allow list", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, heartbeat.WithAllowedOrigins("https://App.example.com", "http://localhost:8080"))
			for origin, want := range map[string]int{
				"":                        http.StatusSwitchingProtocols,
				"https://app.example.com": http.StatusSwitchingProtocols,
				"http://localhost:8080":   http.StatusSwitchingProtocols,
				"http://app.example.com":  http.StatusForbidden, // scheme matters
				"http://hb":               http.StatusForbidden, // the list replaces the same-host rule
			} {
				if got := dial(t, e, origin); got != want {
					t.Errorf("Origin %q: status %d, want %d", origin, got, want)
				}
			}
		})
	})
}

func TestAuthorizeHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked []string
		e := newEnv(t, heartbeat.WithAuthorize(func(r *http.Request, sessionID string) error {
			asked = append(asked, sessionID)
			if c, err := r.Cookie("user"); err != nil || c.Value != sessionID {
				return errors.New("cookie does not match the session")
			}
			return nil
		}))
		tok := e.Open("u1")
		withCookie := func(v string) *rawClient {
			h := http.Header{}
			if v != "" {
				h.Set("Cookie", "user="+v)
			}
			c := e.dialRaw(h)
			c.send(`{"type":"hello","v":1,"session":"u1","token":"` + tok + `"}`)
			return c
		}
		for _, cookie := range []string{"", "u2"} {
			if code, reason := withCookie(cookie).closed(); code != heartbeat.CloseUnauthorized || reason != "not authorized" {
				t.Errorf("cookie %q: closed %d %q, want %d \"not authorized\"", cookie, code, reason, heartbeat.CloseUnauthorized)
			}
		}
		// A refusal does not use up the token.
		if f := withCookie("u1").next(); f.Type != "welcome" {
			t.Errorf("with the right cookie: got %+v, want welcome", f)
		}
		synctest.Wait()
		if strings.Join(asked, ",") != "u1,u1,u1" {
			t.Errorf("hook asked about %v, want u1 three times", asked)
		}
		wantHistory(t, e, "u1", "connect")
	})
}

func TestSendDeliversLatestNoticeOfEachKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		tok := e.Open("u1")
		send := func(n heartbeat.Notice) {
			t.Helper()
			if err := e.srv.Send(context.Background(), "u1", n); err != nil {
				t.Fatalf("Send(%+v): %v", n, err)
			}
		}
		// Queued while no client is connected; the second replaces the first.
		send(heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 5})
		send(heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: "motd", Data: json.RawMessage(`{"text":"hi"}`)})
		send(heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 3})

		c, _ := e.join("u1", tok)
		if f := c.next(); f.Type != "queue" || f.Position != 3 {
			t.Errorf("first notice %+v, want queue position 3", f)
		}
		if f := c.next(); f.Type != "custom" || f.Name != "motd" || string(f.Data) != `{"text":"hi"}` {
			t.Errorf("second notice %+v, want custom motd", f)
		}
		send(heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 0})
		send(heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: json.RawMessage(`"server-session-blob"`)})
		if f := c.next(); f.Type != "queue" || f.Position != 0 {
			t.Errorf("got %+v, want queue position 0", f)
		}
		if f := c.next(); f.Type != "ready" || string(f.Data) != `"server-session-blob"` {
			t.Errorf("got %+v, want ready with data", f)
		}
		if err := e.srv.Send(context.Background(), "nobody", heartbeat.Notice{Kind: heartbeat.NoticeQueue}); !errors.Is(err, heartbeat.ErrUnknownSession) {
			t.Errorf("Send to an unknown session: %v, want ErrUnknownSession", err)
		}
	})
}

func TestReleaseEndsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var mu sync.Mutex
		var notices []heartbeat.Notice
		states := &hbtest.StateRecorder{}
		s := e.Connect("u1", e.Open("u1"), states.Option(), hbclient.OnNotice(func(n heartbeat.Notice) {
			mu.Lock()
			notices = append(notices, n)
			mu.Unlock()
		}))
		e.SleepUntil(10 * time.Second)
		if err := e.srv.Release(context.Background(), "u1", "queue timeout"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		<-s.Done()
		synctest.Wait()

		var re *heartbeat.ReleasedError
		if !errors.As(s.Err(), &re) || re.Reason != "queue timeout" || s.State() != hbclient.StateClosed {
			t.Errorf("client ended %v with %v, want closed with ReleasedError{queue timeout}", s.State(), s.Err())
		}
		mu.Lock()
		if len(notices) != 1 || notices[0].Kind != heartbeat.NoticeReleased || notices[0].Reason != "queue timeout" {
			t.Errorf("notices %+v, want one released notice", notices)
		}
		mu.Unlock()
		if got := states.String(); got != "connecting→connected connected→closed" {
			t.Errorf("states %s", got)
		}
		e.SleepUntil(time.Hour)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect") // no disconnect, no expire
		if err := e.srv.Release(context.Background(), "u1", "again"); !errors.Is(err, heartbeat.ErrUnknownSession) {
			t.Errorf("second Release: %v, want ErrUnknownSession", err)
		}
	})
}

func TestReleaseOfDisconnectedSessionPreventsExpire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c, w := e.join("u1", e.Open("u1"))
		c.drop()
		e.SleepUntil(30 * time.Second)
		if err := e.srv.Release(context.Background(), "u1", "user left"); err != nil {
			t.Fatal(err)
		}
		e.SleepUntil(time.Hour)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost)")
		if code, _ := e.hello("u1", w.Token).closed(); code != heartbeat.CloseExpired {
			t.Errorf("resume after Release closed with %d, want %d", code, heartbeat.CloseExpired)
		}
	})
}

func TestNewerConnectionReplacesOlder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		old := e.Connect("u1", e.Open("u1"))
		e.SleepUntil(5 * time.Second)
		_, w := e.join("u1", e.Open("u1")) // e.g. the same user on another device
		<-old.Done()
		if !errors.Is(old.Err(), heartbeat.ErrReplaced) || old.State() != hbclient.StateClosed {
			t.Errorf("older client ended %v with %v, want closed with ErrReplaced", old.State(), old.Err())
		}
		if !w.Resumed {
			t.Errorf("welcome of the newer connection: resumed=false")
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(replaced by a newer connection) resume")
	})
}

// One client that stops reading blocks writes to it; everyone else's
// welcome, notices and pings still go out on time.
func TestStuckClientDoesNotStallOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		stuck, _, err := e.Dialer().Dial(wsURL, nil) // never reads
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		stuck.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":"stuck","token":"`+e.Open("stuck")+`"}`))
		synctest.Wait()

		c, _ := e.join("ok", e.Open("ok"))
		if e.Elapsed() != 0 {
			t.Errorf("welcome arrived at %v, want at once", e.Elapsed())
		}
		e.srv.Send(context.Background(), "ok", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 2})
		if f := c.next(); f.Type != "queue" || e.Elapsed() != 0 {
			t.Errorf("notice %+v at %v, want at once", f, e.Elapsed())
		}
		e.SleepUntil(heartbeat.DefaultPingInterval + time.Second)
		synctest.Wait()
		if info, _ := e.srv.Session("ok"); info.LastSeen.Sub(e.start) != heartbeat.DefaultPingInterval {
			t.Errorf("last pong at %v, want the first ping at %v answered at once", info.LastSeen.Sub(e.start), heartbeat.DefaultPingInterval)
		}
		// The stuck one is cut when its write times out.
		wantHistory(t, e, "stuck", "connect disconnect(write timed out)")
		if got := e.at("stuck", "disconnect", 1); got != heartbeat.DefaultWriteTimeout {
			t.Errorf("stuck client cut at %v, want %v", got, heartbeat.DefaultWriteTimeout)
		}
	})
}

func TestShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		a, _ := e.join("a", e.Open("a"))
		b, _ := e.join("b", e.Open("b"))
		pending := e.dialRaw(nil) // no hello yet
		s := e.Connect("c", e.Open("c"))
		e.Open("waiting")
		e.SleepUntil(time.Second)

		if err := e.srv.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if e.Elapsed() != time.Second {
			t.Errorf("Shutdown took %v with responsive clients", e.Elapsed()-time.Second)
		}
		for name, c := range map[string]*rawClient{"a": a, "b": b, "pending": pending} {
			if code, _ := c.closed(); code != heartbeat.CloseGoingAway {
				t.Errorf("%s closed with %d, want %d", name, code, heartbeat.CloseGoingAway)
			}
		}
		if e.srv.Len() != 0 {
			t.Errorf("Len after Shutdown = %d", e.srv.Len())
		}
		if _, err := e.srv.Open(context.Background(), "d"); !errors.Is(err, heartbeat.ErrServerClosed) {
			t.Errorf("Open after Shutdown: %v, want ErrServerClosed", err)
		}
		if _, resp, err := e.Dialer().Dial(wsURL, nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("dial after Shutdown: %v, want 503", err)
		}
		s.Close()
		e.SleepUntil(time.Hour)
		synctest.Wait()
		for _, id := range []string{"a", "b", "c"} {
			wantHistory(t, e, id, "connect") // no callback after Shutdown
		}
		wantHistory(t, e, "waiting", "")
	})
}

func TestShutdownIsBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		stuck, _, err := e.Dialer().Dial(wsURL, nil) // never reads, never answers the close
		if err != nil {
			t.Fatal(err)
		}
		defer stuck.Close()
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
		}
		if e.Elapsed() != time.Second {
			t.Errorf("Shutdown returned after %v, want 1s", e.Elapsed())
		}
		// The env's cleanup Shutdown then finds everything gone.
	})
}

func TestSessionInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.Open("u1")
		info, ok := e.srv.Session("u1")
		if !ok || info.State != heartbeat.SessionWaiting || info.Connected || !info.LastSeen.IsZero() || !info.OpenedAt.Equal(e.start) {
			t.Errorf("after Open: %+v, %v", info, ok)
		}
		e.SleepUntil(3 * time.Second)
		tok, _ := e.srv.Open(context.Background(), "u1")
		c, _ := e.join("u1", tok)
		e.SleepUntil(7 * time.Second)
		c.send(`{"type":"activity"}`)
		synctest.Wait()
		info, _ = e.srv.Session("u1")
		if info.State != heartbeat.SessionConnected || !info.Connected || info.Since.Sub(e.start) != 3*time.Second ||
			info.LastSeen.Sub(e.start) != 7*time.Second || info.LastActivity.Sub(e.start) != 7*time.Second {
			t.Errorf("connected: %+v", info)
		}
		if e.srv.Len() != 1 {
			t.Errorf("Len = %d, want 1", e.srv.Len())
		}
		if _, ok := e.srv.Session("nobody"); ok {
			t.Errorf("Session(nobody) found")
		}
	})
}
