// Package demo is what the session-manager examples share: an embedded CAR
// reference server, a SessionManager on it with its heartbeat endpoint, a
// browser-like heartbeat client whose network can be cut, and a timeline
// printer.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

// ProjectID is the example project.
const ProjectID = "cap-demo"

// Timeline prints lines stamped with the time since it started.
type Timeline struct {
	start time.Time
	mu    sync.Mutex
}

// NewTimeline starts a timeline now.
func NewTimeline() *Timeline { return &Timeline{start: time.Now()} }

// Printf prints one line of the timeline.
func (t *Timeline) Printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Printf("%+8.2fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

// Env is a running example environment.
type Env struct {
	CAR     *cartest.Server
	Manager *car.SessionManager
	hb      *httptest.Server
	client  *car.Client
}

// Start runs a CAR reference server with one concurrency (in real time,
// cleanup 200 ms) and a SessionManager with opts, its heartbeat on
// loopback.
func Start(tl *Timeline, opts ...car.ManagerOption) (*Env, error) {
	srv, err := cartest.NewServer(
		cartest.WithProject(cartest.Project{ProjectId: ProjectID}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: 1, Projects: []string{ProjectID}}),
		cartest.WithCleanupDelay(200*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	client := srv.Client()
	opts = append([]car.ManagerOption{car.OnRelease(func(r car.Release) {
		tl.Printf("manager: released %s (%s); DestroySession called: %v", r.UserId, r.Reason, r.Destroyed)
	})}, opts...)
	mgr, err := car.NewSessionManager(client, ProjectID, opts...)
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &Env{CAR: srv, Manager: mgr, hb: httptest.NewServer(mgr), client: client}, nil
}

// Close drains the manager and stops the servers.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.Manager.Shutdown(ctx)
	e.hb.Close()
	e.client.CloseIdleConnections()
	e.CAR.Close()
}

// Concurrency describes the user's concurrency as CAR sees it.
func (e *Env) Concurrency(userID string) string {
	if c, ok := e.CAR.User(userID); ok {
		return fmt.Sprintf("%s (%s)", c.ConcurrencyId, c.State)
	}
	for _, c := range e.CAR.Concurrencies() {
		return fmt.Sprintf("none; %s is %s", c.ConcurrencyId, c.State)
	}
	return "none"
}

// Browser is a user's client: its heartbeat and its CAR stream (what
// TCGSDK's connection is), over a network that can be cut.
type Browser struct {
	Session *hbclient.Client
	env     *Env
	tl      *Timeline
	lease   *car.Lease
	mu      sync.Mutex
	offline bool
	conn    net.Conn
	stream  *cartest.Stream
}

// Connect opens the heartbeat of a lease, reporting notices and state
// changes on the timeline. It retries every 250 ms during an outage.
func (e *Env) Connect(ctx context.Context, tl *Timeline, lease *car.Lease, opts ...hbclient.Option) (*Browser, error) {
	b := &Browser{env: e, tl: tl, lease: lease}
	dialer := &websocket.Dialer{NetDialContext: b.dial}
	url := "ws" + strings.TrimPrefix(e.hb.URL, "http")
	opts = append([]hbclient.Option{
		hbclient.WithDialer(dialer),
		hbclient.WithReconnectDelay(func(int) time.Duration { return 250 * time.Millisecond }),
		hbclient.OnStateChange(func(from, to hbclient.State) { tl.Printf("client: heartbeat %s → %s", from, to) }),
		hbclient.OnNotice(func(n heartbeat.Notice) {
			switch n.Kind {
			case heartbeat.NoticeIdle:
				tl.Printf("client: idle notice, times=%d", n.Times)
			case heartbeat.NoticeReleased:
				tl.Printf("client: released by the server: %s", n.Reason)
			default:
				tl.Printf("client: %s notice", n.Kind)
			}
		}),
	}, opts...)
	sess, err := hbclient.Connect(ctx, url, lease.HeartbeatSession, lease.HeartbeatToken, opts...)
	if err != nil {
		return nil, err
	}
	b.Session = sess
	if err := b.dialStream(ctx); err != nil {
		sess.Close()
		return nil, err
	}
	Settle()
	return b, nil
}

// dialStream opens the CAR stream with the lease's ServerSession, as
// TCGSDK.start and its reconnects do.
func (b *Browser) dialStream(ctx context.Context) error {
	if b.lease.ServerSession == "" {
		return nil
	}
	st, err := b.env.CAR.DialStream(ctx, b.lease.ServerSession)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.stream = st
	b.mu.Unlock()
	b.tl.Printf("client: CAR stream connected to %s", st.ConcurrencyId())
	return nil
}

// Settle lets callback lines reach the timeline before the next step.
func Settle() { time.Sleep(50 * time.Millisecond) }

func (b *Browser) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.offline {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("network is down")}
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	b.conn = c
	return c, err
}

// Cut takes the network down, breaking the heartbeat and the CAR stream.
func (b *Browser) Cut() {
	b.mu.Lock()
	b.offline = true
	if b.conn != nil {
		b.conn.Close()
	}
	st := b.stream
	b.mu.Unlock()
	if st != nil {
		st.Drop()
	}
	Settle()
}

// Restore brings the network back: the heartbeat's next retry gets
// through, and the CAR stream reconnects.
func (b *Browser) Restore(ctx context.Context) error {
	b.mu.Lock()
	b.offline = false
	b.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	return b.dialStream(ctx)
}

// Close closes the client.
func (b *Browser) Close() {
	b.Session.Close()
	b.mu.Lock()
	st := b.stream
	b.mu.Unlock()
	if st != nil {
		st.Close()
	}
}
