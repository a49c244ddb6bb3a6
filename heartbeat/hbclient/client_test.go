package hbclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

func TestClientLocalIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var mu sync.Mutex
		var got []string
		s := e.Connect("u1", e.Open("u1"),
			hbclient.WithIdleThreshold(100*time.Second),
			hbclient.OnIdle(func(ev heartbeat.Event) {
				mu.Lock()
				got = append(got, fmt.Sprintf("%d@%v", ev.Times, ev.At.Sub(e.start)))
				mu.Unlock()
			}))
		e.SleepUntil(250 * time.Second)
		s.Touch()
		e.SleepUntil(460 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if want := "1@1m40s 2@3m20s 1@5m50s 2@7m30s"; strings.Join(got, " ") != want {
			t.Errorf("local idle callbacks %v, want %s", got, want)
		}
	})
}

func TestClientCoalescesActivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := hbtest.NewFakeServer(t)
		s := fs.Connect(t, hbclient.WithActivityInterval(5*time.Second))
		for range 1000 { // a keystroke every 10 ms for 10 s
			s.Touch()
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		// Leading edge at once, then one trailing frame per interval.
		if want := "hello@0s activity@0s activity@5s activity@10s"; fs.String() != want {
			t.Errorf("frames received:\n got: %s\nwant: %s", fs, want)
		}
	})
}

func TestClientWatchdogDetectsSilentServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := hbtest.NewFakeServer(t) // never pings
		states := &hbtest.StateRecorder{}
		fs.Connect(t, states.Option(), hbclient.WithReconnectDelay(func(int) time.Duration { return time.Second }))
		time.Sleep(65 * time.Second)
		synctest.Wait()
		if want := "hello@0s gone@1m0s hello@1m1s"; fs.String() != want {
			t.Errorf("server saw %s, want %s", fs, want)
		}
		if want := "connecting→connected connected→reconnecting reconnecting→connected"; states.String() != want {
			t.Errorf("states %s, want %s", states, want)
		}
	})
}

func TestClientReconnectsAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		d := &hbtest.SwitchDialer{L: e.l}
		states := &hbtest.StateRecorder{}
		s := e.Connect("u1", e.Open("u1"), hbclient.WithDialer(d.Dialer()), states.Option())

		e.SleepUntil(10 * time.Second)
		d.Cut()
		synctest.Wait()
		if s.State() != hbclient.StateReconnecting {
			t.Errorf("state right after the drop: %v, want reconnecting", s.State())
		}
		s.Touch() // user input during the outage is reported after the resume
		e.SleepUntil(40 * time.Second)
		synctest.Wait()

		if s.State() != hbclient.StateConnected || s.Err() != nil {
			t.Fatalf("state %v (%v), want connected", s.State(), s.Err())
		}
		if want := "connecting→connected connected→reconnecting reconnecting→connected"; states.String() != want {
			t.Errorf("states %s, want %s", states, want)
		}
		wantHistory(t, e, "u1", "connect disconnect(connection lost) resume")
		resumed := e.at("u1", "resume", 1)
		if resumed <= 10*time.Second || resumed > 20*time.Second {
			t.Errorf("resumed at %v, want within the first backoff steps after 10s", resumed)
		}
		if info, _ := e.srv.Session("u1"); info.LastActivity.Sub(e.start) != resumed {
			t.Errorf("LastActivity %v, want the resume time %v (activity reported on resume)", info.LastActivity.Sub(e.start), resumed)
		}

		// A second outage resumes with the newer resume token.
		d.Cut()
		e.SleepUntil(80 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) resume disconnect(connection lost) resume")
	})
}

// Each outage starts from the first wait: waits grown during a long first
// outage do not slow the reconnect after the second.
func TestClientFreshBackOffPerOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		d := &hbtest.SwitchDialer{L: e.l}
		var asked []int // the attempt numbers the delay was asked for
		exponential := func(n int) time.Duration {
			asked = append(asked, n)
			return min(time.Second<<(n-1), time.Minute)
		}
		e.Connect("u1", e.Open("u1"), hbclient.WithDialer(d.Dialer()), hbclient.WithReconnectDelay(exponential))
		outage := func(from, length time.Duration) {
			e.SleepUntil(from)
			d.SetOff(true)
			d.Cut()
			e.SleepUntil(from + length)
			d.SetOff(false)
		}
		// Waits 1, 2, 4, 8, 16 s: the fifth attempt, at 41 s, finds the
		// network back (it returned at 40 s).
		outage(10*time.Second, 30*time.Second)
		e.SleepUntil(60 * time.Second)
		synctest.Wait()
		if got := e.at("u1", "resume", 1); got != 41*time.Second {
			t.Errorf("first resume at %v, want 41s", got)
		}
		// The count starts again: 1 s; a continued one would wait 32 s.
		outage(60*time.Second, 500*time.Millisecond)
		e.SleepUntil(80 * time.Second)
		synctest.Wait()
		if got := e.at("u1", "resume", 2); got != 61*time.Second {
			t.Errorf("second resume at %v, want 61s", got)
		}
		if want := []int{1, 2, 3, 4, 5, 1}; !slices.Equal(asked, want) {
			t.Errorf("delays asked for attempts %v over two outages, want %v", asked, want)
		}
	})
}

func TestClientExpiresWhenServerUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		d := &hbtest.SwitchDialer{L: e.l}
		states := &hbtest.StateRecorder{}
		s := e.Connect("u1", e.Open("u1"), hbclient.WithDialer(d.Dialer()), states.Option())
		e.SleepUntil(10 * time.Second)
		d.SetOff(true)
		d.Cut()

		<-s.Done()
		synctest.Wait() // the last state change is delivered
		if e.Elapsed() > 100*time.Second {
			t.Errorf("gave up at %v, after the grace window (10s + 90s)", e.Elapsed())
		}
		if !errors.Is(s.Err(), heartbeat.ErrExpired) || s.State() != hbclient.StateExpired {
			t.Errorf("ended %v with %v, want expired with ErrExpired", s.State(), s.Err())
		}
		if want := "connecting→connected connected→reconnecting reconnecting→expired"; states.String() != want {
			t.Errorf("states %s, want %s", states, want)
		}
		e.SleepUntil(101 * time.Second)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(connection lost) expire")
	})
}

// A client whose own window is longer than the server's learns at its next
// attempt that the session is gone.
func TestClientResumeRefusedAfterServerExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		d := &hbtest.SwitchDialer{L: e.l}
		s := e.Connect("u1", e.Open("u1"), hbclient.WithDialer(d.Dialer()), hbclient.WithResumeWindow(200*time.Second))
		e.SleepUntil(10 * time.Second)
		d.SetOff(true)
		d.Cut()
		e.SleepUntil(150 * time.Second)
		d.SetOff(false)

		<-s.Done()
		synctest.Wait()
		var ce *heartbeat.CloseError
		if !errors.Is(s.Err(), heartbeat.ErrExpired) || !errors.As(s.Err(), &ce) || ce.Code != heartbeat.CloseExpired {
			t.Errorf("Err = %v, want ErrExpired from a CloseExpired close", s.Err())
		}
		if s.State() != hbclient.StateExpired {
			t.Errorf("state %v, want expired", s.State())
		}
		wantHistory(t, e, "u1", "connect disconnect(connection lost) expire")
	})
}

func TestClientCloseIsIdempotentAndClean(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		states := &hbtest.StateRecorder{}
		s := e.Connect("u1", e.Open("u1"), states.Option())
		e.SleepUntil(time.Second)

		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { s.Close() })
		}
		wg.Wait()
		if err := s.Close(); err != nil {
			t.Errorf("Close again: %v", err)
		}
		select {
		case <-s.Done():
		default:
			t.Errorf("Done not closed after Close")
		}
		if s.State() != hbclient.StateClosed || s.Err() != nil {
			t.Errorf("after Close: %v, %v; want closed, nil", s.State(), s.Err())
		}
		if want := "connecting→connected connected→closed"; states.String() != want {
			t.Errorf("states %s, want %s (all delivered before Close returns)", states, want)
		}
		if e.Elapsed() != time.Second {
			t.Errorf("Close took %v; the server answers the close at once", e.Elapsed()-time.Second)
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(closed by client)")
		// The bubble checks that no goroutine, timer or connection is left.
	})
}

func TestClientCloseWhileReconnecting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		d := &hbtest.SwitchDialer{L: e.l}
		s := e.Connect("u1", e.Open("u1"), hbclient.WithDialer(d.Dialer()))
		d.SetOff(true)
		d.Cut()
		e.SleepUntil(5 * time.Second)
		s.Close()
		if e.Elapsed() != 5*time.Second || s.State() != hbclient.StateClosed {
			t.Errorf("Close while reconnecting: took %v, state %v", e.Elapsed()-5*time.Second, s.State())
		}
	})
}

func TestClientNotices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		got := make(chan heartbeat.Notice, 10)
		tok := e.Open("u1")
		e.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 4})
		e.Connect("u1", tok, hbclient.OnNotice(func(n heartbeat.Notice) { got <- n }))
		if n := <-got; n.Kind != heartbeat.NoticeQueue || n.Position != 4 {
			t.Errorf("first notice %+v, want queue position 4", n)
		}
		e.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: json.RawMessage(`{"serverSession":"abc"}`)})
		if n := <-got; n.Kind != heartbeat.NoticeReady || string(n.Data) != `{"serverSession":"abc"}` {
			t.Errorf("notice %+v, want ready with data", n)
		}
		e.SleepUntil(301 * time.Second)
		if n := <-got; n.Kind != heartbeat.NoticeIdle || n.Times != 1 {
			t.Errorf("notice %+v, want idle times 1", n)
		}
	})
}

func TestConnectRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		connect := func(id, token string) error {
			s, err := hbclient.Connect(context.Background(), wsURL, id, token, hbclient.WithDialer(e.Dialer()))
			if err == nil {
				s.Close()
			}
			return err
		}
		tok := e.Open("u1")
		var ce *heartbeat.CloseError
		if err := connect("u1", "forged"); !errors.Is(err, heartbeat.ErrUnauthorized) || !errors.As(err, &ce) || ce.Code != heartbeat.CloseUnauthorized {
			t.Errorf("forged token: %v, want a CloseUnauthorized CloseError", err)
		}
		if err := connect("u1", tok); err != nil {
			t.Fatalf("good token: %v", err)
		}
		if err := connect("u1", tok); !errors.Is(err, heartbeat.ErrUnauthorized) {
			t.Errorf("reused token: %v, want ErrUnauthorized", err)
		}
		stale := e.Open("u2")
		e.SleepUntil(heartbeat.DefaultGraceWindow + time.Second)
		if err := connect("u2", stale); !errors.Is(err, heartbeat.ErrExpired) {
			t.Errorf("token of an expired session: %v, want ErrExpired", err)
		}

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := hbclient.Connect(ctx, wsURL, "u1", e.Open("u1"), hbclient.WithDialer(e.Dialer())); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: %v, want context.Canceled", err)
		}

		e.srv.Shutdown(context.Background())
		var he *heartbeat.HandshakeError
		if err := connect("u1", tok); !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("after Shutdown: %v, want HandshakeError 503", err)
		}
	})
}

func TestConnectToServerWithoutSubprotocol(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memnet.Listen("plain")
		up := websocket.Upgrader{} // selects no subprotocol
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ws, err := up.Upgrade(w, r, nil); err == nil {
				ws.ReadMessage()
				ws.Close()
			}
		})}
		go hs.Serve(l)
		defer hs.Close()
		_, err := hbclient.Connect(context.Background(), "ws://plain/", "u1", "t", hbclient.WithDialer(&websocket.Dialer{NetDialContext: l.DialContext}))
		var he *heartbeat.HandshakeError
		if !errors.As(err, &he) || !strings.Contains(err.Error(), heartbeat.Subprotocol) {
			t.Errorf("Connect = %v, want a HandshakeError naming the subprotocol", err)
		}
	})
}

func TestClientReportStreamToV1Server(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := hbtest.NewFakeServer(t) // speaks v1 only
		s, err := hbclient.Connect(context.Background(), "ws://fake/", "u1", "t", hbclient.WithDialer(&websocket.Dialer{NetDialContext: fs.L.DialContext}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.ReportStream(heartbeat.StreamReport{State: heartbeat.StreamLost}); !errors.Is(err, hbclient.ErrStreamUnsupported) {
			t.Errorf("ReportStream to a v1 server: %v, want ErrStreamUnsupported", err)
		}
	})
}
