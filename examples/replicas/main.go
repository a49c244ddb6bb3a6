// Command replicas runs three replicas of a CAR backend behind a
// round-robin proxy, sharing their sessions, leases and queue in Redis,
// and prints a timeline: a user starts on replica 1, replica 1 is killed
// (no Shutdown: its process is gone), the client resumes on replica 2 with
// the same concurrency, the user goes idle, and exactly one replica
// releases it.
//
// Everything is embedded: the CAR reference server and a Redis
// (miniredis). Give -redis ADDR to use a real Redis instead:
//
//	cd examples/replicas && go run .
//	cd examples/replicas && go run . -redis 127.0.0.1:6379
//
// It is a module of its own (its go.mod) because it depends on the Redis
// store, car/redisstore, which the SDK's main module does not.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/car/redisstore"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

const (
	project = "cap-replicas"
	user    = "alice"
	// idleThreshold × idleRelease is how long an idle user keeps its
	// concurrency: short, for the example.
	idleThreshold = time.Second
	idleRelease   = 2
)

func main() {
	addr := flag.String("redis", "", "a Redis address (host:port) to use instead of the embedded one")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(1)
	}
}

type timeline struct {
	start time.Time
	mu    sync.Mutex
}

func (t *timeline) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Printf("%+7.2fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

// cuttable is a replica's network to CAR, which its death cuts.
type cuttable struct {
	base http.RoundTripper
	dead atomic.Bool
}

func (c *cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.dead.Load() {
		return nil, errors.New("replica is dead")
	}
	return c.base.RoundTrip(r)
}

// listener remembers its connections, so that killing the replica cuts
// them as a dying process's sockets are.
type listener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *listener) cut() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// replica is one backend process: its Redis client and store, its
// SessionManager and its HTTP listener.
type replica struct {
	n     int
	rdb   *redis.Client
	store *redisstore.Store
	mgr   *car.SessionManager
	ln    *listener
	srv   *http.Server
	api   *cuttable
}

func startReplica(n int, tl *timeline, srv *cartest.Server, redisAddr, proj string, key []byte, released *atomic.Int32) (*replica, error) {
	r := &replica{n: n}
	r.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	st, err := redisstore.New(r.rdb, proj, redisstore.WithReplicaID(fmt.Sprintf("replica-%d", n)))
	if err != nil {
		return nil, err
	}
	r.store = st
	r.api = &cuttable{base: &http.Transport{}}
	client := srv.Client(car.WithHTTPClient(&http.Client{Transport: r.api}))
	r.mgr, err = car.NewSessionManager(client, project,
		car.WithStore(st), // leases, queue and heartbeat sessions in Redis
		car.WithHeartbeat(heartbeat.WithTokenKeys(key)),
		car.WithIdleThreshold(idleThreshold), car.WithIdleRelease(idleRelease),
		car.OnRelease(func(rel car.Release) {
			released.Add(1)
			tl.printf("replica %d: released %s (%s, lease %s); DestroySession called: %v", n, rel.UserId, rel.Reason, rel.HeartbeatSession, rel.Destroyed)
		}))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.ln = &listener{Listener: ln}
	mux := http.NewServeMux()
	mux.Handle("/heartbeat", r.mgr)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(r.ln)
	return r, nil
}

// kill ends the replica as a crash does: no Shutdown, no Drain; its
// sockets close, and it reaches neither Redis nor CAR again.
func (r *replica) kill() {
	r.api.dead.Store(true)
	_ = r.rdb.Close()
	r.ln.cut()
}

func run(redisAddr string) error {
	tl := &timeline{start: time.Now()}
	ctx := context.Background()

	proj := project
	if redisAddr == "" {
		m := miniredis.NewMiniRedis()
		m.ClockTTL(true) // TTLs run in real time, as in Redis
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return err
		}
		defer m.Close()
		redisAddr = m.Addr()
		tl.printf("redis: embedded (miniredis) at %s", redisAddr)
	} else {
		var b [4]byte
		_, _ = rand.Read(b[:])
		proj = project + "-" + hex.EncodeToString(b[:]) // a fresh key space in a shared Redis
		tl.printf("redis: %s, keys tcc:{%s}:*", redisAddr, proj)
	}
	srv, err := cartest.NewServer(
		cartest.WithProject(cartest.Project{ProjectId: project}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: 2, Projects: []string{project}}),
		cartest.WithCleanupDelay(200*time.Millisecond))
	if err != nil {
		return err
	}
	defer srv.Close()

	key := make([]byte, 32) // every replica verifies every token: one key ring
	_, _ = rand.Read(key)
	var released atomic.Int32
	var reps []*replica
	var addrs []string
	for n := 1; n <= 3; n++ {
		r, err := startReplica(n, tl, srv, redisAddr, proj, key, &released)
		if err != nil {
			return err
		}
		defer r.store.Close()
		reps = append(reps, r)
		addrs = append(addrs, r.ln.Addr().String())
	}
	p, err := newProxy(addrs, func(_ net.Conn, i int) { tl.printf("proxy: new connection → replica %d", i+1) })
	if err != nil {
		return err
	}
	defer p.Close()
	tl.printf("3 replicas (%s), round-robin proxy at %s, CAR reference server, project %s", strings.Join(addrs, ", "), p.Addr(), project)

	// 1. The user starts on replica 1 (the page's POST /play reached it).
	lease, err := reps[0].mgr.Start(ctx, car.StartRequest{UserId: user, UserIp: "203.0.113.7", ClientSession: "client-session-from-TCGSDK"})
	if err != nil {
		return err
	}
	first, _ := srv.User(user)
	tl.printf("replica 1: Start(%s): ApplyConcurrent + CreateSession → concurrency %s, heartbeat session %s", user, first.ConcurrencyId, lease.HeartbeatSession)

	notices := make(chan heartbeat.Notice, 16)
	connected := make(chan struct{}, 16)
	sess, err := hbclient.Connect(ctx, "ws://"+p.Addr()+"/heartbeat", lease.HeartbeatSession, lease.HeartbeatToken,
		hbclient.WithDialer(&websocket.Dialer{}),
		hbclient.WithReconnectDelay(func(int) time.Duration { return 200 * time.Millisecond }),
		hbclient.OnStateChange(func(from, to hbclient.State) {
			tl.printf("client: heartbeat %s → %s", from, to)
			if to == hbclient.StateConnected {
				connected <- struct{}{}
			}
		}),
		hbclient.OnNotice(func(n heartbeat.Notice) {
			if n.Kind == heartbeat.NoticeReleased {
				tl.printf("client: released notice (%s)", n.Reason)
			} else {
				tl.printf("client: %s notice", n.Kind)
			}
			notices <- n
		}))
	if err != nil {
		return err
	}
	defer sess.Close()
	time.Sleep(100 * time.Millisecond)
	tl.printf("replica 1 holds the connection: %v", connectedOn(reps[0], user))

	// 2. Replica 1 dies.
	tl.printf("--- replica 1 is killed: no Shutdown, its sockets close, it reaches neither Redis nor CAR")
	for len(connected) > 0 {
		<-connected
	}
	reps[0].kill()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		return errors.New("the client did not resume within 10 s")
	}
	time.Sleep(100 * time.Millisecond)
	now, _ := srv.User(user)
	same := now.ConcurrencyId == first.ConcurrencyId
	tl.printf("CAR: %s holds %s (%s) — the same concurrency: %v; replica 2 holds the connection: %v",
		user, now.ConcurrencyId, now.State, same, connectedOn(reps[1], user))
	if !same || !connectedOn(reps[1], user) {
		return fmt.Errorf("the client should have resumed on replica 2 with %s", first.ConcurrencyId)
	}

	// 3. The user goes idle: exactly one replica releases.
	tl.printf("--- %s goes idle (threshold %v, released after %d)", user, idleThreshold, idleRelease)
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case n := <-notices:
			if n.Kind == heartbeat.NoticeReleased {
				break wait
			}
		case <-deadline:
			return errors.New("no release within 30 s")
		}
	}
	time.Sleep(500 * time.Millisecond) // any second release would show by now
	destroys := 0
	for _, e := range srv.Events() {
		if e.Kind == cartest.EventCall && e.Action == "DestroySession" && e.Code == "" {
			destroys++
		}
	}
	_, held := srv.User(user)
	tl.printf("released by %d replica(s), DestroySession calls %d, CAR still holds %s: %v", released.Load(), destroys, user, held)
	if released.Load() != 1 || destroys != 1 {
		return fmt.Errorf("want exactly one release and one DestroySession, got %d and %d", released.Load(), destroys)
	}

	// The end: replica 3 drains (releases nothing), replica 2, the last,
	// shuts down; the dead replica's leftovers are stopped.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := reps[2].mgr.Drain(sctx); err != nil {
		return err
	}
	if err := reps[1].mgr.Shutdown(sctx); err != nil {
		return err
	}
	dead, stop := context.WithCancel(ctx)
	stop()
	_ = reps[0].mgr.Drain(dead)
	for _, r := range reps {
		r.srv.Close()
		_ = r.rdb.Close()
	}
	tl.printf("done")
	return nil
}

// connectedOn reports whether the replica holds the user's connection.
func connectedOn(r *replica, userID string) bool {
	for _, u := range r.mgr.Snapshot().Users {
		if u.UserId == userID && u.Connected {
			return true
		}
	}
	return false
}
