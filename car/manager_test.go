package car_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

const mgrProject = "cap-manager"

// managerEnv is a CAR reference server, a SessionManager on it, and the
// manager's heartbeat endpoint, all on in-memory networks inside a
// synctest bubble: the fake clock drives CAR's waits, the heartbeat's and
// the manager's alike.
type managerEnv struct {
	t        *testing.T
	car      *cartest.Server
	mgr      *car.SessionManager
	hb       *memnet.Listener
	mu       sync.Mutex
	releases []car.Release
	// retryEvery is how often a client retries during an outage.
	retryEvery time.Duration
}

type envConfig struct {
	packSize      int
	retryEvery    time.Duration // default 100 ms
	carWait       time.Duration
	cleanup       time.Duration
	noRateLimits  bool
	managerOption []car.ManagerOption
	// wrap, when set, wraps the API client's transport (to fail or
	// observe calls).
	wrap func(http.RoundTripper) http.RoundTripper
}

func newManagerEnv(t *testing.T, cfg envConfig) *managerEnv {
	t.Helper()
	if cfg.packSize == 0 {
		cfg.packSize = 2
	}
	if cfg.carWait == 0 {
		cfg.carWait = 2 * time.Minute // longer than the manager's 90 s: the manager releases first
	}
	if cfg.cleanup == 0 {
		cfg.cleanup = 500 * time.Millisecond
	}
	carNet := memnet.Listen("car")
	opts := []cartest.Option{
		cartest.WithListener(carNet),
		cartest.WithProject(cartest.Project{ProjectId: mgrProject, ReconnectWait: cfg.carWait}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: cfg.packSize, Projects: []string{mgrProject}}),
		cartest.WithCleanupDelay(cfg.cleanup),
	}
	if cfg.noRateLimits {
		opts = append(opts, cartest.WithoutRateLimits())
	}
	srv := cartest.Start(t, opts...)
	var copts []car.Option
	if cfg.wrap != nil {
		copts = append(copts, car.WithHTTPClient(&http.Client{Transport: cfg.wrap(&http.Transport{DialContext: carNet.DialContext})}))
	}
	client := srv.Client(copts...)
	env := &managerEnv{t: t, car: srv, hb: memnet.Listen("heartbeat"), retryEvery: cfg.retryEvery}
	if env.retryEvery == 0 {
		env.retryEvery = 100 * time.Millisecond
	}
	mopts := append([]car.ManagerOption{car.OnRelease(func(r car.Release) {
		env.mu.Lock()
		env.releases = append(env.releases, r)
		env.mu.Unlock()
	})}, cfg.managerOption...)
	mgr, err := car.NewSessionManager(client, mgrProject, mopts...)
	if err != nil {
		t.Fatal(err)
	}
	env.mgr = mgr
	hs := &http.Server{Handler: mgr}
	go hs.Serve(env.hb)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := mgr.Shutdown(ctx); err != nil && !errors.Is(err, car.ErrManagerClosed) {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
		client.CloseIdleConnections()
	})
	return env
}

func (env *managerEnv) released() []car.Release {
	env.mu.Lock()
	defer env.mu.Unlock()
	return append([]car.Release(nil), env.releases...)
}

// destroyCalls counts the DestroySession calls CAR answered successfully.
func (env *managerEnv) destroyCalls() int {
	n := 0
	for _, e := range env.car.Events() {
		if e.Kind == cartest.EventCall && e.Action == "DestroySession" && e.Code == "" {
			n++
		}
	}
	return n
}

func (env *managerEnv) start(userID string) *car.Lease {
	env.t.Helper()
	lease, err := env.mgr.Start(env.t.Context(), car.StartRequest{UserId: userID, UserIp: "10.0.0.1", ClientSession: "cs-" + userID})
	if err != nil {
		env.t.Fatalf("Start(%s): %v", userID, err)
	}
	return lease
}

// clientNet is one user's network: it can be cut (dials fail) and its
// current connection dropped, as when a laptop's Wi-Fi goes.
type clientNet struct {
	l       *memnet.Listener
	mu      sync.Mutex
	offline bool
	conn    net.Conn
}

func (n *clientNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offline {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("network is down")}
	}
	c, err := n.l.DialContext(ctx, network, addr)
	n.conn = c
	return c, err
}

// cut takes the network down and breaks the current connection.
func (n *clientNet) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.offline = true
	if n.conn != nil {
		n.conn.Close()
	}
}

func (n *clientNet) restore() {
	n.mu.Lock()
	n.offline = false
	n.mu.Unlock()
}

// browser is a user's heartbeat client.
type browser struct {
	sess    *hbclient.Client
	net     *clientNet
	mu      sync.Mutex
	notices []noticeAt
}

type noticeAt struct {
	heartbeat.Notice
	at time.Time
}

func (env *managerEnv) connect(lease *car.Lease) *browser {
	env.t.Helper()
	b := &browser{net: &clientNet{l: env.hb}}
	sess, err := hbclient.Connect(env.t.Context(), "ws://heartbeat/", lease.HeartbeatSession, lease.HeartbeatToken,
		hbclient.WithDialer(&websocket.Dialer{NetDialContext: b.net.dial}),
		// Retry often during an outage (100 ms by default), so a test
		// decides when the client is back by restoring its network.
		hbclient.WithReconnectDelay(func(int) time.Duration { return env.retryEvery }),
		hbclient.OnNotice(func(n heartbeat.Notice) {
			b.mu.Lock()
			b.notices = append(b.notices, noticeAt{n, time.Now()})
			b.mu.Unlock()
		}))
	if err != nil {
		env.t.Fatalf("hbclient.Connect: %v", err)
	}
	env.t.Cleanup(func() { sess.Close() })
	b.sess = sess
	return b
}

func (b *browser) received(kind heartbeat.NoticeKind) []noticeAt {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []noticeAt
	for _, n := range b.notices {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

func userState(t *testing.T, mgr *car.SessionManager, userID string) car.UserSnapshot {
	t.Helper()
	for _, u := range mgr.Snapshot().Users {
		if u.UserId == userID {
			return u
		}
	}
	return car.UserSnapshot{UserId: userID, State: -1}
}

func TestReconnectWithinTheWaitKeepsTheConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		lease := env.start("u1")
		stream, err := env.car.DialStream(t.Context(), lease.ServerSession)
		if err != nil {
			t.Fatal(err)
		}
		b := env.connect(lease)
		synctest.Wait()
		held, _ := env.car.User("u1")
		if u := userState(t, env.mgr, "u1"); u.State != car.LeaseActive || !u.Connected {
			t.Fatalf("after connecting: %+v", u)
		}

		// The user's network goes: heartbeat and stream drop together.
		b.net.cut()
		stream.Drop()
		synctest.Wait()
		if u := userState(t, env.mgr, "u1"); u.State != car.LeaseDisconnected {
			t.Fatalf("after the drop: %+v", u)
		}
		// Back 1 s before the 90 s reconnect wait ends (the client's next
		// 100 ms retry lands at 88.9 s + ≤ 100 ms).
		time.Sleep(car.DefaultReconnectWait - 1100*time.Millisecond)
		b.net.restore()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if b.sess.State() != hbclient.StateConnected {
			t.Fatalf("client state %v after the network came back", b.sess.State())
		}
		// TCGSDK reconnects its stream with the same ServerSession.
		if _, err := env.car.DialStream(t.Context(), lease.ServerSession); err != nil {
			t.Fatalf("stream reconnect: %v", err)
		}
		time.Sleep(time.Minute) // well past where the wait would have ended
		synctest.Wait()

		if n := env.destroyCalls(); n != 0 {
			t.Fatalf("DestroySession called %d times for a user who came back in time", n)
		}
		now, ok := env.car.User("u1")
		if !ok || now.ConcurrencyId != held.ConcurrencyId || now.State != cartest.StateConnected {
			t.Fatalf("CAR shows %v, want %s connected", now, held.ConcurrencyId)
		}
		if u := userState(t, env.mgr, "u1"); u.State != car.LeaseActive || !u.Connected {
			t.Fatalf("manager shows %+v", u)
		}
		if r := env.released(); len(r) != 0 {
			t.Fatalf("releases %+v", r)
		}
	})
}

func TestReconnectAfterTheWaitFindsItReleasedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		lease := env.start("u1")
		stream, err := env.car.DialStream(t.Context(), lease.ServerSession)
		if err != nil {
			t.Fatal(err)
		}
		b := env.connect(lease)
		synctest.Wait()
		held, _ := env.car.User("u1")
		dropped := time.Now()

		b.net.cut()
		stream.Drop()
		time.Sleep(car.DefaultReconnectWait + time.Second)
		b.net.restore()
		synctest.Wait()

		if n := env.destroyCalls(); n != 1 {
			t.Fatalf("DestroySession called %d times, want exactly 1", n)
		}
		rel := env.released()
		if len(rel) != 1 || rel[0].Reason != car.ReleaseDisconnected || !rel[0].Destroyed || rel[0].DestroyErr != nil {
			t.Fatalf("releases %+v", rel)
		}
		if got := rel[0].At.Sub(dropped); got != car.DefaultReconnectWait {
			t.Fatalf("released %v after the drop, want the 90 s wait", got)
		}
		for _, c := range env.car.Concurrencies() {
			if c.ConcurrencyId == held.ConcurrencyId && c.State != cartest.StateIdle {
				t.Fatalf("CAR shows %v, want it idle again", c)
			}
		}
		// The client knows: its session expired, and the server said why.
		if b.sess.State() != hbclient.StateExpired && b.sess.State() != hbclient.StateClosed {
			t.Fatalf("client state %v", b.sess.State())
		}
		// Coming back now is a fresh start, on a fresh lease.
		again := env.start("u1")
		if again.HeartbeatSession == lease.HeartbeatSession || again.ServerSession == "" {
			t.Fatalf("second lease %+v", again)
		}
		if n := env.destroyCalls(); n != 1 {
			t.Fatalf("DestroySession called %d times after the fresh start", n)
		}
	})
}

func TestIdleNoticesThenRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const threshold = 300 * time.Second
		env := newManagerEnv(t, envConfig{managerOption: []car.ManagerOption{car.WithIdleRelease(3)}})
		started := time.Now()
		lease := env.start("u1")
		b := env.connect(lease)
		time.Sleep(3*threshold + time.Second)
		synctest.Wait()

		idle := b.received(heartbeat.NoticeIdle)
		if len(idle) < 2 {
			t.Fatalf("idle notices %+v", idle)
		}
		for i, n := range idle[:2] {
			if n.Times != i+1 || n.at.Sub(started) != time.Duration(i+1)*threshold {
				t.Errorf("notice %d: times %d at %v, want %d at %v", i, n.Times, n.at.Sub(started), i+1, time.Duration(i+1)*threshold)
			}
		}
		rel := env.released()
		if len(rel) != 1 || rel[0].Reason != car.ReleaseIdle || rel[0].At.Sub(started) != 3*threshold {
			t.Fatalf("releases %+v, want one idle release at 3× the threshold", rel)
		}
		var released *heartbeat.ReleasedError
		if !errors.As(b.sess.Err(), &released) || released.Reason != string(car.ReleaseIdle) {
			t.Fatalf("client ended with %v, want released: idle", b.sess.Err())
		}
		if n := env.destroyCalls(); n != 1 {
			t.Fatalf("DestroySession called %d times", n)
		}
	})
}

func TestActivityPostponesIdleRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		b := env.connect(env.start("u1"))
		for range 20 { // an hour of a user who clicks every 3 minutes
			time.Sleep(3 * time.Minute)
			b.sess.Touch()
		}
		synctest.Wait()
		if r := env.released(); len(r) != 0 {
			t.Fatalf("an active user was released: %+v", r)
		}
		if idle := b.received(heartbeat.NoticeIdle); len(idle) != 0 {
			t.Fatalf("idle notices for an active user: %+v", idle)
		}
	})
}

func TestQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{packSize: 1, managerOption: []car.ManagerOption{car.WithQueueLimit(2)}})
		a := env.start("a")
		if a.QueuePosition != 0 || a.ServerSession == "" {
			t.Fatalf("a: %+v", a)
		}
		bLease, cLease := env.start("b"), env.start("c")
		if bLease.QueuePosition != 1 || cLease.QueuePosition != 2 || bLease.ServerSession != "" {
			t.Fatalf("b %+v, c %+v", bLease, cLease)
		}
		if _, err := env.mgr.Start(t.Context(), car.StartRequest{UserId: "d", UserIp: "10.0.0.4"}); !errors.Is(err, car.ErrQueueFull) {
			t.Fatalf("d: err = %v, want ErrQueueFull", err)
		}
		bb, cb := env.connect(bLease), env.connect(cLease)
		synctest.Wait()
		if q := bb.received(heartbeat.NoticeQueue); len(q) == 0 || q[len(q)-1].Position != 1 {
			t.Fatalf("b's queue notices %+v", q)
		}
		if q := cb.received(heartbeat.NoticeQueue); len(q) == 0 || q[len(q)-1].Position != 2 {
			t.Fatalf("c's queue notices %+v", q)
		}
		if s := env.mgr.Snapshot(); s.Active != 1 || s.Waiting != 2 {
			t.Fatalf("snapshot %+v", s)
		}

		// a leaves: b gets the concurrency once CAR has cleaned it up.
		if err := env.mgr.Stop(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		serverSession, err := bLease.Wait(t.Context())
		if err != nil || serverSession == "" {
			t.Fatalf("b waited: %q, %v", serverSession, err)
		}
		synctest.Wait()
		ready := bb.received(heartbeat.NoticeReady)
		var data struct{ ServerSession string }
		if len(ready) != 1 || json.Unmarshal(ready[0].Data, &data) != nil || data.ServerSession != serverSession {
			t.Fatalf("b's ready notices %+v", ready)
		}
		// Position notices are coalesced: c hears of its new place within
		// one notice interval.
		time.Sleep(car.DefaultNoticeInterval)
		synctest.Wait()
		if q := cb.received(heartbeat.NoticeQueue); q[len(q)-1].Position != 1 {
			t.Fatalf("c did not move up: %+v", q)
		}
		// c gives up: it leaves the queue cleanly.
		if err := env.mgr.Stop(t.Context(), "c"); err != nil {
			t.Fatal(err)
		}
		if _, err := cLease.Wait(t.Context()); !errors.Is(err, car.ErrLeftQueue) {
			t.Fatalf("c's Wait: %v", err)
		}
		s := env.mgr.Snapshot()
		if s.Active != 1 || s.Waiting != 0 || s.Released[car.ReleaseStopped] != 1 || s.Released[car.ReleaseLeftQueue] != 1 || s.DestroyCalls != 1 {
			t.Fatalf("snapshot %+v", s)
		}
	})
}

func TestQueuedUserWhoVanishesLeavesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{packSize: 1})
		env.start("a")
		lease := env.start("b")
		time.Sleep(car.DefaultReconnectWait + time.Second) // b never connects its heartbeat
		if _, err := lease.Wait(t.Context()); !errors.Is(err, car.ErrLeftQueue) {
			t.Fatalf("Wait: %v", err)
		}
		if s := env.mgr.Snapshot(); s.Waiting != 0 || s.Released[car.ReleaseLeftQueue] != 1 {
			t.Fatalf("snapshot %+v", s)
		}
	})
}

func TestReleaseRacesDestroyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{managerOption: []car.ManagerOption{car.WithIdleThreshold(45 * time.Second), car.WithIdleRelease(2)}})
		lease := env.start("u1")
		b := env.connect(lease)
		synctest.Wait()
		// Throttle the first two DestroySession attempts: the one call
		// retries inside itself.
		if err := env.car.InjectFault("DestroySession", cartest.Fault{Code: "RequestLimitExceeded", Times: 2}); err != nil {
			t.Fatal(err)
		}
		b.net.cut()
		// At 90 s the reconnect wait ends, the second idle threshold
		// passes, and Stop is called: all at the same instant.
		time.AfterFunc(car.DefaultReconnectWait, func() { env.mgr.Stop(context.Background(), "u1") })
		time.Sleep(car.DefaultReconnectWait + time.Minute)
		synctest.Wait()

		if n := env.destroyCalls(); n != 1 {
			t.Fatalf("DestroySession succeeded %d times, want 1", n)
		}
		var throttled int
		for _, e := range env.car.Events() {
			if e.Action == "DestroySession" && e.Code == "RequestLimitExceeded" {
				throttled++
			}
		}
		rel := env.released()
		if throttled != 2 || len(rel) != 1 || rel[0].DestroyErr != nil {
			t.Fatalf("%d throttled attempts, releases %+v", throttled, rel)
		}
		if s := env.mgr.Snapshot(); s.DestroyCalls != 1 || len(s.Users) != 0 {
			t.Fatalf("snapshot %+v", s)
		}
	})
}

// A caller whose context ends (the request of a page being closed) does
// not leave the concurrency held: Stop returns, the release goes on.
func TestStopOutlivesItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		env.connect(env.start("u1"))
		synctest.Wait()
		if err := env.car.InjectFault("DestroySession", cartest.Fault{Latency: time.Second}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		if err := env.mgr.Stop(ctx, "u1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop with a context cancelled during DestroySession: %v", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		rel := env.released()
		if n := env.destroyCalls(); n != 1 || len(rel) != 1 || rel[0].Reason != car.ReleaseStopped || rel[0].DestroyErr != nil {
			t.Fatalf("DestroySession succeeded %d times; releases %+v", n, rel)
		}
		if s := env.mgr.Snapshot(); len(s.Users) != 0 {
			t.Fatalf("snapshot after Stop: %+v", s)
		}
	})
}

// A lease holds what lets a client act as the user: printing or logging
// it shows neither its heartbeat token nor its ServerSession, while JSON
// (to hand it to the client) carries both.
func TestLeasePrintsRedacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		lease := env.start("u1")
		if lease.HeartbeatToken == "" || lease.ServerSession == "" {
			t.Fatalf("lease %+v lacks its secrets", lease)
		}
		var out bytes.Buffer
		for _, v := range []any{lease, *lease} {
			fmt.Fprintf(&out, "%v %+v %#v %s %q\n", v, v, v, v, v)
			slog.New(slog.NewJSONHandler(&out, nil)).Info("lease", "lease", v)
			slog.New(slog.NewTextHandler(&out, nil)).Info("lease", "lease", v)
		}
		for _, secret := range []string{lease.HeartbeatToken, lease.ServerSession} {
			if strings.Contains(out.String(), secret) {
				t.Fatalf("a secret of the lease shows:\n%s", out.String())
			}
		}
		if !strings.Contains(out.String(), `"u1"`) {
			t.Fatalf("the lease prints without its UserId:\n%s", out.String())
		}
		b, err := json.Marshal(lease)
		if err != nil || !strings.Contains(string(b), lease.HeartbeatToken) || !strings.Contains(string(b), lease.ServerSession) {
			t.Fatalf("JSON of the lease: %s, %v", b, err)
		}
	})
}

func TestRepeatedStartReattaches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		first := env.start("u1")
		old, err := env.car.DialStream(t.Context(), first.ServerSession)
		if err != nil {
			t.Fatal(err)
		}
		oldHB := env.connect(first)
		held, _ := env.car.User("u1")

		second := env.start("u1") // the user opened a second tab
		if second.HeartbeatSession != first.HeartbeatSession || second.ServerSession == first.ServerSession {
			t.Fatalf("second lease %+v", second)
		}
		newHB := env.connect(second)
		synctest.Wait()
		if !errors.Is(oldHB.sess.Err(), heartbeat.ErrReplaced) {
			t.Fatalf("old tab's heartbeat: %v, want replaced", oldHB.sess.Err())
		}
		<-old.Done()
		var ce *cartest.CloseError
		if !errors.As(old.Err(), &ce) || ce.Code != cartest.CloseRepeatedConnection {
			t.Fatalf("old stream: %v", old.Err())
		}
		if now, _ := env.car.User("u1"); now.ConcurrencyId != held.ConcurrencyId {
			t.Fatalf("concurrency changed from %s to %s", held.ConcurrencyId, now.ConcurrencyId)
		}
		if newHB.sess.State() != hbclient.StateConnected || env.destroyCalls() != 0 {
			t.Fatalf("new tab %v, %d destroys", newHB.sess.State(), env.destroyCalls())
		}
	})
}

func TestShutdownDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{packSize: 2})
		b1 := env.connect(env.start("a"))
		env.connect(env.start("b"))
		queued := env.start("c")
		synctest.Wait()
		if err := env.mgr.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := queued.Wait(t.Context()); !errors.Is(err, car.ErrManagerClosed) {
			t.Fatalf("queued user: %v", err)
		}
		if _, err := env.mgr.Start(t.Context(), car.StartRequest{UserId: "d", UserIp: "10.0.0.1"}); !errors.Is(err, car.ErrManagerClosed) {
			t.Fatalf("Start after Shutdown: %v", err)
		}
		s := env.mgr.Snapshot()
		if s.Released[car.ReleaseShutdown] != 3 || s.DestroyCalls != 2 || len(s.Users) != 0 {
			t.Fatalf("snapshot %+v", s)
		}
		if env.destroyCalls() != 2 {
			t.Fatalf("%d DestroySession calls", env.destroyCalls())
		}
		<-b1.sess.Done() // the client has read its released notice and closed
		var released *heartbeat.ReleasedError
		if !errors.As(b1.sess.Err(), &released) || released.Reason != string(car.ReleaseShutdown) {
			t.Fatalf("client: %v", b1.sess.Err())
		}
	})
}

func TestStartValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		for _, req := range []car.StartRequest{
			{UserIp: "10.0.0.1"},
			{UserId: "u", UserIp: "not-an-ip"},
			{UserId: "u", UserIp: "10.0.0.1", RunMode: "Sometimes"},
		} {
			var ve *car.ValidationError
			if _, err := env.mgr.Start(t.Context(), req); !errors.As(err, &ve) {
				t.Errorf("%+v: err = %v, want *ValidationError", req, err)
			}
		}
		if len(env.car.Events()) != 0 {
			t.Fatal("a rejected Start reached CAR")
		}
	})
}
