package heartbeat_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
)

// streamRecorder collects OnStream events.
type streamRecorder struct {
	mu     sync.Mutex
	events []heartbeat.Event
}

func (r *streamRecorder) option() heartbeat.ServerOption {
	return heartbeat.OnStream(func(ev heartbeat.Event) {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	})
}

// history is e.g. "u1:connected/0 u1:lost/-3".
func (r *streamRecorder) history() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for _, ev := range r.events {
		parts = append(parts, fmt.Sprintf("%s:%s/%d", ev.SessionID, ev.Stream.State, ev.Stream.Code))
	}
	return strings.Join(parts, " ")
}

func (r *streamRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// joinV2 connects a raw client offering both versions, as the browser
// client does, and expects a version 2 welcome.
func (e *env) joinV2(id, token string) *rawClient {
	e.t.Helper()
	c := e.dialRaw(nil, heartbeat.SubprotocolV2, heartbeat.Subprotocol)
	if got := c.ws.Subprotocol(); got != heartbeat.SubprotocolV2 {
		e.t.Fatalf("negotiated %q, want %q", got, heartbeat.SubprotocolV2)
	}
	c.send(fmt.Sprintf(`{"type":"hello","v":2,"session":%q,"token":%q}`, id, token))
	if w := c.next(); w.Type != "welcome" || w.Session != id {
		e.t.Fatalf("first frame = %+v, want a welcome", w)
	}
	return c
}

func stream(state string, code int) string {
	return fmt.Sprintf(`{"type":"stream","state":%q,"code":%d}`, state, code)
}

func TestStreamReportsReachOnStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := &streamRecorder{}
		e := newEnv(t, sr.option())
		c := e.joinV2("u1", e.Open("u1"))
		c.send(stream("connected", 0))
		c.send(stream("connected", 0)) // a repeat is not delivered again
		c.send(stream("disconnected", 2))
		c.send(stream("reconnecting", -2))
		c.send(`{"type":"stream","state":"connected"}`) // code is optional
		c.send(stream("lost", -3))
		synctest.Wait()
		want := "u1:connected/0 u1:disconnected/2 u1:reconnecting/-2 u1:connected/0 u1:lost/-3"
		if got := sr.history(); got != want {
			t.Fatalf("stream events:\n got: %s\nwant: %s", got, want)
		}
		// A stream report is a sign of life, not activity.
		if info, _ := e.srv.Session("u1"); !info.LastActivity.Equal(info.OpenedAt) || !c.isOpen() {
			t.Errorf("session after stream reports: %+v", info)
		}
		wantHistory(t, e, "u1", "connect")
	})
}

func TestVersionNegotiation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		// A client offering both gets version 2, whose welcome says so.
		c := e.dialRaw(nil, heartbeat.SubprotocolV2, heartbeat.Subprotocol)
		c.send(`{"type":"hello","v":2,"session":"a","token":"` + e.Open("a") + `"}`)
		if w := c.next(); w.Type != "welcome" || c.ws.Subprotocol() != heartbeat.SubprotocolV2 {
			t.Fatalf("v2 client: %q %+v", c.ws.Subprotocol(), w)
		}
		// A version 1 client (the Go Session) is served as before.
		s := e.Connect("b", e.Open("b"))
		if s.State() != hbclient.StateConnected {
			t.Fatalf("v1 Session: %v", s.State())
		}
		// The hello's version must match the subprotocol.
		bad := e.dialRaw(nil, heartbeat.SubprotocolV2)
		bad.send(`{"type":"hello","v":1,"session":"c","token":"` + e.Open("c") + `"}`)
		if code, reason := bad.closed(); code != heartbeat.CloseUnsupportedVersion || !strings.Contains(reason, "version 1") {
			t.Errorf("v1 hello on v2: closed %d %q", code, reason)
		}
	})
}

func TestBadStreamFramesCloseOnlyThatConnection(t *testing.T) {
	cases := []struct {
		name, frame, reason string
		v1                  bool
	}{
		{name: "unknown state", frame: stream("gone", 0), reason: `stream: unknown state "gone"`},
		{name: "no state", frame: `{"type":"stream","code":1}`, reason: `stream: field "state" is required`},
		{name: "code too large", frame: stream("lost", 1<<40), reason: `"code" must be a 32-bit integer`},
		{name: "code not an integer", frame: `{"type":"stream","state":"lost","code":"x"}`, reason: "not a valid JSON object"},
		{name: "stream frame on v1", frame: stream("lost", -3), reason: "stream frames need subprotocol " + heartbeat.SubprotocolV2, v1: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sr := &streamRecorder{}
				e := newEnv(t, sr.option())
				bystander := e.joinV2("ok", e.Open("ok"))
				var c *rawClient
				if tc.v1 {
					c, _ = e.join("bad", e.Open("bad"))
				} else {
					c = e.joinV2("bad", e.Open("bad"))
				}
				c.send(tc.frame)
				code, reason := c.closed()
				if code != heartbeat.CloseProtocolError || !strings.Contains(reason, tc.reason) {
					t.Errorf("closed with %d %q, want %d and a reason containing %q", code, reason, heartbeat.CloseProtocolError, tc.reason)
				}
				synctest.Wait()
				wantHistory(t, e, "bad", "connect disconnect(bad frame)")
				bystander.send(stream("connected", 0))
				synctest.Wait()
				if got := sr.history(); got != "ok:connected/0" || !bystander.isOpen() {
					t.Errorf("bystander: stream events %q, open %v", got, bystander.isOpen())
				}
			})
		})
	}
}

func TestStreamFloodIsRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := &streamRecorder{}
		// The connection's frame rate limit (a burst of 100) is raised out of
		// the way: this is about the delivery limit of stream reports.
		e := newEnv(t, sr.option(), heartbeat.WithFrameRateLimit(heartbeat.DefaultFrameRate, 200))
		c := e.joinV2("u1", e.Open("u1"))
		// 100 distinct reports at once: a burst of 10 gets through.
		for i := range 100 {
			c.send(stream("disconnected", i))
		}
		synctest.Wait()
		if n := sr.len(); n != 10 {
			t.Fatalf("%d reports delivered from a flood, want the burst of 10", n)
		}
		// Over the limit, a lost report still gets through, once.
		c.send(stream("lost", -3))
		c.send(stream("lost", 7))
		synctest.Wait()
		if n := sr.len(); n != 11 || !strings.HasSuffix(sr.history(), "u1:lost/-3") {
			t.Fatalf("after lost over the limit: %s", sr.history())
		}
		// The budget refills at one per second.
		time.Sleep(time.Second)
		c.send(stream("connected", 0))
		c.send(stream("reconnecting", -2))
		synctest.Wait()
		if n := sr.len(); n != 12 || !strings.HasSuffix(sr.history(), "u1:connected/0") {
			t.Fatalf("after a second: %s", sr.history())
		}
		// The flood harmed nothing: the connection is still served.
		if !c.isOpen() {
			t.Fatalf("connection closed: %v", c.err)
		}
		wantHistory(t, e, "u1", "connect")
	})
}

func TestStreamReportsOfReleasedSessionAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := &streamRecorder{}
		e := newEnv(t, sr.option())
		c := e.joinV2("u1", e.Open("u1"))
		if err := e.srv.Release(context.Background(), "u1", "done"); err != nil {
			t.Fatal(err)
		}
		c.sendMayFail(stream("lost", -3))
		c.closed()
		synctest.Wait()
		if got := sr.history(); got != "" {
			t.Errorf("stream events after Release: %s", got)
		}
	})
}

// The Go client reports the stream too: the latest report goes out at once
// and again after a resume; repeats are not sent; a v1 server gets none.
func TestSessionReportStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := &streamRecorder{}
		e := newEnv(t, sr.option())
		d := &hbtest.SwitchDialer{L: e.l}
		s := e.Connect("u1", e.Open("u1"), hbclient.WithDialer(d.Dialer()))
		for _, r := range []heartbeat.StreamReport{{State: heartbeat.StreamConnected}, {State: heartbeat.StreamConnected}, {State: heartbeat.StreamDisconnected, Code: 2}} {
			if err := s.ReportStream(r); err != nil {
				t.Fatalf("ReportStream(%+v): %v", r, err)
			}
			synctest.Wait()
		}
		d.Cut()
		synctest.Wait()
		if err := s.ReportStream(heartbeat.StreamReport{State: heartbeat.StreamLost, Code: -3}); err != nil {
			t.Fatalf("ReportStream while reconnecting: %v", err)
		}
		e.SleepUntil(30 * time.Second)
		synctest.Wait()
		if s.State() != hbclient.StateConnected {
			t.Fatalf("state %v", s.State())
		}
		if want := "u1:connected/0 u1:disconnected/2 u1:lost/-3"; sr.history() != want {
			t.Errorf("stream events %q, want %q", sr.history(), want)
		}
		var ve *heartbeat.ValidationError
		if err := s.ReportStream(heartbeat.StreamReport{State: "gone"}); !errors.As(err, &ve) || ve.Field != "StreamReport.State" {
			t.Errorf("bad state: %v", err)
		}
		s.Close()
		if err := s.ReportStream(heartbeat.StreamReport{State: heartbeat.StreamLost}); err == nil {
			t.Errorf("ReportStream after Close succeeded")
		}
	})
}
