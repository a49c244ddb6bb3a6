package hbclient_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/hbtest"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// The client's tests run inside testing/synctest bubbles against a real
// heartbeat.Server on an in-memory network (memnet): time is fake and
// exact, and the bubble fails the test if any goroutine is left behind.

const wsURL = hbtest.WSURL

// env is a heartbeat.Server on memnet (hbtest.Served: Elapsed,
// SleepUntil, Open, Dialer, Connect) with the server's callbacks recorded:
// what the client's behaviour looks like from the other end.
type env struct {
	*hbtest.Served
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
	e := &env{}
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
	e.Served = hbtest.Serve(t, opts...)
	e.start, e.l, e.srv = e.Start, e.L, e.Srv
	return e
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
	e.T.Helper()
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
	e.T.Fatalf("no %s callback #%d for %q; history: %s", kind, n, id, e.history(id))
	return 0
}

func wantHistory(t *testing.T, e *env, id, want string) {
	t.Helper()
	if got := e.history(id); got != want {
		t.Fatalf("callbacks of %q:\n got: %s\nwant: %s", id, got, want)
	}
}
