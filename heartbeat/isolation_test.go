package heartbeat_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

const stuckClients = 64

// dialStuck connects a client that says hello and then never reads again.
func dialStuck(t *testing.T, d *websocket.Dialer, url, id, token string) *websocket.Conn {
	t.Helper()
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":"`+id+`","token":"`+token+`"}`)); err != nil {
		t.Fatalf("hello %s: %v", id, err)
	}
	return ws
}

// 64 clients that said hello and never read: every write to them blocks
// (memnet pipes have no buffer), their welcome and a notice each included.
// Everyone else's welcome, notices and pings still go out at once, and each
// stuck client is cut at its own write deadline.
func TestManyStuckClientsDoNotStallOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		for i := range stuckClients {
			id := fmt.Sprintf("stuck-%d", i)
			dialStuck(t, e.Dialer(), wsURL, id, e.Open(id))
		}
		synctest.Wait()
		for i := range stuckClients {
			e.srv.Send(context.Background(), fmt.Sprintf("stuck-%d", i), heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: i})
		}
		synctest.Wait()

		var ok []string
		for i := range 20 {
			id := fmt.Sprintf("ok-%d", i)
			ok = append(ok, id)
			c, _ := e.join(id, e.Open(id))
			if e.Elapsed() != 0 {
				t.Fatalf("%s: welcome at %v, want at once", id, e.Elapsed())
			}
			e.srv.Send(context.Background(), id, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 1})
			if f := c.next(); f.Type != "queue" || e.Elapsed() != 0 {
				t.Fatalf("%s: notice %+v at %v, want at once", id, f, e.Elapsed())
			}
		}
		e.SleepUntil(heartbeat.DefaultPingInterval + time.Second)
		synctest.Wait()
		for _, id := range ok {
			if info, _ := e.srv.Session(id); !info.Connected || info.LastSeen.Sub(e.start) != heartbeat.DefaultPingInterval {
				t.Errorf("%s: connected=%v, last pong at %v; want the first ping (%v) answered at once", id, info.Connected, info.LastSeen.Sub(e.start), heartbeat.DefaultPingInterval)
			}
		}
		for i := range stuckClients {
			id := fmt.Sprintf("stuck-%d", i)
			wantHistory(t, e, id, "connect disconnect(write timed out)")
			if got := e.at(id, "disconnect", 1); got != heartbeat.DefaultWriteTimeout {
				t.Errorf("%s cut at %v, want its write timeout %v", id, got, heartbeat.DefaultWriteTimeout)
			}
		}
	})
}

// smallBufferListener gives every accepted TCP connection a small send
// buffer, so that a client that stops reading blocks the server's writes
// after a few KB instead of a few MB.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// The same over real loopback TCP, with wall-clock latencies: 64 clients
// that never read, each with 128 KB of notices queued (far more than the
// socket buffers hold, so every write to them blocks), must not slow anyone
// else's connect (dial, upgrade, hello, welcome) or notice (Send to
// receipt). Their p99 stays within 2× the baseline measured in the same test
// before the stuck clients came (plus 25 ms for the scheduling noise of a
// loaded 2-core machine;
// before the fix they took up to the 10 s write timeout).
func TestStuckClientsLatencyLoopback(t *testing.T) {
	srv, err := heartbeat.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(smallBufferListener{ln})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
	})
	url := "ws://" + ln.Addr().String() + "/"
	dialer := &websocket.Dialer{
		Subprotocols: []string{heartbeat.Subprotocol},
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4 << 10)
			}
			return c, err
		},
	}

	// measure runs workers clients at a time, each connecting and getting
	// a notice perClient times in turn, so that every sample is taken while
	// the stuck clients are there.
	const workers, perClient = 5, 40
	measure := func(phase string) (connect, notice []time.Duration) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range perClient {
					id := fmt.Sprintf("%s-%d-%d", phase, w, i)
					c, n, err := connectOnce(srv, dialer, url, id)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					connect, notice = append(connect, c), append(notice, n)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return connect, notice
	}
	measure("warmup")
	stuck := func(round int) {
		big := heartbeat.Notice{Kind: heartbeat.NoticeCustom, Data: []byte(`"` + strings.Repeat("x", heartbeat.MaxNoticeDataSize-2) + `"`)}
		for i := range stuckClients {
			id := fmt.Sprintf("stuck-%d-%d", round, i)
			token, err := srv.Open(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			dialStuck(t, dialer, url, id, token)
			for k := range 4 { // 4 × 32 KB each, far more than the socket buffers
				big.Name = fmt.Sprintf("n%d", k)
				srv.Send(context.Background(), id, big)
			}
		}
	}
	// Scheduling noise on a shared machine can spoil one round; a stuck
	// writer would spoil all of them (by seconds), so up to 3 rounds are
	// tried and one within the bound passes.
	for round := 1; ; round++ {
		baseConnect, baseNotice := measure(fmt.Sprintf("base%d", round))
		stuck(round)
		stuckConnect, stuckNotice := measure(fmt.Sprintf("during%d", round))
		var failed []string
		for _, m := range []struct {
			name       string
			base, with []time.Duration
		}{{"connect", baseConnect, stuckConnect}, {"notice", baseNotice, stuckNotice}} {
			b50, b99, bmax := percentile(m.base, 50), percentile(m.base, 99), percentile(m.base, 100)
			s50, s99, smax := percentile(m.with, 50), percentile(m.with, 99), percentile(m.with, 100)
			limit := 2*b99 + 25*time.Millisecond
			t.Logf("round %d: %s latency, %d samples each, %d clients at a time: baseline p50 %v p99 %v max %v; with %d stuck clients p50 %v p99 %v max %v (p99 limit %v)",
				round, m.name, len(m.base), workers, b50, b99, bmax, stuckClients, s50, s99, smax, limit)
			if s99 > limit {
				failed = append(failed, fmt.Sprintf("%s p99 %v with %d stuck clients, want at most %v (baseline p99 %v)", m.name, s99, stuckClients, limit, b99))
			}
		}
		if len(failed) == 0 {
			return
		}
		if round == 3 {
			t.Fatalf("in each of 3 rounds; the last: %s", strings.Join(failed, "; "))
		}
	}
}

// connectOnce connects a fresh session (dial, upgrade, hello, welcome) and
// has a notice sent to it; it returns both latencies.
func connectOnce(srv *heartbeat.Server, dialer *websocket.Dialer, url, id string) (connect, notice time.Duration, err error) {
	token, err := srv.Open(context.Background(), id)
	if err != nil {
		return 0, 0, err
	}
	defer srv.Release(context.Background(), id, "done")
	t0 := time.Now()
	ws, _, err := dialer.Dial(url, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: dial: %w", id, err)
	}
	defer ws.Close()
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":"`+id+`","token":"`+token+`"}`))
	if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), `"welcome"`) {
		return 0, 0, fmt.Errorf("%s: welcome: %.80q, %v", id, data, err)
	}
	connect = time.Since(t0)
	t1 := time.Now()
	if err := srv.Send(context.Background(), id, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 1}); err != nil {
		return 0, 0, err
	}
	if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), `"queue"`) {
		return 0, 0, fmt.Errorf("%s: notice: %.80q, %v", id, data, err)
	}
	return connect, time.Since(t1), nil
}

// percentile is the nearest-rank p-th percentile.
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// The frame rate limit is exactly what WithFrameRateLimit says: the
// documented rate forever and a full burst at once are fine, one frame more
// closes the connection with CloseRateLimited, and the session takes the
// normal disconnect path with its resume token revoked.
func TestFrameRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		steady, _ := e.join("steady", e.Open("steady"))
		c, w := e.join("u1", e.Open("u1"))
		for range 60 * heartbeat.DefaultFrameRate { // a minute at the limit, pongs on top
			steady.send(`{"type":"activity"}`)
			time.Sleep(time.Second / heartbeat.DefaultFrameRate)
		}
		synctest.Wait()
		if !steady.isOpen() {
			t.Fatalf("a client at exactly the limit was closed: %v", steady.err)
		}
		time.Sleep(time.Second) // away from the pong u1 sent at 60 s

		for range heartbeat.DefaultFrameBurst { // a full burst at once
			c.send(`{"type":"activity"}`)
		}
		time.Sleep(time.Second) // refills DefaultFrameRate frames
		for range heartbeat.DefaultFrameRate {
			c.send(`{"type":"activity"}`)
		}
		synctest.Wait()
		if !c.isOpen() {
			t.Fatalf("closed within the limit: %v", c.err)
		}
		over := e.Elapsed()
		c.send(`{"type":"activity"}`)
		code, reason := c.closed()
		if code != heartbeat.CloseRateLimited || reason != "rate limit: at most 20 frames per second, bursts of 100" {
			t.Errorf("closed with %d %q, want %d and the limit", code, reason, heartbeat.CloseRateLimited)
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(rate limited)")
		if ev := e.rec.of("u1")[1].ev; !ev.LastSeen.Equal(e.start.Add(over)) || !ev.ExpiresAt.Equal(e.start.Add(over+heartbeat.DefaultReloadGrace)) {
			t.Errorf("OnDisconnect LastSeen %v ExpiresAt %v, want %v and the reload grace after it", ev.LastSeen.Sub(e.start), ev.ExpiresAt.Sub(e.start), over)
		}
		// The resume token is revoked: only a fresh Open brings it back.
		again := e.hello("u1", w.Token)
		if code, reason := again.closed(); code != heartbeat.CloseUnauthorized || !strings.Contains(reason, "superseded") {
			t.Errorf("resume after the rate limit: %d %q, want %d", code, reason, heartbeat.CloseUnauthorized)
		}
		e.SleepUntil(over + heartbeat.DefaultReloadGrace)
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(rate limited) expire")
		if !steady.isOpen() {
			t.Errorf("the other session was disturbed")
		}
	})
}

// Control frames count too: a ping flood is closed like any other.
func TestFrameRateLimitCountsPings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, heartbeat.WithFrameRateLimit(5, 10))
		c, _ := e.join("u1", e.Open("u1"))
		for range 11 {
			c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		}
		if code, _ := c.closed(); code != heartbeat.CloseRateLimited {
			t.Errorf("ping flood closed with %d, want %d", code, heartbeat.CloseRateLimited)
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(rate limited)")
	})
}

// A client that goes on flooding after it was told to close, without
// reading, is cut after one more burst: the server does not keep reading
// its frames until the close handshake times out.
func TestFloodAfterCloseIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, heartbeat.WithFrameRateLimit(5, 10))
		ws, _, err := e.Dialer().Dial(wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","v":1,"session":"u1","token":"`+e.Open("u1")+`"}`))
		if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), "welcome") {
			t.Fatalf("welcome: %q, %v", data, err)
		}
		sent := 0
		for ; sent < 1000; sent++ {
			if ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"activity"}`)) != nil {
				break
			}
		}
		if sent > 2*10+1 || e.Elapsed() != 0 {
			t.Errorf("connection cut after %d frames at %v, want after at most two bursts (21) at once", sent, e.Elapsed())
		}
		synctest.Wait()
		wantHistory(t, e, "u1", "connect disconnect(rate limited)")
	})
}
