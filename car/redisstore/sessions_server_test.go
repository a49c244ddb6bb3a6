package redisstore

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
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore/internal/redistest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// Heartbeat Servers on redisstore, inside a synctest bubble: miniredis on
// net.Pipe (its TIME is the bubble's clock), connections on memnet.

var hbKey = bytes.Repeat([]byte{9}, heartbeat.MinTokenKeyLen)

type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// event is one callback of one replica.
type event struct {
	replica string
	kind    string
	ev      heartbeat.Event
}

type events struct {
	mu  sync.Mutex
	all []event
}

func (e *events) add(replica, kind string, ev heartbeat.Event) {
	e.mu.Lock()
	e.all = append(e.all, event{replica, kind, ev})
	e.mu.Unlock()
}

// of lists "replica:kind" for session id, in order.
func (e *events) of(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var parts []string
	for _, x := range e.all {
		if x.ev.SessionID == id {
			k := x.kind
			if x.kind == "idle" {
				k = fmt.Sprintf("idle(%d)", x.ev.Times)
			}
			parts = append(parts, x.replica+":"+k)
		}
	}
	return strings.Join(parts, " ")
}

func (e *events) count(id, kind string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.all {
		if x.ev.SessionID == id && x.kind == kind {
			n++
		}
	}
	return n
}

type replica struct {
	name   string
	srv    *heartbeat.Server
	st     *Store
	client *redis.Client
	l      *memnet.Listener
}

type hbCluster struct {
	t     *testing.T
	m     *miniredis.Miniredis
	ev    *events
	logs  *logSink
	reps  []*replica
	start time.Time
	down  atomic.Bool // Redis unreachable: dials fail
}

// setDown makes Redis unreachable (dials fail, open connections cut) or
// reachable again, with its data.
func (cl *hbCluster) setDown(down bool) {
	cl.down.Store(down)
	if down {
		cl.m.Close()
	}
}

// client is a go-redis client of the cluster's miniredis over net.Pipe
// whose dials fail while the cluster is down.
func (cl *hbCluster) client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:0", // never dialled: the Dialer below is
		Dialer: func(context.Context, string, string) (net.Conn, error) {
			if cl.down.Load() {
				return nil, errors.New("connection refused (test)")
			}
			return cl.m.Dial()
		},
		MaxRetries: -1,
	})
	cl.t.Cleanup(func() { _ = c.Close() })
	return c
}

func newHBCluster(t *testing.T, n int, opts ...heartbeat.ServerOption) *hbCluster {
	t.Helper()
	m, _ := redistest.Pipe(t)
	cl := &hbCluster{t: t, m: m, ev: &events{}, logs: &logSink{}, start: time.Now()}
	logger := slog.New(slog.NewTextHandler(cl.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for i := range n {
		name := fmt.Sprintf("r%d", i)
		c := cl.client()
		st := newReady(t, c, name, WithLogger(logger))
		on := func(kind string) func(heartbeat.Event) {
			return func(ev heartbeat.Event) { cl.ev.add(name, kind, ev) }
		}
		all := []heartbeat.ServerOption{
			heartbeat.WithStore(st.Sessions()), heartbeat.WithTokenKeys(hbKey), heartbeat.WithLogger(logger.With("replica", name)),
			heartbeat.OnConnect(on("connect")), heartbeat.OnResume(on("resume")), heartbeat.OnDisconnect(on("disconnect")),
			heartbeat.OnIdle(on("idle")), heartbeat.OnExpire(on("expire")),
		}
		srv, err := heartbeat.NewServer(append(all, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{name: name, srv: srv, st: st, client: c, l: memnet.Listen("hb-" + name)}
		hs := &http.Server{Handler: srv}
		go hs.Serve(r.l)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = srv.Shutdown(ctx)
			_ = hs.Close()
			_ = st.Close()
		})
		cl.reps = append(cl.reps, r)
	}
	return cl
}

func (cl *hbCluster) sleepUntil(d time.Duration) {
	cl.t.Helper()
	if now := time.Since(cl.start); now > d {
		cl.t.Fatalf("sleepUntil(%v): already at %v", d, now)
	}
	time.Sleep(d - time.Since(cl.start))
}

func (r *replica) open(t *testing.T, id string) string {
	t.Helper()
	tok, err := r.srv.Open(context.Background(), id)
	if err != nil {
		t.Fatalf("%s Open(%q): %v", r.name, id, err)
	}
	return tok
}

type wsFrame struct {
	Type     string          `json:"type"`
	Token    string          `json:"token"`
	Resumed  bool            `json:"resumed"`
	Times    int             `json:"times"`
	Position int             `json:"position"`
	Data     json.RawMessage `json:"data"`
}

// wsClient is a bare protocol client that answers pings.
type wsClient struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan wsFrame
	done   chan struct{}
	err    error
}

func (r *replica) hello(t *testing.T, id, token string) *wsClient {
	t.Helper()
	d := websocket.Dialer{NetDialContext: r.l.DialContext, Subprotocols: []string{heartbeat.Subprotocol}}
	ws, _, err := d.Dial("ws://hb/", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", r.name, err)
	}
	c := &wsClient{t: t, ws: ws, frames: make(chan wsFrame, 64), done: make(chan struct{})}
	t.Cleanup(func() { _ = ws.Close(); <-c.done })
	go func() {
		defer close(c.done)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				c.err = err
				return
			}
			var f wsFrame
			_ = json.Unmarshal(data, &f)
			select {
			case c.frames <- f:
			default:
			}
		}
	}()
	if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"hello","v":1,"session":%q,"token":%q}`, id, token)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *replica) join(t *testing.T, id, token string) (*wsClient, wsFrame) {
	t.Helper()
	c := r.hello(t, id, token)
	w := c.next()
	if w.Type != "welcome" {
		t.Fatalf("%s: first frame %+v, want welcome", r.name, w)
	}
	return c, w
}

func (c *wsClient) next() wsFrame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		c.t.Fatalf("connection ended (%v) while waiting for a frame", c.err)
	case <-time.After(time.Minute):
		c.t.Fatal("no frame within a minute")
	}
	return wsFrame{}
}

func (c *wsClient) closeCode() int {
	c.t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.done:
			var ce *websocket.CloseError
			if !errors.As(c.err, &ce) {
				c.t.Fatalf("ended with %v, want a close frame", c.err)
			}
			return ce.Code
		case <-time.After(time.Hour):
			c.t.Fatal("still open after an hour")
		}
	}
}

func (c *wsClient) open() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// A hello with a valid token is accepted on any replica and the token is
// consumed everywhere; the resume on another replica closes the first
// connection with 4004; a notice sent on one replica reaches the client on
// another, and one sent while it is away arrives after its next welcome.
func TestSessionsAnyReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 3)
		a, b, c := cl.reps[0], cl.reps[1], cl.reps[2]
		tok := a.open(t, "u1")
		cb, w := b.join(t, "u1", tok)
		for _, r := range cl.reps {
			if code := r.hello(t, "u1", tok).closeCode(); code != heartbeat.CloseUnauthorized {
				t.Fatalf("second use of the join token on %s: close %d, want %d", r.name, code, heartbeat.CloseUnauthorized)
			}
		}
		if err := a.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 4}); err != nil {
			t.Fatal(err)
		}
		if f := cb.next(); f.Type != "queue" || f.Position != 4 {
			t.Fatalf("notice on the other replica: %+v", f)
		}
		cc, w2 := c.join(t, "u1", w.Token)
		if !w2.Resumed {
			t.Fatal("resume not marked resumed")
		}
		if code := cb.closeCode(); code != heartbeat.CloseReplaced {
			t.Fatalf("the replaced connection closed with %d, want 4004", code)
		}
		synctest.Wait()
		if got := cl.ev.of("u1"); cl.ev.count("u1", "connect") != 1 || !strings.Contains(got, "r1:disconnect") || !strings.Contains(got, "r2:resume") || len(strings.Fields(got)) != 3 {
			t.Fatalf("callbacks %q, want r1:connect, r1:disconnect (replaced) and r2:resume", got)
		}
		// Away: the notice is kept in Redis and follows the client.
		_ = cc.ws.NetConn().Close()
		time.Sleep(time.Second)
		if err := b.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: []byte(`{"s":1}`)}); err != nil {
			t.Fatal(err)
		}
		ca, _ := a.join(t, "u1", w2.Token)
		if f := ca.next(); f.Type != "ready" || string(f.Data) != `{"s":1}` {
			t.Fatalf("first frame after the welcome %+v, want the kept ready notice", f)
		}
	})
}

// The idle count follows the user across replicas, and each threshold
// fires once in all.
func TestSessionsIdleFollowsTheUser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
		a, b := cl.reps[0], cl.reps[1]
		ca, w := a.join(t, "u1", a.open(t, "u1"))
		cl.sleepUntil(50 * time.Second)
		_ = ca.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"activity"}`))
		cl.sleepUntil(60 * time.Second)
		_ = ca.ws.NetConn().Close()
		cl.sleepUntil(80 * time.Second)
		cb, _ := b.join(t, "u1", w.Token)
		cl.sleepUntil(151 * time.Second)
		if got := cl.ev.count("u1", "idle"); got != 1 {
			t.Fatalf("idle callbacks at 151 s: %d (%s)", got, cl.ev.of("u1"))
		}
		if f := cb.next(); f.Type != "idle" || f.Times != 1 {
			t.Fatalf("frame %+v, want idle 1", f)
		}
		_ = cb.ws.NetConn().Close() // the next threshold is counted in Redis
		cl.sleepUntil(255 * time.Second)
		if got, want := cl.ev.of("u1"), "r0:connect r0:disconnect r1:resume r1:idle(1) r1:disconnect"; !strings.HasPrefix(got, want) || cl.ev.count("u1", "idle") != 2 {
			t.Fatalf("callbacks %q, want %q then one idle(2)", got, want)
		}
	})
}

// The idle count follows the user to a connection that replaced one still
// open on another replica, from the last activity that old connection saw,
// not from the one its replica last refreshed into Redis (up to
// StoreRefreshInterval older): the old replica hands it over when it drops
// the replaced connection.
func TestSessionsIdleFollowsAReplacedConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 2, heartbeat.WithIdleThreshold(100*time.Second), heartbeat.WithReconnectWindow(300*time.Second))
		a, b := cl.reps[0], cl.reps[1]
		ca, w := a.join(t, "u1", a.open(t, "u1"))
		cl.sleepUntil(40 * time.Second)
		_ = ca.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"activity"}`)) // refreshed at 42 s
		cl.sleepUntil(52*time.Second + 500*time.Millisecond)
		_ = ca.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"activity"}`)) // the next refresh is at 54 s
		cl.sleepUntil(53 * time.Second)
		cb, _ := b.join(t, "u1", w.Token)
		if code := ca.closeCode(); code != heartbeat.CloseReplaced {
			t.Fatalf("old connection closed with %d, want %d", code, heartbeat.CloseReplaced)
		}
		cl.sleepUntil(160 * time.Second)
		var at []time.Duration
		cl.ev.mu.Lock()
		for _, x := range cl.ev.all {
			if x.ev.SessionID == "u1" && x.kind == "idle" {
				at = append(at, x.ev.At.Sub(cl.start))
			}
		}
		cl.ev.mu.Unlock()
		if len(at) != 1 || at[0] != 152*time.Second+500*time.Millisecond {
			t.Fatalf("idle callbacks at %v, want one at 152.5s (100 s after the last activity the old connection saw); %s", at, cl.ev.of("u1"))
		}
		if f := cb.next(); f.Type != "idle" || f.Times != 1 {
			t.Fatalf("frame %+v, want idle 1", f)
		}
	})
}

// A replica that dies (its Redis connection and its clients gone, no
// Shutdown) leaves its sessions to the others: one replica reports each
// lost, and the grace set from its last refresh expires on exactly one.
func TestSessionsDeadReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 3)
		a := cl.reps[0]
		var clients []*wsClient
		for i := range 20 {
			id := fmt.Sprintf("u%d", i)
			c, _ := a.join(t, id, a.open(t, id))
			clients = append(clients, c)
		}
		cl.sleepUntil(20 * time.Second)
		_ = a.client.Close() // the process is gone: no refresh, no detach
		for _, c := range clients {
			_ = c.ws.NetConn().Close()
		}
		cl.sleepUntil(20*time.Second + heartbeat.DefaultReconnectWindow + heartbeat.StoreOwnerTTL + 5*time.Second)
		for i := range 20 {
			id := fmt.Sprintf("u%d", i)
			if cl.ev.count(id, "expire") != 1 {
				t.Fatalf("%s: %s, want exactly one expire", id, cl.ev.of(id))
			}
			// r0 still runs in this process, so it saw its clients go
			// (r0:disconnect); the lost report comes from one other.
			h := cl.ev.of(id)
			if strings.Contains(h, "r0:expire") || strings.Count(h, "r1:disconnect")+strings.Count(h, "r2:disconnect") != 1 {
				t.Fatalf("%s: %s", id, h)
			}
		}
		if n := cl.m.Exists(newKeys("proj").hbSession("u0")); n {
			t.Fatal("an expired session is still in Redis")
		}
	})
}

// Redis unreachable: connected clients stay connected, the Server's calls
// fail with a *heartbeat.StoreError.
func TestSessionsRedisUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 2)
		a, b := cl.reps[0], cl.reps[1]
		ca, _ := a.join(t, "u1", a.open(t, "u1"))
		cl.setDown(true)
		cl.sleepUntil(2 * time.Minute)
		if !ca.open() {
			t.Fatal("a connected client was closed while Redis was unreachable")
		}
		var se *heartbeat.StoreError
		if _, err := b.srv.Open(context.Background(), "u2"); !errors.As(err, &se) {
			t.Fatalf("Open with Redis down: %v, want a *heartbeat.StoreError", err)
		}
		if err := b.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue}); !errors.As(err, &se) {
			t.Fatalf("Send with Redis down: %v", err)
		}
		if err := a.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 2}); err != nil {
			t.Fatalf("Send to a client held here: %v", err)
		}
		if f := ca.next(); f.Type != "queue" {
			t.Fatalf("frame %+v", f)
		}
		if !strings.Contains(cl.logs.String(), "they stay connected") {
			t.Fatal("the failed refreshes were not logged")
		}
		// Back, with its data: the outage counted nobody as lost.
		cl.setDown(false)
		cl.sleepUntil(2*time.Minute + 10*time.Second)
		if got, want := cl.ev.of("u1"), "r0:connect"; got != want {
			t.Fatalf("callbacks after the outage %q, want %q\n%s", got, want, cl.logs.String())
		}
		b.join(t, "u2", b.open(t, "u2"))
	})
}

// Redis restarted empty: the next refresh detects it, logs at error level
// and rebuilds the sessions from the connections held; their resume
// tokens keep working on any replica.
func TestSessionsRedisRestartedEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 2)
		a, b := cl.reps[0], cl.reps[1]
		ca, w := a.join(t, "u1", a.open(t, "u1"))
		cl.sleepUntil(4 * time.Second) // one refresh: the data mark is known
		cl.m.FlushAll()
		cl.sleepUntil(8 * time.Second)
		logs := cl.logs.String()
		if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "lost") {
			t.Fatalf("no error log about the lost data:\n%s", logs)
		}
		if !cl.m.Exists(newKeys("proj").hbSession("u1")) {
			t.Fatal("the session was not rebuilt")
		}
		_ = ca.ws.NetConn().Close()
		cl.sleepUntil(9 * time.Second)
		if cb, _ := b.join(t, "u1", w.Token); !cb.open() {
			t.Fatal("resume after the rebuild failed")
		}
	})
}

// Drain closes with 1001 and ends nothing: the session resumes on another
// replica and never expires.
func TestSessionsDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newHBCluster(t, 2)
		a, b := cl.reps[0], cl.reps[1]
		ca, w := a.join(t, "u1", a.open(t, "u1"))
		synctest.Wait()
		if err := a.srv.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if code := ca.closeCode(); code != websocket.CloseGoingAway {
			t.Fatalf("drain closed with %d, want 1001", code)
		}
		time.Sleep(time.Second)
		b.join(t, "u1", w.Token)
		// Well past every grace (reload, reconnect, the owner's TTL), and
		// before the idle threshold, which at 5 min from the connect would
		// rightly fire.
		cl.sleepUntil(heartbeat.DefaultIdleThreshold - 30*time.Second)
		if got, want := cl.ev.of("u1"), "r0:connect r1:resume"; got != want {
			t.Fatalf("callbacks %q, want %q", got, want)
		}
	})
}
