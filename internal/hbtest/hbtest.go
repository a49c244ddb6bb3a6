// Package hbtest holds the test doubles that the tests of package heartbeat
// (the server) and of heartbeat/hbclient (the Go client) share: a dialer
// whose network can be cut, a recorder of a client's state changes, and a
// fake server that welcomes every hello and records what it gets. It is
// for tests only.
package hbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

// SwitchDialer dials L unless switched off; it keeps the client side of
// the current connection so a test can cut it.
type SwitchDialer struct {
	L *memnet.Listener

	mu   sync.Mutex
	off  bool
	last net.Conn
}

// Dialer returns a websocket dialer that dials through d.
func (d *SwitchDialer) Dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: d.dial}
}

func (d *SwitchDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return nil, errors.New("network unreachable (test)")
	}
	c, err := d.L.DialContext(ctx, network, addr)
	d.last = c
	return c, err
}

// SetOff switches the network off (every dial fails) or on again.
func (d *SwitchDialer) SetOff(off bool) {
	d.mu.Lock()
	d.off = off
	d.mu.Unlock()
}

// Cut closes the current connection abruptly, as a network failure would.
func (d *SwitchDialer) Cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last != nil {
		d.last.Close()
	}
}

// StateRecorder records a client's state changes.
type StateRecorder struct {
	mu      sync.Mutex
	changes []string
}

// Option is the client option that records into r.
func (r *StateRecorder) Option() hbclient.Option {
	return hbclient.OnStateChange(func(from, to hbclient.State) {
		r.mu.Lock()
		r.changes = append(r.changes, from.String()+"→"+to.String())
		r.mu.Unlock()
	})
}

// String lists the changes, e.g. "connecting→connected connected→closed".
func (r *StateRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.changes, " ")
}

// FakeServer speaks just enough of protocol v1 to watch a client: it
// welcomes every hello, records the frames it gets, and never pings.
type FakeServer struct {
	L *memnet.Listener

	start time.Time
	mu    sync.Mutex
	log   []string // "type@elapsed"
}

// NewFakeServer starts a FakeServer on a memnet listener named "fake"
// (dial ws://fake/); the test's cleanup stops it.
func NewFakeServer(t *testing.T) *FakeServer {
	fs := &FakeServer{start: time.Now(), L: memnet.Listen("fake")}
	up := websocket.Upgrader{Subprotocols: []string{heartbeat.Subprotocol}}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				fs.record("gone")
				return
			}
			var f struct {
				Type string `json:"type"`
			}
			json.Unmarshal(data, &f)
			fs.record(f.Type)
			if f.Type == "hello" {
				ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome","v":1,"session":"u1","token":"resume","pingInterval":25000,"pingTimeout":60000,"grace":90000}`))
			}
		}
	})}
	go hs.Serve(fs.L)
	t.Cleanup(func() { hs.Close() })
	return fs
}

func (fs *FakeServer) record(typ string) {
	fs.mu.Lock()
	fs.log = append(fs.log, fmt.Sprintf("%s@%v", typ, time.Since(fs.start)))
	fs.mu.Unlock()
}

// String lists the frames received, e.g. "hello@0s activity@5s gone@1m0s".
func (fs *FakeServer) String() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return strings.Join(fs.log, " ")
}

// Connect connects a client for session "u1"; the test's cleanup closes it.
func (fs *FakeServer) Connect(t *testing.T, opts ...hbclient.Option) *hbclient.Client {
	t.Helper()
	opts = append([]hbclient.Option{hbclient.WithDialer(&websocket.Dialer{NetDialContext: fs.L.DialContext})}, opts...)
	s, err := hbclient.Connect(context.Background(), "ws://fake/", "u1", "join-token", opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// WSURL is the URL a client dials to reach a [Served] server.
const WSURL = "ws://hb/"

// Served is a heartbeat.Server mounted on an http.Server over a memnet
// listener named "hb" (dial [WSURL]), for a test inside a synctest bubble.
type Served struct {
	T     *testing.T
	Start time.Time // when it was made: the origin of Elapsed
	L     *memnet.Listener
	Srv   *heartbeat.Server
}

// Serve makes a Server with opts and serves it; the test's cleanup shuts
// it down, failing the test if Shutdown fails.
func Serve(t *testing.T, opts ...heartbeat.ServerOption) *Served {
	t.Helper()
	srv, err := heartbeat.NewServer(opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	s := &Served{T: t, Start: time.Now(), L: memnet.Listen("hb"), Srv: srv}
	hs := &http.Server{Handler: srv}
	go hs.Serve(s.L)
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return s
}

// Elapsed is the fake time since s was made.
func (s *Served) Elapsed() time.Duration { return time.Since(s.Start) }

// SleepUntil advances the fake clock to d after s was made.
func (s *Served) SleepUntil(d time.Duration) {
	s.T.Helper()
	if now := s.Elapsed(); now > d {
		s.T.Fatalf("SleepUntil(%v): already at %v", d, now)
	}
	time.Sleep(d - s.Elapsed())
}

// Open opens session id and returns its join token.
func (s *Served) Open(id string) string {
	s.T.Helper()
	token, err := s.Srv.Open(s.T.Context(), id)
	if err != nil {
		s.T.Fatalf("Open(%q): %v", id, err)
	}
	return token
}

// Dialer dials the server's listener, offering the protocol's subprotocol.
func (s *Served) Dialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: s.L.DialContext, Subprotocols: []string{heartbeat.Subprotocol}}
}

// Connect connects a Go client to the server; the test's cleanup closes
// it.
func (s *Served) Connect(id, token string, opts ...hbclient.Option) *hbclient.Client {
	s.T.Helper()
	opts = append([]hbclient.Option{hbclient.WithDialer(s.Dialer())}, opts...)
	c, err := hbclient.Connect(context.Background(), WSURL, id, token, opts...)
	if err != nil {
		s.T.Fatalf("Connect(%q): %v", id, err)
	}
	s.T.Cleanup(func() { c.Close() })
	return c
}
