package browsertest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/examples/webdemo/app"
)

// The browser runs on real time: the scenarios use short timings (ping 1 s,
// grace a few seconds, idle a few seconds) and assert windows, never
// instants. They run in parallel, each with its own demo server (reference
// server, manager, port) and its own browser context (storage, tabs) in
// one shared Chromium.

var screenshotPath = flag.String("screenshot", "", "write the web demo's screenshot (PNG) to this file")

// browser is the Chromium every test shares, started by TestMain; nil when
// Chromium is not installed (then every test skips). It is the test
// binary's one process-wide resource, like a database a TestMain starts.
var browser context.Context

const skipReason = "browsertest: Chromium not found: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM to its path; skipping the browser tests"

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestMain(m *testing.M) {
	flag.Parse()
	path := chromiumPath()
	if path == "" {
		fmt.Fprintln(os.Stderr, skipReason)
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "browsertest-profile-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The flags known to work on these machines (headless, as root, on a
	// closed network), and no throttling of background tabs, so that
	// several tabs keep real-time timers.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(dir),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1200, 800),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "browsertest: starting Chromium:", err)
		os.Exit(1)
	}
	browser = ctx
	code := m.Run()
	cancel()
	cancelAlloc()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one scenario: a demo server and a browser context.
type env struct {
	t     *testing.T
	app   *app.App
	net   *netCut // the browser's way to the demo server
	start time.Time
	ctx   context.Context // the browser context's blank first tab
}

// newEnv starts a demo with cfg (short timings by default) and a fresh
// browser context. It skips the test when there is no Chromium.
func newEnv(t *testing.T, cfg app.Config) *env {
	t.Helper()
	if browser == nil {
		t.Skip(skipReason)
	}
	t.Parallel()
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Second
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = 2 * time.Second
	}
	if cfg.ReconnectWait == 0 {
		cfg.ReconnectWait = 5 * time.Second
	}
	if cfg.IdleThreshold == 0 {
		cfg.IdleThreshold = time.Minute
	}
	if cfg.CleanupDelay == 0 {
		cfg.CleanupDelay = 200 * time.Millisecond
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(a.URL)
	return &env{t: t, app: a, net: newNetCut(t, u.Host), start: time.Now(), ctx: ctx}
}

// tab is one page of the demo.
type tab struct {
	e      *env
	name   string
	ctx    context.Context
	cancel context.CancelFunc
}

// open opens the demo page in a new tab, with the query (e.g.
// "user=alice&sdkRetry=200").
func (e *env) open(name, query string) *tab {
	e.t.Helper()
	return e.openPath(name, "/?"+query)
}

// openPath opens a path of the demo server in a new tab.
func (e *env) openPath(name, path string) *tab {
	e.t.Helper()
	ctx, cancel := chromedp.NewContext(e.ctx)
	tb := &tab{e: e, name: name, ctx: ctx, cancel: cancel}
	e.t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+e.net.addr()+path)); err != nil {
		e.t.Fatalf("%s: open: %v", name, err)
	}
	return tb
}

// close closes the tab, as a user closing it would.
func (tb *tab) close() {
	tb.cancel()
}

func eval[T any](tb *tab, expr string) T {
	tb.e.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.e.t.Fatalf("%s: %s: %v", tb.name, expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition from Go (not from page timers) until
// it is true, failing after timeout with what the page shows.
func (tb *tab) waitJS(cond string, timeout time.Duration) time.Duration {
	tb.e.t.Helper()
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
		cancel()
		if err == nil && ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			tb.e.t.Fatalf("%s: %s not true within %v (err %v); page:\n%s", tb.name, cond, timeout, err, tb.summary())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text returns the text of the element with the id.
func (tb *tab) text(id string) string {
	return eval[string](tb, fmt.Sprintf(`document.getElementById(%q).textContent`, id))
}

// waitText waits until the element's text contains want.
func (tb *tab) waitText(id, want string, timeout time.Duration) time.Duration {
	tb.e.t.Helper()
	return tb.waitJS(fmt.Sprintf(`document.getElementById(%q).textContent.includes(%q)`, id, want), timeout)
}

// summary is what the page shows and its event log, for failure messages.
func (tb *tab) summary() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`["hb-state","queue","stream","idle","released"].map(id => id + ": " + document.getElementById(id).textContent).join("\n") + "\n" + document.getElementById("log").textContent`))
	if err != nil {
		return "(page unavailable: " + err.Error() + ")"
	}
	return s
}

// logEntry is one line of the page's event log (window.demo.log).
type logEntry struct {
	T      int             `json:"t"`
	Type   string          `json:"type"`
	Detail json.RawMessage `json:"detail"`
}

func (tb *tab) log() []logEntry {
	return eval[[]logEntry](tb, `window.demo.log`)
}

// offline takes the network down (or up): the proxy stalls every
// connection to the demo server (see netCut), and CDP tells the tab it is
// offline (navigator.onLine, the offline/online events, new requests fail).
func (tb *tab) offline(off bool) {
	tb.e.t.Helper()
	tb.e.net.setDown(off)
	err := chromedp.Do(tb.ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
	if err != nil {
		tb.e.t.Fatalf("%s: network offline=%v: %v", tb.name, off, err)
	}
}

// screenshot writes a PNG of the tab.
func (tb *tab) screenshot(path string) {
	tb.e.t.Helper()
	b, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.e.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.e.t.Fatal(err)
	}
	tb.e.t.Logf("screenshot: %s (%d bytes)", path, len(b))
}

// concurrency is the user's concurrency as the reference server sees it.
func (e *env) concurrency(user string) (cartest.Concurrency, bool) {
	return e.app.CAR.User(user)
}

// waitCAR waits until the user's concurrency is in state (or, for
// StateIdle, until the user holds none).
func (e *env) waitCAR(user string, state cartest.State, timeout time.Duration) cartest.Concurrency {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, ok := e.concurrency(user)
		if (state == cartest.StateIdle && !ok) || (ok && c.State == state) {
			return c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("CAR: %s is %v (held %v), want %v within %v; events:\n%s", user, c, ok, state, timeout, e.events(user))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// events lists the reference server's events about user.
func (e *env) events(user string) string {
	var b strings.Builder
	for _, ev := range e.app.CAR.Events() {
		if ev.Subject == user || (ev.Kind == cartest.EventCall && strings.Contains(ev.Detail, user)) {
			b.WriteString(ev.String() + "\n")
		}
	}
	return b.String()
}

// countEvents counts the reference server's events of kind for user.
func (e *env) countEvents(user string, kind cartest.EventKind) int {
	n := 0
	for _, ev := range e.app.CAR.Events() {
		if ev.Subject == user && ev.Kind == kind {
			n++
		}
	}
	return n
}

// waitRelease waits for the manager's release of user and returns its
// reason and when it happened.
func (e *env) waitRelease(user string, timeout time.Duration) (string, time.Time) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, r := range e.app.Releases() {
			if r.UserId == user {
				return string(r.Reason), r.At
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("manager: %s not released within %v; CAR events:\n%s", user, timeout, e.events(user))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noRelease fails if the manager released user.
func (e *env) noRelease(user string) {
	e.t.Helper()
	for _, r := range e.app.Releases() {
		if r.UserId == user {
			e.t.Fatalf("manager released %s (%s), want it kept", user, r.Reason)
		}
	}
}

// within fails unless lo <= d <= hi.
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s after %v, want between %v and %v", what, d.Round(time.Millisecond), lo, hi)
	}
}

// userSnap is the manager's snapshot of user.
func userSnap(e *env, user string) car.UserSnapshot {
	for _, u := range e.app.Manager.Snapshot().Users {
		if u.UserId == user {
			return u
		}
	}
	return car.UserSnapshot{}
}

func chromedpReload(tb *tab) error {
	return chromedp.Do(tb.ctx, chromedp.Reload())
}
