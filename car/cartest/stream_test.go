package cartest_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

func TestServerSessionContents(t *testing.T) {
	srv, c := setup(t)
	apply(t, c, "u", cartest.DefaultProjectId)
	raw := create(t, c, "u")
	ss, err := cartest.ParseServerSession(raw)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	if ss.Version != 1 || ss.StreamURL != "ws://"+u.Host+"/stream" || ss.ConcurrencyId != "pack-cartest1-1" || len(ss.Token) != 32 {
		t.Fatalf("ServerSession %v", ss)
	}
	if printed := ss.String(); strings.Contains(printed, ss.Token) {
		t.Fatalf("the token shows in %s", printed)
	}
	// Every CreateSession issues a new token.
	ss2, _ := cartest.ParseServerSession(create(t, c, "u"))
	if ss2.Token == ss.Token {
		t.Fatal("a second CreateSession reused the token")
	}
}

func TestStreamRefused(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	apply(t, c, "u", cartest.DefaultProjectId)
	old := create(t, c, "u")
	create(t, c, "u") // replaces old
	_, err := srv.DialStream(ctx, old)
	if !errors.Is(err, cartest.ErrStreamRefused) || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "not current") {
		t.Fatalf("a replaced ServerSession: %v", err)
	}
	for _, bad := range []string{"", "!!!", "e30=", cartest.ServerSession{Version: 2, StreamURL: "ws://x/stream", Token: "t", ConcurrencyId: "c"}.Encode()} {
		if _, err := srv.DialStream(ctx, bad); err == nil || errors.Is(err, cartest.ErrStreamRefused) {
			t.Errorf("ServerSession %q: got %v, want a parse error", bad, err)
		}
	}
	// Plain HTTP on the stream path.
	for _, q := range []string{"", "?concurrency=pack-cartest1-1", "?concurrency=pack-cartest1-1&token=x"} {
		resp, err := http.Get(srv.URL + "/stream" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /stream%s: %d, want 400", q, resp.StatusCode)
		}
	}
	// The server goes on serving.
	if _, err := c.DescribeConcurrentCount(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRepeatedConnectionByCreateSession(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	first := connect(t, srv, c, "u")
	// ApplyConcurrent again does not disturb the connected client…
	apply(t, c, "u", cartest.DefaultProjectId)
	select {
	case <-first.Done():
		t.Fatal("ApplyConcurrent closed the connected stream")
	default:
	}
	// …a new CreateSession (another device) takes over.
	second, err := srv.DialStream(ctx, create(t, c, "u"))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	waitDone(t, first)
	var ce *cartest.CloseError
	if !errors.As(first.Err(), &ce) || ce.Code != cartest.CloseRepeatedConnection || ce.DisconnectCode() != 1 || ce.Reason != "user repeated connection" {
		t.Fatalf("the first stream ended with %v", first.Err())
	}
	if second.ConcurrencyId() != first.ConcurrencyId() || second.UserId() != "u" || state(t, srv, "u") != cartest.StateConnected {
		t.Fatalf("second stream on %s, first on %s", second.ConcurrencyId(), first.ConcurrencyId())
	}
}

func TestSameSessionReconnects(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	apply(t, c, "u", cartest.DefaultProjectId)
	ss := create(t, c, "u")
	a, err := srv.DialStream(ctx, ss)
	if err != nil {
		t.Fatal(err)
	}
	// A second stream of the same session replaces the first, as a
	// client reconnecting before the server saw the loss does.
	b, err := srv.DialStream(ctx, ss)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, a)
	var ce *cartest.CloseError
	if !errors.As(a.Err(), &ce) || ce.Code != cartest.CloseRepeatedConnection {
		t.Fatalf("the first stream ended with %v", a.Err())
	}
	// TCGSDK reconnects with the same ServerSession after a loss.
	b.Drop()
	if !errors.Is(b.Err(), cartest.ErrClosedByClient) {
		t.Fatalf("a dropped stream reports %v", b.Err())
	}
	srv.Advance(time.Minute)
	d, err := srv.DialStream(ctx, ss)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, _ := srv.User("u")
	if got.State != cartest.StateConnected || !got.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after the reconnect: %v", got)
	}
}

func TestExpireHeartbeat(t *testing.T) {
	srv, c := setup(t)
	if err := srv.ExpireHeartbeat("nobody"); err == nil {
		t.Fatal("ExpireHeartbeat of a user with no stream succeeded")
	}
	st := connect(t, srv, c, "u")
	if err := srv.ExpireHeartbeat("u"); err != nil {
		t.Fatal(err)
	}
	waitDone(t, st)
	var ce *cartest.CloseError
	if !errors.As(st.Err(), &ce) || ce.Code != cartest.CloseHeartbeatTimeout || ce.DisconnectCode() != 2 || ce.Reason != "heartbeat timeout" {
		t.Fatalf("the stream ended with %v", st.Err())
	}
	got, _ := srv.User("u")
	if got.State != cartest.StateDisconnected || !got.Until.Equal(t0.Add(cartest.DefaultReconnectWait)) {
		t.Fatalf("after the heartbeat timeout: %v", got)
	}
}

func TestCloseWaitsForTheServer(t *testing.T) {
	srv, c := setup(t)
	st := connect(t, srv, c, "u")
	st.Close()
	if !errors.Is(st.Err(), cartest.ErrClosedByClient) {
		t.Fatalf("Err %v", st.Err())
	}
	// No waiting: Close returned after the server had it disconnected.
	got, _ := srv.User("u")
	if got.State != cartest.StateDisconnected {
		t.Fatalf("after Close: %v", got)
	}
	ev := srv.Events()
	if last := ev[len(ev)-1]; last.Kind != cartest.EventDisconnected || !strings.Contains(last.Detail, "the client closed the stream (code 1000)") {
		t.Fatalf("last event %v", last)
	}
	st.Close() // again: nothing
	st.Drop()
}

// TestMountedInMux serves the server the way examples/refserver does: in
// an apiserver.Mux under /car/, with the stream at /car/stream.
func TestMountedInMux(t *testing.T) {
	srv, err := cartest.NewUnstartedServer(cartest.WithStreamPath("/car/stream"), cartest.WithManualClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	mux := apiserver.NewMux()
	mux.Handle("car", srv, srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	defer hs.Close() // after srv.Close, which closes the streams
	defer srv.Close()

	cred := srv.Credentials()
	c, err := car.NewClient(car.WithEndpoint("http://"+l.Addr().String()), car.WithCredentials(car.StaticCredentials(cred.SecretId, cred.SecretKey)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	apply(t, c, "u", cartest.DefaultProjectId)
	raw := create(t, c, "u")
	ss, _ := cartest.ParseServerSession(raw)
	if want := "ws://" + l.Addr().String() + "/car/stream"; ss.StreamURL != want {
		t.Fatalf("stream URL %s, want %s", ss.StreamURL, want)
	}
	st, err := cartest.DialStream(t.Context(), nil, raw) // as another process would
	if err != nil {
		t.Fatal(err)
	}
	if state(t, srv, "u") != cartest.StateConnected {
		t.Fatal("the mounted stream did not connect")
	}
	srv.Close()
	waitDone(t, st)
	var ce *cartest.CloseError
	if !errors.As(st.Err(), &ce) || ce.Code != cartest.CloseServerClosed {
		t.Fatalf("Close left the hijacked stream with %v", st.Err())
	}
	defer func() {
		if recover() == nil {
			t.Error("Client of an unstarted server did not panic")
		}
	}()
	srv.Client()
}

// TestInsideSynctest runs the server in a bubble on memnet with the
// running clock: the bubble's fake time drives the reconnect wait.
func TestInsideSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")))
		c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		start := srv.Now()
		st := connect(t, srv, c, "u")
		st.Drop()
		time.Sleep(cartest.DefaultReconnectWait - time.Second)
		if state(t, srv, "u") != cartest.StateDisconnected {
			t.Fatal("the wait ended early")
		}
		again := connect(t, srv, c, "u")
		if again.ConcurrencyId() != st.ConcurrencyId() {
			t.Fatalf("came back to %s, had %s", again.ConcurrencyId(), st.ConcurrencyId())
		}
		again.Drop()
		time.Sleep(cartest.DefaultReconnectWait + cartest.DefaultCleanupDelay)
		if _, running := counts(t, c, ""); running != 0 {
			t.Fatalf("Running %d after the wait and the cleanup", running)
		}
		var expired time.Time
		for _, e := range srv.Events() {
			if e.Kind == cartest.EventReconnectWaitExpired {
				expired = e.Time
			}
		}
		if want := start.Add(2*cartest.DefaultReconnectWait - time.Second); !expired.Equal(want) {
			t.Fatalf("the wait expired at %v, want %v", expired, want)
		}
		// Latency is bubble time too.
		srv.InjectFault("DescribeConcurrentCount", cartest.Fault{Latency: time.Hour})
		before := time.Now()
		counts(t, c, "")
		if d := time.Since(before); d != time.Hour {
			t.Fatalf("an hour of latency took %v", d)
		}
		srv.Close()
		c.CloseIdleConnections()
	})
}

func TestDialStreamContext(t *testing.T) {
	srv, c := setup(t)
	apply(t, c, "u", cartest.DefaultProjectId)
	raw := create(t, c, "u")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := srv.DialStream(ctx, raw); err == nil {
		t.Fatal("DialStream with a cancelled context succeeded")
	}
	st, err := cartest.DialStream(t.Context(), &websocket.Dialer{}, raw)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestStreamOutlivesTimeouts: the client stream is a hijacked connection,
// which the server's read, write and idle timeouts do not cut.
func TestStreamOutlivesTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")),
			cartest.WithLimits(cartest.Limits{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second}))
		c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		st := connect(t, srv, c, "u")
		time.Sleep(time.Minute)
		if got := state(t, srv, "u"); got != cartest.StateConnected {
			t.Fatalf("after a minute of 1 s timeouts the stream's user is %s, want %s", got, cartest.StateConnected)
		}
		st.Drop()
		synctest.Wait()
		if got := state(t, srv, "u"); got != cartest.StateDisconnected {
			t.Fatalf("after the drop the user is %s", got)
		}
		srv.Close()
		c.CloseIdleConnections()
	})
}
