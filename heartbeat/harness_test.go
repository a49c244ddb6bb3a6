package heartbeat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// The tests run inside testing/synctest bubbles: time is fake and exact,
// connections are in-memory pipes (memnet), and the bubble fails the test if
// any goroutine is left behind.

const wsURL = hbtest.WSURL

// env is a heartbeat.Server mounted on an http.Server over memnet
// (hbtest.Served: Elapsed, SleepUntil, Open, Dialer, Connect), with a
// recorder of its callbacks.
type env struct {
	*hbtest.Served
	t     *testing.T
	start time.Time
	l     *memnet.Listener
	srv   *heartbeat.Server
	rec   *recorder
}

func newEnv(t *testing.T, opts ...heartbeat.ServerOption) *env {
	t.Helper()
	rec := &recorder{}
	s := hbtest.Serve(t, append(rec.options(), opts...)...)
	rec.srv = s.Srv
	return &env{Served: s, t: t, start: s.Start, l: s.L, srv: s.Srv, rec: rec}
}

// frame is any frame of the protocol, decoded loosely for assertions.
type frame struct {
	Type     string          `json:"type"`
	Session  string          `json:"session"`
	Token    string          `json:"token"`
	Resumed  bool            `json:"resumed"`
	Times    int             `json:"times"`
	Position int             `json:"position"`
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Reason   string          `json:"reason"`
}

// rawClient is a bare gorilla connection: a browser-like client that speaks
// the protocol by hand. Its reader goroutine answers pings (unless muted),
// queues frames and records the close.
type rawClient struct {
	t      *testing.T
	ws     *websocket.Conn
	muted  atomic.Bool
	frames chan frame
	done   chan struct{}
	err    error // read error, valid after done
}

// dialRaw upgrades a connection without sending anything.
func (e *env) dialRaw(header http.Header, subprotocols ...string) *rawClient {
	e.t.Helper()
	if subprotocols == nil {
		subprotocols = []string{heartbeat.Subprotocol}
	}
	d := websocket.Dialer{NetDialContext: e.l.DialContext, Subprotocols: subprotocols}
	ws, _, err := d.Dial(wsURL, header)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	c := &rawClient{t: e.t, ws: ws, frames: make(chan frame, 256), done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		if c.muted.Load() {
			return nil
		}
		ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		return nil // like gorilla's default: a failed pong shows up as a read error
	})
	e.t.Cleanup(func() {
		ws.Close()
		for {
			select {
			case <-c.frames:
			case <-c.done:
				return
			}
		}
	})
	go c.read()
	return c
}

// hello dials and sends a valid hello.
func (e *env) hello(id, token string) *rawClient {
	e.t.Helper()
	c := e.dialRaw(nil)
	c.send(fmt.Sprintf(`{"type":"hello","v":1,"session":%q,"token":%q}`, id, token))
	return c
}

// join dials, says hello and expects the welcome.
func (e *env) join(id, token string) (*rawClient, frame) {
	e.t.Helper()
	c := e.hello(id, token)
	w := c.next()
	if w.Type != "welcome" || w.Session != id || w.Token == "" {
		e.t.Fatalf("first frame = %+v, want a welcome for %q", w, id)
	}
	return c, w
}

func (c *rawClient) read() {
	defer close(c.done)
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		var f frame
		if mt != websocket.TextMessage || json.Unmarshal(data, &f) != nil {
			f = frame{Type: "unparsable"}
		}
		c.frames <- f
	}
}

// mute stops answering pings: the client still reads, but stays silent.
func (c *rawClient) mute() { c.muted.Store(true) }

// sendMayFail sends without checking: the server may cut the connection
// while a large frame is still being written.
func (c *rawClient) sendMayFail(text string) {
	c.ws.WriteMessage(websocket.TextMessage, []byte(text))
}

func (c *rawClient) send(text string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame, failing if none comes within a minute of fake
// time.
func (c *rawClient) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		c.t.Fatalf("connection ended (%v) while waiting for a frame", c.err)
	case <-time.After(time.Minute):
		c.t.Fatalf("no frame within a minute")
	}
	return frame{}
}

// closed waits for the server to close the connection and returns the close
// code and reason.
func (c *rawClient) closed() (int, string) {
	c.t.Helper()
	for {
		select {
		case <-c.frames:
		case <-c.done:
			var ce *websocket.CloseError
			if !errors.As(c.err, &ce) {
				c.t.Fatalf("connection ended with %v, want a close frame", c.err)
			}
			return ce.Code, ce.Text
		case <-time.After(time.Hour):
			c.t.Fatalf("connection still open after an hour")
		}
	}
}

// isOpen reports whether the connection has not ended yet.
func (c *rawClient) isOpen() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// drop cuts the network connection without a close frame.
func (c *rawClient) drop() { c.ws.NetConn().Close() }

// recorder records the Server's callbacks. Each callback also calls back into
// the Server, which would deadlock if a callback ran under the Server's lock.
type recorder struct {
	srv    *heartbeat.Server
	mu     sync.Mutex
	events []record
}

type record struct {
	kind string
	ev   heartbeat.Event
}

func (r record) String() string {
	switch r.kind {
	case "idle":
		return fmt.Sprintf("idle(%d)", r.ev.Times)
	case "disconnect":
		return fmt.Sprintf("disconnect(%s)", r.ev.Reason)
	}
	return r.kind
}

func (r *recorder) options() []heartbeat.ServerOption {
	on := func(kind string) func(heartbeat.Event) {
		return func(ev heartbeat.Event) { r.add(kind, ev) }
	}
	return []heartbeat.ServerOption{
		heartbeat.OnConnect(on("connect")),
		heartbeat.OnIdle(on("idle")),
		heartbeat.OnDisconnect(on("disconnect")),
		heartbeat.OnResume(on("resume")),
		heartbeat.OnExpire(on("expire")),
	}
}

func (r *recorder) add(kind string, ev heartbeat.Event) {
	r.srv.Session(ev.SessionID)
	r.srv.Len()
	r.mu.Lock()
	r.events = append(r.events, record{kind, ev})
	r.mu.Unlock()
}

// of returns the records of session id.
func (r *recorder) of(id string) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []record
	for _, rec := range r.events {
		if rec.ev.SessionID == id {
			out = append(out, rec)
		}
	}
	return out
}

// history summarizes the callbacks of session id, e.g.
// "connect idle(1) disconnect(ping timeout) expire".
func (r *recorder) history(id string) string {
	var parts []string
	for _, rec := range r.of(id) {
		parts = append(parts, rec.String())
	}
	return strings.Join(parts, " ")
}

// at returns when (since start) the n-th record of kind for id happened.
func (e *env) at(id, kind string, n int) time.Duration {
	e.t.Helper()
	for _, rec := range e.rec.of(id) {
		if rec.kind == kind {
			if n--; n == 0 {
				return rec.ev.At.Sub(e.start)
			}
		}
	}
	e.t.Fatalf("no %s callback #%d for %q; history: %s", kind, n, id, e.rec.history(id))
	return 0
}

func wantHistory(t *testing.T, e *env, id, want string) {
	t.Helper()
	if got := e.rec.history(id); got != want {
		t.Fatalf("callbacks of %q:\n got: %s\nwant: %s", id, got, want)
	}
}
