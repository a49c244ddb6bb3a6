package browsertest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/examples/webdemo/app"
)

// streamEvents records the manager's OnStreamEvent.
type streamEvents struct {
	mu     sync.Mutex
	events []car.StreamEvent
}

func (s *streamEvents) add(ev car.StreamEvent) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

// of is e.g. "connected/0 disconnected/-1 reconnecting/-2 lost/-3".
func (s *streamEvents) of(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, ev := range s.events {
		if ev.UserId == user {
			parts = append(parts, fmt.Sprintf("%s/%d", ev.State, ev.Code))
		}
	}
	return strings.Join(parts, " ")
}

// loseStream makes the TCGSDK stand-in lose its stream for good: the
// stream drops (onDisconnect -1), its reconnects fail (onConnectFail -2 each
// time) until it gives up (onConnectFail -3).
func loseStream(p *tab) {
	eval[bool](p, `window.demo.fake.failReconnects = true, window.demo.fake.dropStream(), true`)
}

// The glue reports TCGSDK's stream events; when the stream is lost for
// good, a manager configured with StreamLostRelease releases the user and
// the page says why.
func TestStreamLostReleases(t *testing.T) {
	rec := &streamEvents{}
	e := newEnv(t, app.Config{Manager: []car.ManagerOption{car.WithStreamLost(car.StreamLostRelease)}, OnStreamEvent: rec.add})
	p := e.open("hank", "user=hank&sdkRetry=300&sdkAttempts=3")
	p.waitText("stream", "connected", 10*time.Second)
	e.waitCAR("hank", cartest.StateConnected, 5*time.Second)

	loseStream(p)
	p.waitText("released", "released: stream lost", 10*time.Second)
	if reason, _ := e.waitRelease("hank", 5*time.Second); reason != string(car.ReleaseStreamLost) {
		t.Errorf("release reason %q, want %q", reason, car.ReleaseStreamLost)
	}
	e.waitCAR("hank", cartest.StateIdle, 5*time.Second)
	if n := e.countEvents("hank", cartest.EventDestroyed); n != 1 {
		t.Errorf("%d DestroySession events, want 1", n)
	}
	// The manager heard every report; repeated ones (the -2 retries) once
	// per change of code or state.
	if got, want := rec.of("hank"), "connected/0 disconnected/-1 reconnecting/-2 lost/-3"; got != want {
		t.Errorf("stream events %q, want %q", got, want)
	}
}

// With StreamLostRestart the manager starts the user again: a new
// ServerSession arrives in a "ready" notice, the glue starts TCGSDK with
// it, and the user keeps the same concurrency.
func TestStreamLostRestarts(t *testing.T) {
	rec := &streamEvents{}
	e := newEnv(t, app.Config{Manager: []car.ManagerOption{car.WithStreamLost(car.StreamLostRestart)}, OnStreamEvent: rec.add})
	p := e.open("iris", "user=iris&sdkRetry=300&sdkAttempts=3")
	p.waitText("stream", "connected", 10*time.Second)
	before := e.waitCAR("iris", cartest.StateConnected, 5*time.Second)
	first := eval[string](p, `window.demo.car.serverSession`)

	loseStream(p)
	p.waitJS(`window.demo.car.serverSession !== `+jsString(first), 10*time.Second)
	p.waitJS(`window.demo.fake.state === "connected"`, 10*time.Second)
	p.waitText("stream", "connected", 5*time.Second)
	after := e.waitCAR("iris", cartest.StateConnected, 5*time.Second)
	if after.ConcurrencyId != before.ConcurrencyId {
		t.Errorf("concurrency %s after the restart, want %s", after.ConcurrencyId, before.ConcurrencyId)
	}
	if e.countEvents("iris", cartest.EventCreated) != 2 {
		t.Errorf("CreateSession not run again; events:\n%s", e.events("iris"))
	}
	e.noRelease("iris")
	for deadline := time.Now().Add(5 * time.Second); !strings.HasSuffix(rec.of("iris"), "lost/-3 connected/0"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stream events %q, want lost then connected again", rec.of("iris"))
		}
	}
	if got := p.text("released"); got != "–" {
		t.Errorf("page says %q", got)
	}
}
