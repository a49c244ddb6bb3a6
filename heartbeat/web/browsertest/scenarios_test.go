package browsertest

import (
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/examples/webdemo/app"
)

// Connect → ready → stream connected: the page starts TCGSDK with the
// ServerSession, the stand-in opens the reference server's client stream,
// and the glue reports the stream to the manager.
func TestConnectReadyStream(t *testing.T) {
	e := newEnv(t, app.Config{})
	p := e.open("alice", "user=alice")
	p.waitText("hb-state", "connected", 10*time.Second)
	p.waitText("stream", "connected (onConnectSuccess 0)", 10*time.Second)
	c := e.waitCAR("alice", cartest.StateConnected, 5*time.Second)
	if got := p.text("game"); got == "" || !contains(got, c.ConcurrencyId) {
		t.Errorf("page shows %q, want the stream of %s", got, c.ConcurrencyId)
	}
	if v := eval[int](p, `window.demo.car.heartbeat.version`); v != 2 {
		t.Errorf("negotiated protocol v%d, want v2", v)
	}
	e.noRelease("alice")
}

// logTime returns the page-clock time (ms) of the n-th (1-based) log entry
// of typ whose detail contains sub, or -1.
func logTime(log []logEntry, typ, sub string, n int) int {
	for _, l := range log {
		if l.Type == typ && contains(string(l.Detail), sub) {
			if n--; n == 0 {
				return l.T
			}
		}
	}
	return -1
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// Idle: no input for the threshold gives idle notices at 1× and 2× the
// threshold after the last input; the page warns with a countdown; the
// second notice releases (DestroySession). Input before that keeps the
// user.
func TestIdleNoticesThenRelease(t *testing.T) {
	const threshold = 2 * time.Second
	e := newEnv(t, app.Config{IdleThreshold: threshold, IdleRelease: 2})
	p := e.open("idler", "user=idler")
	p.waitText("stream", "connected", 10*time.Second)
	// The user is active for 3 s, more than the threshold: no notice.
	var lastInput int // page log clock, ms
	for range 10 {
		lastInput = eval[int](p, `document.body.dispatchEvent(new KeyboardEvent("keydown", {bubbles: true, key: "a"})), Math.round(performance.now() - window.demo.t0)`)
		time.Sleep(300 * time.Millisecond)
	}
	if n := logTime(p.log(), "idle", "", 1); n >= 0 {
		t.Fatalf("idle notice at %d ms while the user was typing", n)
	}
	p.waitText("idle", "released in", 5*time.Second)
	countdown := p.text("idle")
	p.waitText("released", "released: idle", 6*time.Second)
	log := p.log()
	first, second := logTime(log, "idle", `"times":1`, 1), logTime(log, "idle", `"times":2`, 1)
	rel := logTime(log, "released", "idle", 1)
	if first < 0 || second < 0 || rel < 0 {
		t.Fatalf("idle notices at %d, %d ms, release at %d ms; page:\n%s", first, second, rel, p.summary())
	}
	// The activity frame goes out at most an activity interval (half the
	// threshold) after the input; the server counts from its arrival.
	within(t, "idle 1× after the last input", ms(first-lastInput), threshold-100*time.Millisecond, threshold+threshold/2+500*time.Millisecond)
	within(t, "idle 2× after 1×", ms(second-first), threshold-300*time.Millisecond, threshold+300*time.Millisecond)
	if rel < second {
		t.Errorf("released at %d ms, before the second notice at %d ms", rel, second)
	}
	if !contains(countdown, "idle 1×") {
		t.Errorf("idle warning %q, want the 1× warning with its countdown", countdown)
	}
	if reason, _ := e.waitRelease("idler", 5*time.Second); reason != "idle" {
		t.Errorf("release reason %q, want idle", reason)
	}
	e.waitCAR("idler", cartest.StateIdle, 5*time.Second)
	if n := e.countEvents("idler", cartest.EventDestroyed); n != 1 {
		t.Errorf("%d DestroySession events, want 1", n)
	}
}

// Offline for less than the grace window: the heartbeat resumes the same
// session, the stream comes back, and the user keeps the same
// concurrency; nothing is released.
func TestOfflineShorterThanGraceResumes(t *testing.T) {
	e := newEnv(t, app.Config{ReconnectWait: 7 * time.Second})
	p := e.open("carol", "user=carol&sdkRetry=1000")
	p.waitText("stream", "connected", 10*time.Second)
	before := e.waitCAR("carol", cartest.StateConnected, 5*time.Second)

	p.offline(true)
	time.Sleep(3500 * time.Millisecond) // past the ping timeout (2 s): the server has seen the drop
	if snap := userSnap(e, "carol"); snap.Connected {
		t.Errorf("manager still sees carol connected while offline: %+v", snap)
	}
	p.offline(false)
	p.waitJS(`window.demo.log.some(l => l.type === "heartbeat" && l.detail.state === "connected" && l.detail.resumed && l.t > 1000)`, 5*time.Second)
	p.waitText("hb-state", "connected", 5*time.Second)
	p.waitText("stream", "connected", 10*time.Second)
	after := e.waitCAR("carol", cartest.StateConnected, 10*time.Second)
	if after.ConcurrencyId != before.ConcurrencyId {
		t.Errorf("concurrency %s after the outage, want the same %s", after.ConcurrencyId, before.ConcurrencyId)
	}
	if snap := userSnap(e, "carol"); !snap.Connected || snap.State.String() != "active" {
		t.Errorf("manager after the outage: %+v", snap)
	}
	e.noRelease("carol")
	if got := p.text("released"); got != "–" {
		t.Errorf("page says %q", got)
	}
}

// Offline for longer than the grace window: the manager releases the
// concurrency when the window passes, and the page says so once it is
// back online.
func TestOfflineLongerThanGraceReleases(t *testing.T) {
	const grace = 4 * time.Second
	e := newEnv(t, app.Config{ReconnectWait: grace})
	p := e.open("dave", "user=dave&sdkRetry=1000&sdkAttempts=20")
	p.waitText("stream", "connected", 10*time.Second)
	e.waitCAR("dave", cartest.StateConnected, 5*time.Second)

	off := time.Now()
	p.offline(true)
	reason, at := e.waitRelease("dave", 15*time.Second)
	if reason != "disconnected" {
		t.Errorf("release reason %q, want disconnected", reason)
	}
	// The window counts from the client's last frame, which may precede
	// going offline by up to a ping interval (1 s here): the release comes
	// a window after that frame. Detection is at once when the browser
	// closes its socket on going offline, else within the ping timeout
	// (2 s) plus a ping interval.
	within(t, "release", at.Sub(off), grace-time.Second-200*time.Millisecond, grace+4*time.Second)
	e.waitCAR("dave", cartest.StateIdle, 5*time.Second)
	p.offline(false)
	p.waitText("released", "expired", 10*time.Second)
	if st := eval[string](p, `window.demo.car.heartbeat.state`); st != "expired" {
		t.Errorf("heartbeat state %q, want expired", st)
	}
}

// A closed tab: the manager releases the concurrency when the grace
// window has passed after the close, not before.
func TestTabClosedReleasedAfterWindow(t *testing.T) {
	const grace = 4 * time.Second
	e := newEnv(t, app.Config{ReconnectWait: grace})
	p := e.open("erin", "user=erin")
	p.waitText("stream", "connected", 10*time.Second)
	e.waitCAR("erin", cartest.StateConnected, 5*time.Second)
	closed := time.Now()
	p.close()
	time.Sleep(grace - 500*time.Millisecond)
	e.noRelease("erin")
	if c, ok := e.concurrency("erin"); !ok || c.State == cartest.StateCleanup {
		t.Errorf("CAR before the window passed: %v %v", c, ok)
	}
	reason, at := e.waitRelease("erin", 5*time.Second)
	if reason != "disconnected" {
		t.Errorf("release reason %q, want disconnected", reason)
	}
	within(t, "release", at.Sub(closed), grace-100*time.Millisecond, grace+3*time.Second)
	e.waitCAR("erin", cartest.StateIdle, 5*time.Second)
	if n := e.countEvents("erin", cartest.EventDestroyed); n != 1 {
		t.Errorf("%d DestroySession events, want 1", n)
	}
}

// A reload resumes the heartbeat session with the resume token kept in
// sessionStorage, and the stream with the same concurrency.
func TestReloadResumesWithStoredToken(t *testing.T) {
	e := newEnv(t, app.Config{})
	p := e.open("frank", "user=frank")
	p.waitText("stream", "connected", 10*time.Second)
	before := e.waitCAR("frank", cartest.StateConnected, 5*time.Second)
	session := eval[string](p, `window.demo.car.heartbeat.session`)
	stored := eval[string](p, `JSON.parse(sessionStorage.getItem("tcc.heartbeat:" + window.demo.car.heartbeat.session)).token`)
	if stored == "" {
		t.Fatal("no resume token in sessionStorage")
	}

	if err := chromedpReload(p); err != nil {
		t.Fatal(err)
	}
	p.waitJS(`window.demo && window.demo.log.some(l => l.type === "heartbeat" && l.detail.state === "connected")`, 10*time.Second)
	log := p.log()
	if logTime(log, "heartbeat", `"tokenSource":"stored"`, 1) < 0 || logTime(log, "heartbeat", `"resumed":true`, 1) < 0 {
		t.Errorf("after the reload the page did not resume with the stored token; log:\n%s", p.summary())
	}
	if s := eval[string](p, `window.demo.car.heartbeat.session`); s != session {
		t.Errorf("heartbeat session %q after the reload, want the same %q", s, session)
	}
	p.waitText("stream", "connected", 10*time.Second)
	after := e.waitCAR("frank", cartest.StateConnected, 5*time.Second)
	if after.ConcurrencyId != before.ConcurrencyId {
		t.Errorf("concurrency %s after the reload, want %s", after.ConcurrencyId, before.ConcurrencyId)
	}
	if e.countEvents("frank", cartest.EventReattached) < 1 {
		t.Errorf("no reattach at CAR; events:\n%s", e.events("frank"))
	}
	e.noRelease("frank")
}

// A second tab for the same user takes over: the first is told
// "replaced" and stops; the second has the stream; CAR keeps the
// concurrency.
func TestSecondTabReplacesFirst(t *testing.T) {
	e := newEnv(t, app.Config{})
	a := e.open("gina-1", "user=gina")
	a.waitText("stream", "connected", 10*time.Second)
	before := e.waitCAR("gina", cartest.StateConnected, 5*time.Second)
	b := e.open("gina-2", "user=gina")
	a.waitText("released", "replaced", 10*time.Second)
	if why := eval[string](a, `window.demo.car.heartbeat.why`); why != "replaced" {
		t.Errorf("first tab: why %q, want replaced", why)
	}
	b.waitText("hb-state", "connected", 10*time.Second)
	b.waitText("stream", "connected", 10*time.Second)
	after := e.waitCAR("gina", cartest.StateConnected, 5*time.Second)
	if after.ConcurrencyId != before.ConcurrencyId {
		t.Errorf("concurrency %s, want the same %s", after.ConcurrencyId, before.ConcurrencyId)
	}
	if e.countEvents("gina", cartest.EventRepeatedConnection) < 1 {
		t.Errorf("CAR saw no repeated connection; events:\n%s", e.events("gina"))
	}
	time.Sleep(time.Second) // the first tab stays stopped
	if n := eval[int](a, `window.demo.log.filter(l => l.type === "heartbeat" && l.detail.state === "connecting").length`); n != 1 {
		t.Errorf("first tab reconnected after being replaced (%d connects)", n)
	}
	e.noRelease("gina")
}

// Four users on a project of three: the fourth queues, sees its position,
// and gets ready (and the stream) when one leaves.
func TestQueueOfFourOnThree(t *testing.T) {
	e := newEnv(t, app.Config{Concurrencies: 3})
	var tabs []*tab
	for _, u := range []string{"u1", "u2", "u3"} {
		p := e.open(u, "user="+u)
		p.waitText("stream", "connected", 10*time.Second)
		e.waitCAR(u, cartest.StateConnected, 5*time.Second)
		tabs = append(tabs, p)
	}
	q := e.open("u4", "user=u4")
	q.waitText("queue", "#1", 10*time.Second)
	q.waitText("game", "waiting in the queue: #1", 5*time.Second)
	if _, ok := e.concurrency("u4"); ok {
		t.Errorf("u4 holds a concurrency while queued")
	}
	if snap := userSnap(e, "u4"); snap.QueuePosition != 1 {
		t.Errorf("manager: u4 %+v, want queue position 1", snap)
	}
	q.waitJS(`document.querySelectorAll("#car-table tr").length === 3 && [...document.querySelectorAll("#car-table tr")].every(r => r.textContent.includes("connected"))`, 5*time.Second)
	if *screenshotPath != "" {
		q.screenshot(*screenshotPath)
	}
	// At the head of the queue the glue hands the manager a fresh
	// ClientSession (RefreshClientSession).
	q.waitJS(`window.demo.log.some(l => l.type === "refresh")`, 5*time.Second)

	left := time.Now()
	eval[bool](tabs[0], `document.getElementById("stop").click(), true`)
	tabs[0].waitText("released", "released: stopped", 10*time.Second)
	q.waitJS(`window.demo.log.some(l => l.type === "ready")`, 10*time.Second)
	q.waitText("stream", "connected", 10*time.Second)
	c := e.waitCAR("u4", cartest.StateConnected, 5*time.Second)
	within(t, "u4 admitted", time.Since(left), 0, 5*time.Second)
	if _, ok := e.concurrency("u1"); ok {
		t.Errorf("u1 still holds a concurrency after leaving")
	}
	t.Logf("u4 got %s", c.ConcurrencyId)
}
