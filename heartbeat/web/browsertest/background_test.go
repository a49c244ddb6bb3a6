package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tcconcurrency/sdk-go/examples/webdemo/app"
	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// A page whose JavaScript cannot run: a background tab the browser froze,
// or a page blocked in a long task. The heartbeat server must not drop it,
// because the browser's network stack answers WebSocket pings without the
// page's code. These tests run their own heartbeat.Server (short timings,
// callbacks recorded) on the demo's origin, and a page that connects to it
// with heartbeat.js.

const (
	bgPingInterval = 200 * time.Millisecond
	bgPingTimeout  = time.Second
	bgStall        = 4 * time.Second // four ping timeouts
	bgSession      = "bg-1"
)

// hbEvents records a heartbeat.Server's callbacks.
type hbEvents struct {
	mu                             sync.Mutex
	connects, disconnects, resumes []heartbeat.Event
}

func (r *hbEvents) add(list *[]heartbeat.Event) func(heartbeat.Event) {
	return func(ev heartbeat.Event) {
		r.mu.Lock()
		*list = append(*list, ev)
		r.mu.Unlock()
	}
}

// counts is connects, disconnects and resumes, and the disconnects told
// out.
func (r *hbEvents) counts() (c, d, res int, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.disconnects {
		why += fmt.Sprintf(" [%s, code %d, at %d ms, last frame %v before]", ev.Reason, ev.CloseCode, ev.At.UnixMilli(), ev.At.Sub(ev.LastSeen).Round(time.Millisecond))
	}
	return len(r.connects), len(r.disconnects), len(r.resumes), why
}

func (r *hbEvents) disconnectsList() []heartbeat.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]heartbeat.Event(nil), r.disconnects...)
}

// bgPage is the page and its server.
type bgPage struct {
	*tab
	hb  *heartbeat.Server
	rec *hbEvents
}

// openBgPage starts a heartbeat.Server with short timings and opens a page
// connected to it through heartbeat.js. The page counts a 50 ms timer
// (window.bg.ticks: the Date.now() of each tick) and logs the client's
// events (window.bg.log).
func openBgPage(t *testing.T) *bgPage {
	t.Helper()
	rec := &hbEvents{}
	hb, err := heartbeat.NewServer(
		heartbeat.WithPingInterval(bgPingInterval),
		heartbeat.WithPingTimeout(bgPingTimeout),
		heartbeat.WithIdleThreshold(time.Hour), // no idle notices
		heartbeat.WithWriteTimeout(2*time.Second),
		heartbeat.OnConnect(rec.add(&rec.connects)),
		heartbeat.OnDisconnect(rec.add(&rec.disconnects)),
		heartbeat.OnResume(rec.add(&rec.resumes)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hb.Shutdown(ctx)
	})
	html := `<!doctype html><meta charset="utf-8"><title>background</title><script type="module">
import { connect } from "/heartbeat/web/heartbeat.js";
const ticks = [], log = [];
setInterval(() => ticks.push(Date.now()), 50);
const { session, token } = await (await fetch("/bg/open", { method: "POST" })).json();
const hb = connect({ url: "/bg/heartbeat", session, token, storage: null });
hb.on("state", (d) => log.push({ t: Date.now(), type: "state", state: d.state, resumed: !!d.resumed, code: d.code, reason: d.reason }));
hb.on("welcome", () => log.push({ t: Date.now(), type: "welcome" }));
hb.on("custom", (d) => log.push({ t: Date.now(), type: "custom", name: d.name }));
window.bg = { hb, ticks, log };
</script>`
	e := newEnv(t, app.Config{Routes: func(mux *http.ServeMux) {
		mux.Handle("GET /bg/heartbeat", hb)
		// The backend's Start: it opens the session when the page asks,
		// so that its window runs from then, not from the test's start.
		mux.HandleFunc("POST /bg/open", func(w http.ResponseWriter, r *http.Request) {
			token, err := hb.Open(r.Context(), bgSession)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"session": bgSession, "token": token})
		})
		// A slow answer, for a synchronous request that blocks the page.
		mux.HandleFunc("GET /bg/block", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(bgStall):
			case <-r.Context().Done():
			}
			w.Write([]byte("ok"))
		})
		mux.HandleFunc("GET /bg/page", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(html))
		})
	}})
	p := &bgPage{tab: e.openPath("bg", "/bg/page"), hb: hb, rec: rec}
	p.waitBg(`window.bg && window.bg.hb.state === "connected"`, 15*time.Second)
	// OnConnect runs after the welcome, on the server's own goroutine.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, _, _, _ := rec.counts()
		if c == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connects, want 1", c)
		}
	}
	// The timer ticks while the page runs.
	n := eval[int](p.tab, `window.bg.ticks.length`)
	p.waitJS(fmt.Sprintf(`window.bg.ticks.length >= %d`, n+3), 3*time.Second)
	return p
}

// watchStall samples the server until the stall ends: the session must stay
// connected, with no OnDisconnect, and keep hearing pongs although the
// page's code is stopped. A notice is sent a ping timeout in; the page
// cannot handle it yet.
func (p *bgPage) watchStall(t *testing.T, start, end time.Time) {
	t.Helper()
	sent := false
	var lastSeen time.Time
	for time.Now().Before(end) {
		info, ok := p.hb.Session(bgSession)
		if c, d, r, why := p.rec.counts(); !ok || !info.Connected || c != 1 || d != 0 || r != 0 {
			t.Fatalf("%v into the stall: session %+v (exists %v); %d connects, %d disconnects, %d resumes, want 1, 0, 0:%s",
				time.Since(start).Round(time.Millisecond), info, ok, c, d, r, why)
		}
		lastSeen = info.LastSeen
		if !sent && time.Since(start) > bgPingTimeout {
			sent = true
			if err := p.hb.Send(context.Background(), bgSession, heartbeat.Notice{Kind: heartbeat.NoticeCustom, Name: "during-stall", Data: json.RawMessage(`{}`)}); err != nil {
				t.Fatalf("Send during the stall: %v", err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The last pong came near the end of the stall, long after the page's
	// code stopped: the network stack answered the pings. (At 200 ms per
	// ping, a pong is due every 200 ms; a ping timeout's slack absorbs the
	// load.)
	if got := lastSeen.Sub(start); got < end.Sub(start)-bgPingTimeout {
		t.Errorf("the server last heard the page %v into the %v stall, want pongs until its last ping timeout", got.Round(time.Millisecond), end.Sub(start).Round(time.Millisecond))
	}
}

// checkStalled is the control: the page's timer did not tick between from
// and to, and the notice sent meanwhile was not handled before to.
func (p *bgPage) checkStalled(t *testing.T, from, to time.Time) {
	t.Helper()
	p.waitJS(fmt.Sprintf(`window.bg.ticks.some((t) => t > %d)`, to.UnixMilli()), 5*time.Second)
	if ran := eval[[]int64](p.tab, fmt.Sprintf(`window.bg.ticks.filter((t) => t > %d && t < %d)`, from.UnixMilli(), to.UnixMilli())); len(ran) > 0 {
		t.Errorf("the page's timer ticked %d times during the stall (at %v ms): its JavaScript was running", len(ran), ran)
	}
	if at := eval[int64](p.tab, `(window.bg.log.find((l) => l.type === "custom") || {t: Number.MAX_SAFE_INTEGER}).t`); at < to.UnixMilli() {
		t.Errorf("the notice sent during the stall was handled %d ms before the stall ended", to.UnixMilli()-at)
	}
}

// waitNotice waits for the notice sent during the stall.
func (p *bgPage) waitNotice() {
	p.waitJS(`window.bg.log.some((l) => l.type === "custom" && l.name === "during-stall")`, 5*time.Second)
}

// checkActivity: the page's activity reaches the server after to.
func (p *bgPage) checkActivity(t *testing.T, after time.Time) {
	t.Helper()
	eval[bool](p.tab, `window.bg.hb.touch(), true`)
	deadline := time.Now().Add(5 * time.Second)
	for info, _ := p.hb.Session(bgSession); !info.LastActivity.After(after); info, _ = p.hb.Session(bgSession) {
		if time.Now().After(deadline) {
			t.Fatalf("server: no activity from the page after the stall: %+v", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := eval[string](p.tab, `window.bg.hb.state`); st != "connected" {
		t.Errorf("page's heartbeat %q, want connected", st)
	}
}

// waitBg polls a JavaScript condition from Go until it is true, failing
// after timeout with the page's and the server's view.
func (p *bgPage) waitBg(cond string, timeout time.Duration) {
	p.e.t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Since(start) > timeout {
			ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
			page, perr := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.bg ? {state: window.bg.hb.state, why: window.bg.hb.why, code: window.bg.hb.closeCode, reason: window.bg.hb.closeReason, log: window.bg.log, ticks: window.bg.ticks.length} : {bg: "missing", html: document.documentElement.outerHTML.slice(0, 300)})`))
			cancel()
			info, ok := p.hb.Session(bgSession)
			c, d, r, why := p.rec.counts()
			p.e.t.Fatalf("%s not true within %v (err %v); page: %s (err %v); server: session %+v (exists %v), %d connects, %d disconnects, %d resumes%s", cond, timeout, err, page, perr, info, ok, c, d, r, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *bgPage) clientLog() string {
	return eval[string](p.tab, `JSON.stringify(window.bg.log)`)
}

// A page whose event loop is blocked (here in a synchronous request that
// takes four ping timeouts: no timers, no event handlers, like a long task,
// but without burning a core of the shared machine) keeps its heartbeat
// connection: Chromium's network stack answers the server's pings by
// itself, so the server keeps hearing pongs and never disconnects the
// session. Afterwards the page is still on the same connection: the notice
// sent meanwhile arrives, its activity reaches the server, and it never
// reconnected.
//
// The control: the page's 50 ms timer did not tick and the notice was not
// handled during the stall, so the page's own code did not keep the
// connection.
func TestBlockedPageKeepsConnection(t *testing.T) {
	p := openBgPage(t)
	// The request starts from a page timer so that the evaluation returns;
	// CDP is not used until it ends.
	eval[bool](p.tab, `setTimeout(() => { window.bg.blockedAt = Date.now(); const x = new XMLHttpRequest(); x.open("GET", "/bg/block", false); x.send(); window.bg.unblockedAt = Date.now(); }, 0), true`)
	start := time.Now()
	p.watchStall(t, start, start.Add(bgStall))
	p.waitBg(`window.bg.unblockedAt > 0`, 5*time.Second)
	from, to := time.UnixMilli(eval[int64](p.tab, `window.bg.blockedAt`)), time.UnixMilli(eval[int64](p.tab, `window.bg.unblockedAt`))
	if blocked := to.Sub(from); blocked < bgStall-100*time.Millisecond {
		t.Fatalf("the page was blocked for %v only, want %v", blocked, bgStall)
	}
	p.checkStalled(t, from.Add(100*time.Millisecond), to)
	p.waitNotice()
	p.checkActivity(t, to)
	if c, d, r, why := p.rec.counts(); c != 1 || d != 0 || r != 0 {
		t.Errorf("%d connects, %d disconnects, %d resumes, want 1, 0, 0:%s", c, d, r, why)
	}
	if n := eval[int](p.tab, `window.bg.log.filter((l) => l.type === "welcome").length`); n != 1 {
		t.Errorf("the page got %d welcomes, want 1 (no reconnect); log: %s", n, p.clientLog())
	}
}

// lifecycle freezes the tab as a browser freezes a background tab (its
// JavaScript stops: no timers, no event handlers), or makes it active.
func (tb *tab) lifecycle(state page.SetWebLifecycleStateState) {
	tb.e.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: state})
		return err
	}))
	if err != nil {
		tb.e.t.Fatalf("%s: lifecycle %s: %v", tb.name, state, err)
	}
}

// A frozen page (CDP's Page.setWebLifecycleState "frozen", what Chromium
// does to a background tab) keeps its connection for the whole freeze: the
// server keeps hearing pongs and never disconnects it, and the page's timer
// stands still. When the page is made active again, this Chromium closes
// the socket (1001 to the server, 1006 to the page); heartbeat.js then
// resumes the same session at once, within the reload grace, so the user
// keeps the session. The test accepts both a kept socket and that resume,
// but nothing during the freeze.
func TestFrozenPageKeepsSession(t *testing.T) {
	p := openBgPage(t)
	start := time.Now()
	p.lifecycle(page.SetWebLifecycleStateStateFrozen)
	frozen := time.Now()
	p.watchStall(t, start, frozen.Add(bgStall))
	thawed := time.Now()
	p.lifecycle(page.SetWebLifecycleStateStateActive)
	p.checkStalled(t, frozen.Add(200*time.Millisecond), thawed)
	p.checkActivity(t, thawed)
	c, d, r, why := p.rec.counts()
	for deadline := time.Now().Add(5 * time.Second); r < d && time.Now().Before(deadline); c, d, r, why = p.rec.counts() {
		time.Sleep(20 * time.Millisecond) // OnResume runs on the server's goroutine
	}
	if c != 1 || d != r || d > 1 {
		t.Errorf("%d connects, %d disconnects, %d resumes, want 1 connect and at most one disconnect, resumed:%s", c, d, r, why)
	}
	for _, ev := range p.rec.disconnectsList() {
		if ev.At.Before(thawed) || ev.Reason != heartbeat.ReasonClientClosed {
			t.Errorf("disconnect %s at %v after the freeze began, want none before the page was active again (%v)", ev.Reason, ev.At.Sub(start).Round(time.Millisecond), thawed.Sub(start).Round(time.Millisecond))
		}
	}
	if d == 0 {
		p.waitNotice()
	} else {
		// The notice sent during the freeze went out on the socket the
		// browser then closed: the page never handled it.
		t.Logf("the browser closed the socket when the page was made active again, and the page resumed:%s; page log: %s", why, p.clientLog())
	}
	if s := eval[string](p.tab, `window.bg.hb.session`); s != bgSession {
		t.Errorf("page's session %q, want %q", s, bgSession)
	}
}
