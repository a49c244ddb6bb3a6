package hbclient_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// The client's tests run inside testing/synctest bubbles against a real
// heartbeat.Server on an in-memory network (memnet): time is fake and
// exact, and the bubble fails the test if any goroutine is left behind.

const wsURL = "ws://hb/"

// env is a heartbeat.Server mounted on an http.Server over memnet, with the
// server's callbacks recorded: what the client's behaviour looks like from
// the other end.
type env struct {
	t     *testing.T
	start time.Time
	l     *memnet.Listener
	srv   *heartbeat.Server

	mu        sync.Mutex
	callbacks []callback
}

// callback is one server callback: its kind ("connect", "disconnect"…)
// and event.
type callback struct {
	kind string
	ev   heartbeat.Event
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, start: time.Now(), l: memnet.Listen("hb")}
	var opts []heartbeat.ServerOption
	for kind, on := range map[string]func(func(heartbeat.Event)) heartbeat.ServerOption{
		"connect": heartbeat.OnConnect, "idle": heartbeat.OnIdle, "disconnect": heartbeat.OnDisconnect,
		"resume": heartbeat.OnResume, "expire": heartbeat.OnExpire,
	} {
		opts = append(opts, on(func(ev heartbeat.Event) {
			e.mu.Lock()
			e.callbacks = append(e.callbacks, callback{kind, ev})
			e.mu.Unlock()
		}))
	}
	srv, err := heartbeat.NewServer(opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	e.srv = srv
	hs := &http.Server{Handler: srv}
	go hs.Serve(e.l)
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return e
}

// elapsed is the fake time since the env was created.
func (e *env) elapsed() time.Duration { return time.Since(e.start) }

// sleepUntil advances the fake clock to d after the env's start.
func (e *env) sleepUntil(d time.Duration) {
	e.t.Helper()
	if now := e.elapsed(); now > d {
		e.t.Fatalf("sleepUntil(%v): already at %v", d, now)
	}
	time.Sleep(d - e.elapsed())
}

// open opens session id on the server and returns its join token.
func (e *env) open(id string) string {
	e.t.Helper()
	token, err := e.srv.Open(id)
	if err != nil {
		e.t.Fatalf("Open(%q): %v", id, err)
	}
	return token
}

func (e *env) dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: e.l.DialContext, Subprotocols: []string{heartbeat.Subprotocol}}
}

// connect connects a client to the env; the test's cleanup closes it.
func (e *env) connect(id, token string, opts ...hbclient.Option) *hbclient.Client {
	e.t.Helper()
	opts = append([]hbclient.Option{hbclient.WithDialer(e.dialer())}, opts...)
	c, err := hbclient.Connect(context.Background(), wsURL, id, token, opts...)
	if err != nil {
		e.t.Fatalf("Connect(%q): %v", id, err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// history summarizes the server's callbacks for session id, e.g.
// "connect disconnect(connection lost) resume".
func (e *env) history(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var parts []string
	for _, c := range e.callbacks {
		switch {
		case c.ev.SessionID != id:
		case c.kind == "idle":
			parts = append(parts, fmt.Sprintf("idle(%d)", c.ev.Times))
		case c.kind == "disconnect":
			parts = append(parts, fmt.Sprintf("disconnect(%s)", c.ev.Reason))
		default:
			parts = append(parts, c.kind)
		}
	}
	return strings.Join(parts, " ")
}

// at returns when (since start) the server's n-th callback of kind for id
// came.
func (e *env) at(id, kind string, n int) time.Duration {
	e.t.Helper()
	e.mu.Lock()
	for _, c := range e.callbacks {
		if c.ev.SessionID == id && c.kind == kind {
			if n--; n == 0 {
				e.mu.Unlock()
				return c.ev.At.Sub(e.start)
			}
		}
	}
	e.mu.Unlock()
	e.t.Fatalf("no %s callback #%d for %q; history: %s", kind, n, id, e.history(id))
	return 0
}

func wantHistory(t *testing.T, e *env, id, want string) {
	t.Helper()
	if got := e.history(id); got != want {
		t.Fatalf("callbacks of %q:\n got: %s\nwant: %s", id, got, want)
	}
}
