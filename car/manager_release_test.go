package car_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// outage is a transport that fails chosen actions while it is on: in turn
// with HTTP 503, InternalError in an HTTP 200 envelope, and a dropped
// connection, as a struggling API does.
type outage struct {
	base    http.RoundTripper
	mu      sync.Mutex
	actions map[string]bool
	n       int
	calls   map[string]int // every attempt, by action
	bodies  map[string][]string
}

func newOutage(base http.RoundTripper) *outage {
	return &outage{base: base, actions: map[string]bool{}, calls: map[string]int{}, bodies: map[string][]string{}}
}

func (o *outage) set(action string, on bool) {
	o.mu.Lock()
	o.actions[action] = on
	o.mu.Unlock()
}

func (o *outage) count(action string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[action]
}

func (o *outage) RoundTrip(r *http.Request) (*http.Response, error) {
	action := r.Header.Get("X-Tc-Action")
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	o.mu.Lock()
	o.calls[action]++
	o.bodies[action] = append(o.bodies[action], string(body))
	fail := o.actions[action]
	o.n++
	kind := o.n % 3
	o.mu.Unlock()
	if !fail {
		return o.base.RoundTrip(r)
	}
	switch kind {
	case 0:
		return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Header: http.Header{}, Body: io.NopCloser(strings.NewReader("unavailable")), Request: r}, nil
	case 1:
		env := `{"Response":{"Error":{"Code":"InternalError","Message":"internal error"},"RequestId":"00000000-0000-4000-8000-000000000000"}}`
		return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(env)), Request: r}, nil
	}
	return nil, errors.New("connection reset by peer")
}

// TestReleaseRetriedUntilDone: DestroySession fails for an hour (5xx,
// InternalError in a 200 envelope, dropped connections), then recovers.
// The release is queued, retried with backoff, shown pending meanwhile,
// and done exactly once, within one backoff step of the recovery.
func TestReleaseRetriedUntilDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o *outage
		env := newManagerEnv(t, envConfig{wrap: func(rt http.RoundTripper) http.RoundTripper { o = newOutage(rt); return o }})
		lease := env.start("u1")
		env.connect(lease)
		o.set("DestroySession", true)

		// Stop, with a caller that waits only a minute: the release is not
		// done, and Stop says so and that it goes on.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		err := env.mgr.Stop(ctx, "u1")
		cancel()
		var pending *car.ReleasePendingError
		if !errors.As(err, &pending) || !errors.Is(err, context.DeadlineExceeded) || pending.LastErr == nil || pending.UserId != "u1" {
			t.Fatalf("Stop during the outage: %v, want a *ReleasePendingError with the last failure", err)
		}
		if !strings.Contains(err.Error(), "keeps retrying") {
			t.Errorf("Stop's error does not say the release goes on: %v", err)
		}
		s := env.mgr.Snapshot()
		if s.PendingReleases != 1 || len(s.Users) != 1 || s.Users[0].State != car.LeaseReleasing || s.Users[0].ReleaseError == "" {
			t.Fatalf("snapshot during the outage: %+v", s)
		}
		time.Sleep(time.Hour - time.Minute)
		if r := env.released(); len(r) != 0 {
			t.Fatalf("released during the outage: %+v", r)
		}
		recovered := time.Now()
		o.set("DestroySession", false)
		time.Sleep(car.DefaultReleaseRetryMax + time.Second)
		synctest.Wait()
		rel := env.released()
		if len(rel) != 1 || !rel[0].Destroyed || rel[0].DestroyErr != nil || rel[0].Attempts < 10 {
			t.Fatalf("releases %+v, want one, done, after many attempts", rel)
		}
		if d := rel[0].At.Sub(recovered); d > car.DefaultReleaseRetryMax {
			t.Errorf("released %v after the recovery, more than one backoff step (%v)", d, car.DefaultReleaseRetryMax)
		}
		if n := env.destroyCalls(); n != 1 {
			t.Errorf("CAR destroyed %d sessions, want 1", n)
		}
		time.Sleep(time.Second) // CAR's cleanup
		if c, held := env.car.User("u1"); held {
			t.Errorf("u1 still holds %v", c)
		}
		if s := env.mgr.Snapshot(); s.PendingReleases != 0 || len(s.Users) != 0 || s.DestroyCalls != 1 || s.DestroyRetries < 10 {
			t.Errorf("snapshot after the recovery: %+v", s)
		}
		t.Logf("%d DestroySession attempts over the hour", o.count("DestroySession"))
	})
}

// TestPermanentDestroyFailure: AuthFailure is not retried in a loop: one
// release, reported with its error, counted as a failure.
func TestPermanentDestroyFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		env.connect(env.start("u1"))
		if err := env.car.InjectFault("DestroySession", cartest.Fault{Code: "AuthFailure.UnauthorizedOperation", Message: "no"}); err != nil {
			t.Fatal(err)
		}
		err := env.mgr.Stop(t.Context(), "u1")
		if !car.HasCode(err, "AuthFailure") {
			t.Fatalf("Stop: %v, want the AuthFailure", err)
		}
		time.Sleep(time.Hour)
		rel := env.released()
		if len(rel) != 1 || rel[0].DestroyErr == nil || rel[0].Attempts != 1 {
			t.Fatalf("releases %+v", rel)
		}
		if s := env.mgr.Snapshot(); s.DestroyFailures != 1 || s.PendingReleases != 0 || len(s.Users) != 0 {
			t.Fatalf("snapshot %+v", s)
		}
	})
}

// TestDestroyAnsweredStoppingIsDone: a DestroySession answered with
// UnsupportedOperation.Stopping (CAR is tearing the session down already,
// as when a replica that died mid-release had called it first) counts as
// done: Stop returns nil, the release is recorded once, destroyed with no
// error, and DestroySession is not called again.
func TestDestroyAnsweredStoppingIsDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		env.connect(env.start("u1"))
		if err := env.car.InjectFault("DestroySession", cartest.Fault{Code: car.CodeStopping, Message: "the session is being destroyed"}); err != nil {
			t.Fatal(err)
		}
		if err := env.mgr.Stop(t.Context(), "u1"); err != nil {
			t.Fatalf("Stop answered Stopping: %v, want done", err)
		}
		time.Sleep(time.Hour)
		rel := env.released()
		if len(rel) != 1 || !rel[0].Destroyed || rel[0].DestroyErr != nil || rel[0].Attempts != 1 {
			t.Fatalf("releases %+v, want one, destroyed, with no error, after one attempt", rel)
		}
		if s := env.mgr.Snapshot(); s.DestroyFailures != 0 || s.DestroyRetries != 0 || s.PendingReleases != 0 || len(s.Users) != 0 {
			t.Fatalf("snapshot %+v", s)
		}
		calls := 0
		for _, e := range env.car.Events() {
			if e.Kind == cartest.EventCall && e.Action == "DestroySession" {
				calls++
				if e.Code != car.CodeStopping {
					t.Errorf("DestroySession answered %q, want the injected Stopping", e.Code)
				}
			}
		}
		if calls != 1 {
			t.Errorf("DestroySession called %d times, want once", calls)
		}
	})
}

// TestShutdownReleasesInParallel: 20 leases whose DestroySession takes 20 s
// each are all released within a 30 s Shutdown.
func TestShutdownReleasesInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{packSize: 20})
		for i := range 20 {
			env.connect(env.start("u" + string(rune('a'+i))))
		}
		if err := env.car.InjectFault("DestroySession", cartest.Fault{Latency: 20 * time.Second, Times: 20}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if err := env.mgr.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if n := env.destroyCalls(); n != 20 {
			t.Fatalf("%d of 20 released", n)
		}
	})
}

// TestShutdownHandsOverPendingReleases: what Shutdown could not release
// before its deadline is listed, given to OnReleasePending, and finished by
// the next manager (WithPendingReleases).
func TestShutdownHandsOverPendingReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o *outage
		var handed []car.PendingRelease
		var mu sync.Mutex
		env := newManagerEnv(t, envConfig{packSize: 3,
			wrap: func(rt http.RoundTripper) http.RoundTripper { o = newOutage(rt); return o },
			managerOption: []car.ManagerOption{car.OnReleasePending(func(p car.PendingRelease) {
				mu.Lock()
				handed = append(handed, p)
				mu.Unlock()
			})}})
		for _, id := range []string{"a", "b", "c"} {
			env.connect(env.start(id))
		}
		o.set("DestroySession", true)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := env.mgr.Shutdown(ctx)
		var se *car.ShutdownError
		if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) || strings.Join(se.UserIds(), ",") != "a,b,c" {
			t.Fatalf("Shutdown: %v, want a *ShutdownError listing a, b, c", err)
		}
		mu.Lock()
		if len(handed) != 3 || handed[0].LastErr == nil || handed[0].Reason != car.ReleaseShutdown {
			t.Fatalf("handed over %+v", handed)
		}
		mu.Unlock()
		for _, id := range []string{"a", "b", "c"} {
			if _, held := env.car.User(id); !held {
				t.Fatalf("%s is not held in CAR: nothing to hand over", id)
			}
		}

		// The next process takes them over.
		o.set("DestroySession", false)
		next, err := car.NewSessionManager(env.car.Client(), mgrProject, car.WithPendingReleases(se.Pending...))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		for _, id := range []string{"a", "b", "c"} {
			if c, held := env.car.User(id); held && !c.Destroyed {
				t.Errorf("%s still held: %v", id, c)
			}
		}
		// A Start for one of them works once its release is done.
		if _, err := next.Start(t.Context(), car.StartRequest{UserId: "a", UserIp: "10.0.0.1"}); err != nil {
			t.Errorf("Start after the handover: %v", err)
		}
		if err := next.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStartCleansUpAfterALostAnswer: CreateSession's answers are lost
// after CAR acted, more often than Start and the client retry: Start fails, and
// calls DestroySession first, so no session is left that no lease owns.
func TestStartCleansUpAfterALostAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		if err := env.car.InjectFault("CreateSession", cartest.Fault{DropAnswer: true, Times: 12}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.mgr.Start(t.Context(), car.StartRequest{UserId: "u1", UserIp: "10.0.0.1"}); err == nil {
			t.Fatal("Start succeeded though every answer was lost")
		}
		if n := env.destroyCalls(); n != 1 {
			t.Fatalf("%d DestroySession calls, want 1 before Start failed", n)
		}
		time.Sleep(time.Second) // CAR's cleanup
		if c, held := env.car.User("u1"); held {
			t.Fatalf("u1 still holds %v", c)
		}
		if rel := env.released(); len(rel) != 1 || rel[0].Reason != car.ReleaseStartFailed || !rel[0].Destroyed {
			t.Fatalf("releases %+v", rel)
		}
	})
}

// TestStartRightAfterStop waits out CAR's cleanup (Stopping) instead of
// failing.
func TestStartRightAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{cleanup: 10 * time.Second})
		env.connect(env.start("u1"))
		if err := env.mgr.Stop(t.Context(), "u1"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		lease, err := env.mgr.Start(t.Context(), car.StartRequest{UserId: "u1", UserIp: "10.0.0.1"})
		if err != nil {
			t.Fatalf("Start right after Stop: %v", err)
		}
		if d := time.Since(start); d < 10*time.Second || d > 13*time.Second {
			t.Errorf("Start took %v, want CAR's 10 s cleanup and a little more", d)
		}
		if lease.ServerSession == "" {
			t.Errorf("lease %+v", lease)
		}
	})
}

// TestQueueHeadKeepsItsPlace: transient failures of the head's
// ApplyConcurrent do not drop anyone; FIFO holds.
func TestQueueHeadKeepsItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o *outage
		env := newManagerEnv(t, envConfig{packSize: 1, wrap: func(rt http.RoundTripper) http.RoundTripper { o = newOutage(rt); return o }})
		env.connect(env.start("a"))
		bl, cl := env.start("b"), env.start("c")
		env.connect(bl)
		env.connect(cl)
		o.set("ApplyConcurrent", true)
		if err := env.mgr.Stop(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // the API fails all along
		if s := env.mgr.Snapshot(); s.Waiting != 2 {
			t.Fatalf("during the outage: %+v", s)
		}
		o.set("ApplyConcurrent", false)
		if _, err := bl.Wait(t.Context()); err != nil {
			t.Fatalf("b: %v", err)
		}
		if s := env.mgr.Snapshot(); s.Waiting != 1 || s.Users[1].UserId != "c" || s.Users[1].QueuePosition != 1 {
			t.Fatalf("after the outage: %+v", s)
		}
		if rel := env.released(); len(rel) != 1 || rel[0].UserId != "a" {
			t.Fatalf("releases %+v", rel)
		}
	})
}

func TestQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{packSize: 1, managerOption: []car.ManagerOption{car.WithQueueTimeout(time.Minute)}})
		env.connect(env.start("a"))
		l := env.start("b")
		env.connect(l)
		if _, err := l.Wait(t.Context()); !errors.Is(err, car.ErrQueueTimeout) {
			t.Fatalf("Wait: %v", err)
		}
		synctest.Wait() // OnRelease runs after Wait returns
		if rel := env.released(); len(rel) != 1 || rel[0].Reason != car.ReleaseQueueTimeout || rel[0].At.Sub(t0Bubble) < time.Minute {
			t.Fatalf("releases %+v", rel)
		}
	})
}

// t0Bubble is where every synctest bubble's clock starts.
var t0Bubble = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// TestReadyForEveryUser: a user who was not queued gets the ready notice
// with its ServerSession too, so a page has one path.
func TestReadyForEveryUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		lease := env.start("u1")
		b := env.connect(lease)
		synctest.Wait()
		ready := b.received(heartbeat.NoticeReady)
		var data struct{ ServerSession string }
		if len(ready) != 1 || json.Unmarshal(ready[0].Data, &data) != nil || data.ServerSession != lease.ServerSession {
			t.Fatalf("ready notices %+v, want one with %q", ready, lease.ServerSession)
		}
	})
}

// TestAdmissionRestartsIdleCount: time spent waiting in the queue is not
// idle time.
func TestAdmissionRestartsIdleCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const threshold = 4 * time.Second
		env := newManagerEnv(t, envConfig{packSize: 1, managerOption: []car.ManagerOption{car.WithIdleThreshold(threshold)}})
		a := env.connect(env.start("a"))
		bl := env.start("b")
		bb := env.connect(bl)
		for range 5 { // a stays active while b waits 10 s
			time.Sleep(2 * time.Second)
			a.sess.Touch()
		}
		if err := env.mgr.Stop(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := bl.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		admitted := time.Now()
		synctest.Wait()
		time.Sleep(2*threshold - time.Second)
		synctest.Wait()
		for _, r := range env.released() {
			if r.UserId == "b" {
				t.Fatalf("b released %v after admission, before 2× the threshold", r.At.Sub(admitted))
			}
		}
		for _, n := range bb.received(heartbeat.NoticeIdle) {
			if !n.at.Before(admitted) && n.at.Sub(admitted) < threshold {
				t.Fatalf("idle notice %v after admission", n.at.Sub(admitted))
			}
		}
		time.Sleep(2 * time.Second)
		found := false
		for _, r := range env.released() {
			found = found || (r.UserId == "b" && r.Reason == car.ReleaseIdle)
		}
		if !found {
			t.Fatalf("b was not released for idleness after 2× the threshold: %+v", env.released())
		}
	})
}

// TestRefreshClientSession: a queued user's fresh ClientSession is the one
// its admission sends.
func TestRefreshClientSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o *outage
		env := newManagerEnv(t, envConfig{packSize: 1, wrap: func(rt http.RoundTripper) http.RoundTripper { o = newOutage(rt); return o }})
		env.connect(env.start("a"))
		bl := env.start("b")
		if err := env.mgr.RefreshClientSession(t.Context(), "b", "fresh-cs"); err != nil {
			t.Fatal(err)
		}
		if err := env.mgr.RefreshClientSession(t.Context(), "a", "x"); !errors.Is(err, car.ErrNotQueued) {
			t.Fatalf("refresh for an active user: %v", err)
		}
		if err := env.mgr.Stop(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := bl.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		o.mu.Lock()
		bodies := o.bodies["CreateSession"]
		o.mu.Unlock()
		if last := bodies[len(bodies)-1]; !strings.Contains(last, `"ClientSession":"fresh-cs"`) {
			t.Fatalf("b's CreateSession: %s", last)
		}
	})
}

func TestLeaseStateJSON(t *testing.T) {
	b, err := json.Marshal(car.UserSnapshot{State: car.LeaseDisconnected})
	if err != nil || !strings.Contains(string(b), `"State":"disconnected"`) {
		t.Fatalf("%s, %v", b, err)
	}
	var s car.UserSnapshot
	if err := json.Unmarshal(b, &s); err != nil || s.State != car.LeaseDisconnected {
		t.Fatalf("%+v, %v", s, err)
	}
	if err := json.Unmarshal([]byte(`{"State":"bogus"}`), &s); err == nil {
		t.Fatal("an unknown state name was accepted")
	}
}

// reportStream connects a raw protocol v2 client for the lease and sends a
// stream report, as the browser glue does.
func (env *managerEnv) reportStream(lease *car.Lease, frame string) *websocket.Conn {
	env.t.Helper()
	d := websocket.Dialer{NetDialContext: env.hb.DialContext, Subprotocols: []string{heartbeat.SubprotocolV2}}
	ws, _, err := d.DialContext(env.t.Context(), "ws://heartbeat/", nil)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { ws.Close() })
	hello, _ := json.Marshal(map[string]any{"type": "hello", "v": 2, "session": lease.HeartbeatSession, "token": lease.HeartbeatToken})
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		env.t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		env.t.Fatal(err)
	}
	go func() { // keep reading, as a browser does
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return ws
}

func TestStreamLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action car.StreamLostAction
	}{{"release", car.StreamLostRelease}, {"restart", car.StreamLostRestart}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var events atomic.Int32
				env := newManagerEnv(t, envConfig{managerOption: []car.ManagerOption{
					car.WithStreamLost(tc.action),
					car.OnStreamEvent(func(ev car.StreamEvent) {
						if ev.UserId == "u1" && ev.State == heartbeat.StreamLost && ev.Code == -3 {
							events.Add(1)
						}
					}),
				}})
				lease := env.start("u1")
				env.reportStream(lease, `{"type":"stream","state":"lost","code":-3}`)
				synctest.Wait()
				if events.Load() != 1 {
					t.Fatalf("OnStreamEvent saw %d lost events", events.Load())
				}
				rel := env.released()
				switch tc.action {
				case car.StreamLostRelease:
					if len(rel) != 1 || rel[0].Reason != car.ReleaseStreamLost || !rel[0].Destroyed {
						t.Fatalf("releases %+v", rel)
					}
				case car.StreamLostRestart:
					if len(rel) != 0 {
						t.Fatalf("releases %+v", rel)
					}
					if n := len(calls(env.car)); n < 4 { // Apply, Create, then both again
						t.Fatalf("%d API calls, want the start run again", n)
					}
					if s := env.mgr.Snapshot(); len(s.Users) != 1 || s.Users[0].State != car.LeaseActive {
						t.Fatalf("snapshot %+v", s)
					}
				}
			})
		})
	}
}

// TestWindowLongerThanCARsIsRefused: after CAR's own reconnect wait the
// lease is dead, so a longer window is a mistake named at construction.
func TestWindowLongerThanCARsIsRefused(t *testing.T) {
	srv := cartest.Start(t)
	_, err := car.NewSessionManager(srv.Client(), cartest.DefaultProjectId,
		car.WithCARReconnectWait(90*time.Second), car.WithReconnectWait(2*time.Minute))
	if err == nil || !strings.Contains(err.Error(), "2m0s") || !strings.Contains(err.Error(), "1m30s") {
		t.Fatalf("err = %v, want both values named", err)
	}
	if _, err := car.NewSessionManager(srv.Client(), cartest.DefaultProjectId, car.WithCARReconnectWait(90*time.Second)); err != nil {
		t.Fatalf("the defaults fit inside CAR's wait: %v", err)
	}
}

// TestClosedPageGetsTheReloadGrace: a page that closes its heartbeat
// cleanly is released after the reload grace, not the reconnect window.
func TestClosedPageGetsTheReloadGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newManagerEnv(t, envConfig{})
		b := env.connect(env.start("u1"))
		closed := time.Now()
		b.sess.Close()
		time.Sleep(car.DefaultReloadGrace + time.Second)
		rel := env.released()
		if len(rel) != 1 || rel[0].Reason != car.ReleaseDisconnected {
			t.Fatalf("releases %+v", rel)
		}
		if d := rel[0].At.Sub(closed); d < car.DefaultReloadGrace || d > car.DefaultReloadGrace+time.Second {
			t.Fatalf("released %v after the page closed, want the %v reload grace", d, car.DefaultReloadGrace)
		}
	})
}

// TestPositionNoticesPerAdmissionStayConstant: with admissions slower than
// the notice interval, each one shifts every queued user, yet the notices
// sent per admission stay a small constant, not the queue's length.
func TestPositionNoticesPerAdmissionStayConstant(t *testing.T) {
	for _, queued := range []int{50, 400} {
		t.Run(fmt.Sprint(queued), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := newManagerEnv(t, envConfig{packSize: 1, noRateLimits: true})
				env.start("head")
				leases := make([]*car.Lease, queued)
				for i := range leases {
					leases[i] = env.start(fmt.Sprintf("q%03d", i))
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				before := env.mgr.Snapshot().NoticesSent
				const admissions = 10
				prev := "head"
				for i := range admissions {
					if err := env.mgr.Stop(t.Context(), prev); err != nil {
						t.Fatal(err)
					}
					if _, err := leases[i].Wait(t.Context()); err != nil {
						t.Fatal(err)
					}
					prev = leases[i].UserId
					time.Sleep(5 * time.Second) // slower than the 1 s notice interval
				}
				per := float64(env.mgr.Snapshot().NoticesSent-before) / admissions
				t.Logf("%d queued: %.1f notices per admission", queued, per)
				if per > 12 {
					t.Errorf("%.1f notices per admission with %d queued, want a small constant", per, queued)
				}
			})
		})
	}
}
