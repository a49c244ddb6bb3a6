package car_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

const project = cartest.DefaultProjectId

// TestReconnectWithinWait: a client that drops and comes back (same
// UserId) within the reconnect wait gets the same concurrency.
func TestReconnectWithinWait(t *testing.T) {
	srv, c := newServer(t)
	b := backend{t, c, srv}
	b.wantCounts(project, 3, 0)

	b.apply("alice", project)
	b.wantCounts(project, 3, 1)
	ss := b.create("alice")
	b.wantCounts(project, 3, 1)
	first, err := srv.DialStream(t.Context(), ss)
	if err != nil {
		t.Fatal(err)
	}
	held := first.ConcurrencyId()
	b.wantCounts(project, 3, 1)

	first.Drop()
	if got, _ := srv.User("alice"); got.State != cartest.StateDisconnected {
		t.Fatalf("after the drop: %v", got)
	}
	srv.Advance(cartest.DefaultReconnectWait - time.Second)
	b.wantCounts(project, 3, 1) // still held

	second := b.start("alice")
	if second.ConcurrencyId() != held {
		t.Fatalf("came back to %s, had %s", second.ConcurrencyId(), held)
	}
	if got, _ := srv.User("alice"); got.State != cartest.StateConnected || got.ConcurrencyId != held {
		t.Fatalf("after the reconnect: %v", got)
	}
	b.wantCounts(project, 3, 1)

	b.destroy("alice")
	b.wantCounts(project, 3, 1) // cleaning up
	srv.Advance(cartest.DefaultCleanupDelay)
	b.wantCounts(project, 3, 0)

	want := []string{
		"locked alice " + held, "created alice " + held, "connected alice " + held, "disconnected alice " + held,
		"reattached alice " + held, "reattached alice " + held, "created alice " + held, "connected alice " + held,
		"destroyed alice " + held, "released alice " + held,
	}
	if got := model(srv); !slices.Equal(got, want) {
		t.Fatalf("events\n%q\nwant\n%q", got, want)
	}
}

// TestReconnectAfterWait: past the reconnect wait the old concurrency is
// cleaned up, then idle, and the user gets a fresh one.
func TestReconnectAfterWait(t *testing.T) {
	srv, c := newServer(t)
	b := backend{t, c, srv}
	first := b.start("alice")
	old := first.ConcurrencyId()
	first.Drop()

	srv.Advance(cartest.DefaultReconnectWait + time.Second)
	if _, ok := srv.User("alice"); ok {
		t.Fatal("the user still holds a concurrency after the reconnect wait")
	}
	oldState := func() cartest.Concurrency {
		for _, cc := range srv.Concurrencies() {
			if cc.ConcurrencyId == old {
				return cc
			}
		}
		t.Fatalf("no concurrency %s", old)
		return cartest.Concurrency{}
	}
	if cc := oldState(); cc.State != cartest.StateCleanup || cc.Destroyed || !cc.Since.Equal(t0.Add(cartest.DefaultReconnectWait)) {
		t.Fatalf("the old concurrency after the wait: %v", cc)
	}
	b.wantCounts(project, 3, 1) // cleanup counts as Running

	second := b.start("alice")
	fresh := second.ConcurrencyId()
	if fresh == old {
		t.Fatalf("got the reclaimed concurrency %s back", old)
	}
	b.wantCounts(project, 3, 2)
	srv.Advance(cartest.DefaultCleanupDelay)
	if cc := oldState(); cc.State != cartest.StateIdle || cc.UserId != "" {
		t.Fatalf("the old concurrency after the cleanup: %v", cc)
	}
	b.wantCounts(project, 3, 1)

	var expired, released time.Time
	for _, e := range srv.Events() {
		switch {
		case e.Kind == cartest.EventReconnectWaitExpired && e.Resource == old:
			expired = e.Time
		case e.Kind == cartest.EventReleased && e.Resource == old:
			released = e.Time
		case e.Kind == cartest.EventLocked && e.Resource == fresh && e.Subject != "alice":
			t.Fatalf("fresh concurrency locked for %v", e)
		}
	}
	if !expired.Equal(t0.Add(cartest.DefaultReconnectWait)) || !released.Equal(expired.Add(cartest.DefaultCleanupDelay)) {
		t.Fatalf("expired at %v, released at %v", expired, released)
	}
}

func TestRepeatedConnectionClosesOldStream(t *testing.T) {
	srv, c := newServer(t)
	b := backend{t, c, srv}
	laptop := b.start("alice")
	phone := b.start("alice") // the same user on another device
	<-laptop.Done()
	var ce *cartest.CloseError
	if !errors.As(laptop.Err(), &ce) || ce.Code != cartest.CloseRepeatedConnection || ce.DisconnectCode() != 1 || ce.Reason != "user repeated connection" {
		t.Fatalf("the older stream ended with %v", laptop.Err())
	}
	if phone.ConcurrencyId() != laptop.ConcurrencyId() {
		t.Fatalf("the newer device got %s, the older had %s", phone.ConcurrencyId(), laptop.ConcurrencyId())
	}
	select {
	case <-phone.Done():
		t.Fatalf("the newer stream ended: %v", phone.Err())
	default:
	}
	if !slices.Contains(model(srv), "repeated-connection alice "+laptop.ConcurrencyId()) {
		t.Fatalf("no repeated-connection event: %q", model(srv))
	}
	b.wantCounts(project, 3, 1)
}

func TestLockTimeout(t *testing.T) {
	srv, c := newServer(t)
	b := backend{t, c, srv}
	ctx := t.Context()
	// No ApplyConcurrent at all.
	_, err := c.CreateSession(ctx, &car.CreateSessionInput{UserId: "bob", UserIp: userIP})
	if code(err) != car.CodeLockTimeout {
		t.Fatalf("CreateSession without a lock: %v", err)
	}
	// A lock that expired.
	b.apply("bob", project)
	srv.Advance(cartest.DefaultLockTime)
	_, err = c.CreateSession(ctx, &car.CreateSessionInput{UserId: "bob", UserIp: userIP})
	if code(err) != car.CodeLockTimeout {
		t.Fatalf("CreateSession after the lock time: %v", err)
	}
	b.wantCounts(project, 3, 0)
	// Just in time.
	b.apply("bob", project)
	srv.Advance(cartest.DefaultLockTime - time.Second)
	b.create("bob")
}

// TestSlowDown: two calls for one user that overlap. The first waits out
// an injected latency (bubble time) while it holds the user's place.
func TestSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := cartest.Start(t, cartest.WithListener(memnet.Listen("car")))
		c := srv.Client(car.WithRetry(car.RetryPolicy{MaxAttempts: 1}))
		ctx := t.Context()
		srv.InjectFault("ApplyConcurrent", cartest.Fault{Latency: 5 * time.Second})
		in := &car.ApplyConcurrentInput{UserId: "carol", UserIp: userIP, ProjectId: project}
		var wg sync.WaitGroup
		var firstErr error
		wg.Go(func() { _, firstErr = c.ApplyConcurrent(ctx, in) })
		synctest.Wait() // the first call is in its latency

		_, err := c.ApplyConcurrent(ctx, in)
		if code(err) != car.CodeSlowDown {
			t.Fatalf("the overlapping call: %v", err)
		}
		_, err = c.CreateSession(ctx, &car.CreateSessionInput{UserId: "carol", UserIp: userIP})
		if code(err) != car.CodeSlowDown {
			t.Fatalf("an overlapping CreateSession: %v", err)
		}
		// Another user is not slowed down.
		if _, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "dave", UserIp: userIP, ProjectId: project}); err != nil {
			t.Fatalf("another user: %v", err)
		}
		wg.Wait()
		if firstErr != nil {
			t.Fatalf("the first call: %v", firstErr)
		}
		// Once the first call is done, the user is served again.
		if _, err := c.ApplyConcurrent(ctx, in); err != nil {
			t.Fatalf("after the first call: %v", err)
		}
		srv.Close()
	})
}

func TestStopping(t *testing.T) {
	srv, c := newServer(t)
	b := backend{t, c, srv}
	ctx := t.Context()
	b.start("erin")
	b.destroy("erin")
	got, _ := srv.User("erin")
	if got.State != cartest.StateCleanup || !got.Destroyed {
		t.Fatalf("after DestroySession: %v", got)
	}
	_, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "erin", UserIp: userIP, ProjectId: project})
	if code(err) != car.CodeStopping {
		t.Fatalf("ApplyConcurrent during teardown: %v", err)
	}
	_, err = c.CreateSession(ctx, &car.CreateSessionInput{UserId: "erin", UserIp: userIP})
	if code(err) != car.CodeStopping {
		t.Fatalf("CreateSession during teardown: %v", err)
	}
	b.destroy("erin") // again: harmless
	srv.Advance(cartest.DefaultCleanupDelay - time.Millisecond)
	if _, err := c.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "erin", UserIp: userIP, ProjectId: project}); code(err) != car.CodeStopping {
		t.Fatalf("just before the cleanup ends: %v", err)
	}
	srv.Advance(time.Millisecond)
	b.apply("erin", project)
}

func TestSessionNotFound(t *testing.T) {
	srv, c := newServer(t)
	b := backend{t, c, srv}
	ctx := t.Context()
	pushes := func(user string) []error {
		_, e1 := c.StartPublishStream(ctx, &car.StartPublishStreamInput{UserId: user})
		_, e2 := c.StartPublishStreamWithURL(ctx, &car.StartPublishStreamWithURLInput{UserId: user, PublishStreamURL: "rtmp://192.0.2.1/live/x"})
		_, e3 := c.StopPublishStream(ctx, &car.StopPublishStreamInput{UserId: user})
		return []error{e1, e2, e3}
	}
	wantNotFound := func(when string, user string) {
		t.Helper()
		for _, err := range pushes(user) {
			if code(err) != car.CodeSessionNotFound || !car.IsNotFound(err) {
				t.Fatalf("%s: %v", when, err)
			}
		}
	}
	wantNotFound("unknown user", "frank")
	b.apply("frank", project)
	wantNotFound("locked, no session yet", "frank")
	b.create("frank")
	for _, err := range pushes("frank") {
		if err != nil {
			t.Fatalf("with a session: %v", err)
		}
	}
	b.destroy("frank")
	wantNotFound("destroyed", "frank")
	// DestroySession for a user holding nothing is not an error.
	b.destroy("nobody")
	if got := model(srv); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "nobody") }) {
		t.Fatalf("DestroySession of nobody changed the model: %q", got)
	}
}

// TestCountsAtEveryStep follows DescribeConcurrentCount through every state
// of a pack of two.
func TestCountsAtEveryStep(t *testing.T) {
	srv, c := newServer(t, cartest.WithPack(cartest.Pack{PackId: "duo", Size: 2, Projects: []string{project}}))
	b := backend{t, c, srv}
	steps := []struct {
		name    string
		do      func()
		running uint64
	}{
		{"nothing", func() {}, 0},
		{"u1 locked", func() { b.apply("u1", project) }, 1},
		{"u1 lock expired", func() { srv.Advance(cartest.DefaultLockTime) }, 0},
		{"u1 locked again", func() { b.apply("u1", project) }, 1},
		{"u1 created", func() { b.create("u1") }, 1},
		{"u2 connected", func() { b.start("u2") }, 2},
		{"u1 never connected, reclaimed", func() { srv.Advance(cartest.DefaultReconnectWait) }, 2},
		{"u1 cleaned up", func() { srv.Advance(cartest.DefaultCleanupDelay) }, 1},
		{"u2 destroyed", func() { b.destroy("u2") }, 1},
		{"u2 cleaned up", func() { srv.Advance(cartest.DefaultCleanupDelay) }, 0},
	}
	for _, s := range steps {
		s.do()
		total, running := b.counts(project)
		if total != 2 || running != s.running {
			t.Fatalf("%s: Total %d Running %d, want 2 %d", s.name, total, running, s.running)
		}
		if at, ar := b.counts(""); at != total || ar != running {
			t.Fatalf("%s: the account counts %d %d, the project %d %d", s.name, at, ar, total, running)
		}
	}
}

// TestSharedPack: a pack bound to two projects serves both; each project
// counts it.
func TestSharedPack(t *testing.T) {
	srv, c := newServer(t,
		cartest.WithProject(cartest.Project{ProjectId: "cap-game"}),
		cartest.WithProject(cartest.Project{ProjectId: "cap-demo"}),
		cartest.WithPack(cartest.Pack{PackId: "shared", Size: 2, Projects: []string{"cap-game", "cap-demo"}}),
		cartest.WithPack(cartest.Pack{PackId: "demo-only", Size: 1, Projects: []string{"cap-demo"}}),
	)
	b := backend{t, c, srv}
	b.wantCounts("cap-game", 2, 0)
	b.wantCounts("cap-demo", 3, 0)
	b.wantCounts("", 3, 0)

	b.apply("g1", "cap-game")
	b.apply("d1", "cap-demo")
	for user, want := range map[string]string{"g1": "shared-1", "d1": "shared-2"} {
		if got, _ := srv.User(user); got.ConcurrencyId != want {
			t.Fatalf("%s holds %v, want %s", user, got, want)
		}
	}
	b.wantCounts("cap-game", 2, 2)
	b.wantCounts("cap-demo", 3, 2)
	// cap-game has nothing left; cap-demo still has its own pack.
	_, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "g2", UserIp: userIP, ProjectId: "cap-game"})
	if code(err) != car.CodeNoIdle {
		t.Fatalf("cap-game with its shared pack used up: %v", err)
	}
	b.apply("d2", "cap-demo")
	if got, _ := srv.User("d2"); got.ConcurrencyId != "demo-only-1" || got.ProjectId != "cap-demo" {
		t.Fatalf("d2 holds %v", got)
	}
	b.wantCounts("cap-demo", 3, 3)
	b.wantCounts("", 3, 3)
}

// TestDifferentUserNeverGetsHeldConcurrency: while one user holds the only
// concurrency, in any state, another gets NoIdle.
func TestDifferentUserNeverGetsHeldConcurrency(t *testing.T) {
	srv, c := newServer(t, cartest.WithPack(cartest.Pack{PackId: "solo", Size: 1, Projects: []string{project}}))
	b := backend{t, c, srv}
	other := func(state string) {
		t.Helper()
		_, err := c.ApplyConcurrent(t.Context(), &car.ApplyConcurrentInput{UserId: "mallory", UserIp: userIP, ProjectId: project})
		if code(err) != car.CodeNoIdle {
			t.Fatalf("another user while the holder is %s: %v", state, err)
		}
		_, err = c.CreateSession(t.Context(), &car.CreateSessionInput{UserId: "mallory", UserIp: userIP})
		if code(err) != car.CodeLockTimeout {
			t.Fatalf("another user's CreateSession while the holder is %s: %v", state, err)
		}
	}
	b.apply("alice", project)
	other("locked")
	ss := b.create("alice")
	other("created")
	st, err := srv.DialStream(t.Context(), ss)
	if err != nil {
		t.Fatal(err)
	}
	other("connected")
	st.Drop()
	other("disconnected")
	srv.Advance(cartest.DefaultReconnectWait - time.Second)
	other("disconnected, just before the wait ends")
	b.destroy("alice")
	other("cleaning up")
	srv.Advance(cartest.DefaultCleanupDelay)
	b.apply("mallory", project)
	if got, _ := srv.User("mallory"); got.ConcurrencyId != "solo-1" {
		t.Fatalf("mallory holds %v", got)
	}
}
