package cartest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

func TestDefaults(t *testing.T) {
	srv, c := setup(t)
	all := srv.Concurrencies()
	if len(all) != cartest.DefaultPackSize {
		t.Fatalf("%d concurrencies, want %d", len(all), cartest.DefaultPackSize)
	}
	for i, cc := range all {
		if cc.State != cartest.StateIdle || cc.PackId != cartest.DefaultPackId || cc.ConcurrencyId != cartest.DefaultPackId+"-"+string(rune('1'+i)) || !cc.Since.Equal(t0) {
			t.Errorf("concurrency %d: %v", i, cc)
		}
	}
	if total, running := counts(t, c, cartest.DefaultProjectId); total != 3 || running != 0 {
		t.Errorf("Total %d Running %d", total, running)
	}
	if srv.Now() != t0 {
		t.Errorf("Now %v, want %v", srv.Now(), t0)
	}
}

func TestLockExpiresAndRenews(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	apply(t, c, "u", cartest.DefaultProjectId)
	got, _ := srv.User("u")
	if got.State != cartest.StateLocked || !got.Until.Equal(t0.Add(cartest.DefaultLockTime)) {
		t.Fatalf("after ApplyConcurrent: %v", got)
	}
	// Repeating ApplyConcurrent renews the lock.
	srv.Advance(20 * time.Second)
	apply(t, c, "u", cartest.DefaultProjectId)
	srv.Advance(20 * time.Second)
	if state(t, srv, "u") != cartest.StateLocked {
		t.Fatal("the renewed lock expired 30s after the first ApplyConcurrent")
	}
	srv.Advance(10*time.Second - time.Millisecond)
	if state(t, srv, "u") != cartest.StateLocked {
		t.Fatal("the lock expired early")
	}
	srv.Advance(time.Millisecond)
	if _, ok := srv.User("u"); ok {
		t.Fatal("the lock did not expire at its time")
	}
	// An expired lock is idle at once: no application ran, no cleanup.
	if _, running := counts(t, c, ""); running != 0 {
		t.Errorf("Running %d after the lock expired", running)
	}
	_, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: ip})
	if code(err) != car.CodeLockTimeout || !strings.Contains(err.Error(), "call ApplyConcurrent first") {
		t.Fatalf("CreateSession after the lock expired: %v", err)
	}
	ev := srv.Events()
	want := []string{"locked u pack-cartest1-1", "locked u pack-cartest1-1", "lock-expired u pack-cartest1-1", "released u pack-cartest1-1"}
	if got := kinds(ev); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for _, e := range ev {
		if e.Kind == cartest.EventLockExpired && !e.Time.Equal(t0.Add(50*time.Second)) {
			t.Errorf("lock-expired at %v, want t0+50s", e.Time)
		}
	}
}

func TestWithLockTimeAndCleanupDelay(t *testing.T) {
	srv, c := setup(t, cartest.WithLockTime(5*time.Second), cartest.WithCleanupDelay(0))
	apply(t, c, "u", cartest.DefaultProjectId)
	srv.Advance(5 * time.Second)
	if _, ok := srv.User("u"); ok {
		t.Fatal("a 5s lock outlived 5s")
	}
	apply(t, c, "v", cartest.DefaultProjectId)
	create(t, c, "v")
	destroy(t, c, "v")
	if _, running := counts(t, c, ""); running != 0 {
		t.Fatalf("with no cleanup delay, Running is %d after DestroySession", running)
	}
}

// TestEventsInDueOrder jumps over several deadlines at once: each is
// applied at its own time, in order, and logged with that time.
func TestEventsInDueOrder(t *testing.T) {
	srv, c := setup(t, cartest.WithProject(cartest.Project{ProjectId: "cap-slow", ReconnectWait: 2 * time.Minute}),
		cartest.WithProject(cartest.Project{ProjectId: cartest.DefaultProjectId}))
	apply(t, c, "a", cartest.DefaultProjectId) // lock expires at +30s
	apply(t, c, "b", "cap-slow")
	create(t, c, "b") // reconnect wait ends at +120s, cleanup at +130s
	apply(t, c, "c", cartest.DefaultProjectId)
	create(t, c, "c") // reconnect wait ends at +90s, cleanup at +100s
	srv.Advance(time.Hour)
	var got []string
	var last time.Time
	for _, e := range srv.Events() {
		if e.Time.Before(last) {
			t.Fatalf("the log goes back in time at %v", e)
		}
		last = e.Time
		if e.Kind != cartest.EventCall && e.Time.After(t0) {
			got = append(got, e.Time.Sub(t0).String()+" "+string(e.Kind)+" "+e.Subject)
		}
	}
	want := []string{
		"30s lock-expired a", "30s released a",
		"1m30s reconnect-wait-expired c", "1m40s released c",
		"2m0s reconnect-wait-expired b", "2m10s released b",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

func TestRunWithoutClient(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	apply(t, c, "u", cartest.DefaultProjectId)
	out, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "u", UserIp: ip, RunMode: car.RunModeRunWithoutClient, ApplicationParameters: "StartFor=1"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(2 * time.Hour)
	got, ok := srv.User("u")
	if !ok || got.State != cartest.StateCreated || !got.Until.IsZero() || got.RunMode != car.RunModeRunWithoutClient || got.ApplicationParameters != "StartFor=1" {
		t.Fatalf("RunWithoutClient with no client for 2h: %v %+v", ok, got)
	}
	st, err := srv.DialStream(ctx, out.ServerSession)
	if err != nil {
		t.Fatal(err)
	}
	st.Drop()
	srv.Advance(2 * time.Hour)
	if state(t, srv, "u") != cartest.StateDisconnected {
		t.Fatal("RunWithoutClient: the session was reclaimed after its client dropped")
	}
	destroy(t, c, "u")
	if got, _ := srv.User("u"); got.State != cartest.StateCleanup || !got.Destroyed {
		t.Fatalf("after DestroySession: %v", got)
	}
}

func TestApplyForAnotherProject(t *testing.T) {
	srv, c := setup(t, cartest.WithProject(cartest.Project{ProjectId: "cap-a"}), cartest.WithProject(cartest.Project{ProjectId: "cap-b"}))
	apply(t, c, "u", "cap-a")
	_, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "u", UserIp: ip, ProjectId: "cap-b"})
	if code(err) != car.CodeFailedOperation || !strings.Contains(err.Error(), "already holds concurrency pack-cartest1-1 of project cap-a") {
		t.Fatalf("got %v", err)
	}
	if got, _ := srv.User("u"); got.ProjectId != "cap-a" {
		t.Fatalf("the user now holds %v", got)
	}
}

func TestPackWithoutProject(t *testing.T) {
	_, c := setup(t,
		cartest.WithProject(cartest.Project{ProjectId: "cap-a"}), cartest.WithProject(cartest.Project{ProjectId: "cap-bare"}),
		cartest.WithPack(cartest.Pack{PackId: "pa", Size: 2, Projects: []string{"cap-a"}}),
		cartest.WithPack(cartest.Pack{PackId: "spare", Size: 5}))
	_, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "u", UserIp: ip, ProjectId: "cap-bare"})
	if code(err) != car.CodeNoIdle || !strings.Contains(err.Error(), "project cap-bare has no concurrency pack bound") {
		t.Fatalf("got %v", err)
	}
	if total, _ := counts(t, c, ""); total != 7 {
		t.Errorf("the account has Total %d, want 7 (unbound packs count)", total)
	}
	if total, _ := counts(t, c, "cap-bare"); total != 0 {
		t.Errorf("cap-bare has Total %d, want 0", total)
	}
}

func TestPush(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	st := connect(t, srv, c, "u")
	if _, err := c.StartPublishStream(ctx, &car.StartPublishStreamInput{UserId: "u", PublishStreamArgs: "bar=1&foo=2"}); err != nil {
		t.Fatal(err)
	}
	got, _ := srv.User("u")
	if got.Push == nil || got.Push.URL != "rtmp://push.cartest.invalid/live/u?bar=1&foo=2" || got.Push.WithURL || !got.Push.Since.Equal(t0) {
		t.Fatalf("push %+v", got.Push)
	}
	if _, err := c.StartPublishStreamWithURL(ctx, &car.StartPublishStreamWithURLInput{UserId: "u", PublishStreamURL: "rtmp://192.0.2.1:1935/live/mine"}); err != nil {
		t.Fatal(err)
	}
	got, _ = srv.User("u")
	if got.Push == nil || got.Push.URL != "rtmp://192.0.2.1:1935/live/mine" || !got.Push.WithURL {
		t.Fatalf("the push was not replaced: %+v", got.Push)
	}
	// The push survives the reconnect wait…
	st.Drop()
	srv.Advance(cartest.DefaultReconnectWait - time.Second)
	if got, _ := srv.User("u"); got.Push == nil {
		t.Fatal("the push ended while the session waited for its client")
	}
	// …and ends with the session.
	srv.Advance(time.Second)
	for _, cc := range srv.Concurrencies() {
		if cc.Push != nil {
			t.Fatalf("the push outlived its session: %v", cc)
		}
	}
	want := []string{"push-started u pack-cartest1-1", "push-started u pack-cartest1-1", "disconnected u pack-cartest1-1",
		"reconnect-wait-expired u pack-cartest1-1", "push-stopped u pack-cartest1-1"}
	if got := kinds(srv.Events()); !slices.Equal(got[len(got)-len(want):], want) {
		t.Fatalf("events %q", got)
	}
	// Stopping, and stopping with no push.
	connect(t, srv, c, "v")
	if _, err := c.StartPublishStream(ctx, &car.StartPublishStreamInput{UserId: "v"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.StopPublishStream(ctx, &car.StopPublishStreamInput{UserId: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := srv.User("v"); got.Push != nil {
		t.Fatalf("StopPublishStream left %+v", got.Push)
	}
	// DestroySession ends a push.
	c.StartPublishStream(ctx, &car.StartPublishStreamInput{UserId: "v"})
	destroy(t, c, "v")
	if got, _ := srv.User("v"); got.Push != nil {
		t.Fatalf("DestroySession left %+v", got.Push)
	}
}

// TestCreatedNeverConnected: a session whose client never connects follows
// the reconnect wait from CreateSession.
func TestCreatedNeverConnected(t *testing.T) {
	srv, c := setup(t)
	apply(t, c, "u", cartest.DefaultProjectId)
	srv.Advance(10 * time.Second)
	create(t, c, "u")
	srv.Advance(cartest.DefaultReconnectWait - time.Second)
	if state(t, srv, "u") != cartest.StateCreated {
		t.Fatal("the created session was reclaimed early")
	}
	srv.Advance(time.Second)
	if _, ok := srv.User("u"); ok {
		t.Fatal("the created session outlived its reconnect wait")
	}
	cc := srv.Concurrencies()[0]
	if cc.State != cartest.StateCleanup || cc.Destroyed || cc.UserId != "u" || !cc.Since.Equal(t0.Add(100*time.Second)) || !cc.Until.Equal(t0.Add(110*time.Second)) {
		t.Fatalf("after the wait: %v", cc)
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	srv, err := cartest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
	ss := func() string {
		apply(t, c, "u", cartest.DefaultProjectId)
		return create(t, c, "u")
	}()
	st, err := srv.DialStream(t.Context(), ss)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close()
	waitDone(t, st)
	var ce *cartest.CloseError
	if !errors.As(st.Err(), &ce) || ce.Code != cartest.CloseServerClosed || ce.DisconnectCode() != 0 || !strings.Contains(ce.Reason, "reference server closed") {
		t.Fatalf("the stream ended with %v", st.Err())
	}
	if _, err := c.DescribeConcurrentCount(t.Context(), nil); err == nil {
		t.Fatal("a call after Close succeeded")
	}
	if err := srv.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
