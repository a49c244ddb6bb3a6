package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/internal/onepunderrace"
)

// The multi-replica churn test: 3 replicas (each its own SessionManager,
// heartbeat server and listener) share one store and one cartest. Users
// reconnect to a random replica, drop, idle, Stop and queue on a project
// smaller than the user count, while CAR faults are injected and replicas
// are killed without Shutdown (listener closed, connections cut, store and
// CAR unreachable, the manager dropped) and restarted. The harness runs on
// any shared store: the in-memory ones of the main module and the Redis
// store.
//
// The full size of issue 12 (1,000 users on 300 concurrencies), one run at
// a time, nothing else on the machine:
//
//	TCC_CHURN=full go test -race -count=1 -run 'TestChurnMiniredis$' -v -timeout 40m .
//	TCC_CHURN=full go test -race -count=1 -run 'TestChurnMemory$' -v -timeout 40m .
//	TCC_CHURN=full go test -count=1 -run 'TestChurnRedis$' -v -timeout 40m .   (real redis-server)
//
// The last full runs (3 December 2026, 09:15–09:32 UTC, main @ 4b59a60,
// seed 1, 2 cores), with 0 leaked concurrencies, 0 released twice, 0
// never released, 0 leases left behind, every user still playing active
// on exactly one replica, 0 admissions out of queue order, 0 ready notices
// beyond the Starts, 0 released notices twice, 0 queued users dropped,
// nothing held after the last Shutdown, and no idle count, expiry or
// connection end fired twice (but where heartbeat says "at least once"):
//   - miniredis, -race: passed; 2,020 leases, 1,585 queued and admitted
//     in order, 294 CAR faults, 49 kills and restarts, 89 still playing;
//     OnIdle 3,249 (12 again where the holder had not reported them: the
//     case heartbeat's Store.ReportIdle has closed since); 282 s.
//   - memory stores, -race: passed; 26 s.
//   - redis-server 7.0.15, real time: every count above held (2,021
//     leases, 398 admitted in order, 3 kills, Start failures
//     RequestLimitExceeded 422, store 40), but it failed two checks: 53
//     CAR faults for a minimum of 66 (the minimum now counts the
//     injector's turns), and one idle leg of 184 (user-0639#654) not
//     released as idle within its 11 s, released later by a Stop.
//
// The idle leg explained (3 December, afternoon, main after 63db493): the
// same leg failed in 2 of 3 more full runs on a real redis-server
// (user-0931#394, user-0803#1549). The debug log of the second shows it:
// the user's replica was killed 3.6 s after the user's last frame; the
// client's reconnect window (3 s here) counts from the last frame it
// received, and with the default 10 s pings that frame was older than the
// window, so the client gave up at once (expired) instead of resuming on
// a live replica; the session stayed owned by the dead replica until its
// owner lease ran out (10 s), and the user's next Start and Stop came
// first. The real-time timeline now pings every second (realTime). After
// it, 6 full runs on a real redis-server: every idle leg released as idle
// (188 of 188 in each run whose output was kept) and every leak, twice and
// order count 0; 4 passed, one failed the exercise minimum of the queue (0
// users queued: 418 Starts throttled by CAR's rate limit kept fewer than
// 300 users playing at once), one failed on a check whose output was not
// kept. On a three-node Cluster
// (TestChurnCluster, TCC_CHURN=full): passed, 1,992 leases, 784 admitted
// in order, 4 kills, 180 idle legs all released as idle, 113 s.

const churnProject = "cap-churn"

// faultKinds are the CAR faults the churn injects, in turn: 5xx,
// throttling, a connection dropped before the answer, a slow answer and an
// answer lost after CAR acted.
var faultKinds = [...]string{"HTTP 500", "HTTP 503", "throttled", "dropped connection", "slow answer", "lost answer"}

// churnSize returns the size of a churn run: with TCC_CHURN=full the run
// of issue 12 (1,000 users on 300 concurrencies; minutes, and several
// times longer under -race); otherwise the size CI runs by default (def,
// or race in a race build), a third of it with -short.
func churnSize(def, race [2]int) (users, concurrencies int) {
	switch {
	case os.Getenv("TCC_CHURN") == "full":
		return 1000, 300
	case onepunderrace.Enabled:
		users, concurrencies = race[0], race[1]
	default:
		users, concurrencies = def[0], def[1]
	}
	if testing.Short() {
		users, concurrencies = max(users/3, 30), max(concurrencies/3, 10)
	}
	return users, concurrencies
}

// backend makes the shared stores of the replicas.
type backend interface {
	// replica returns the stores of one replica process and a kill that
	// cuts this replica off them for good, as its process dying does.
	replica(t *testing.T, id string) (car.LeaseStore, heartbeat.Store, func())
	// observer returns a LeaseStore view for the test's own reads.
	observer(t *testing.T) car.LeaseStore
}

// errDead is what a killed replica's store calls fail with.
var errDead = errors.New("replica killed: connection refused")

// cuttable is a CAR transport that a kill cuts; it counts the calls that
// reach CAR.
type cuttable struct {
	base  *http.Transport
	dead  atomic.Bool
	calls *atomic.Int64
}

func (c *cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.dead.Load() {
		return nil, errDead
	}
	c.calls.Add(1)
	return c.base.RoundTrip(r)
}

// trackedListener is a replica's heartbeat listener that remembers its
// connections, so a kill can cut them.
type trackedListener struct {
	*memnet.Listener
	mu    sync.Mutex
	conns []net.Conn
	down  bool
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, c)
	return c, nil
}

func (l *trackedListener) cut() {
	l.mu.Lock()
	l.down = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.Close()
	}
}

// replica is one incarnation of a replica process.
type replica struct {
	slot, life int
	id         string
	mgr        *car.SessionManager
	ln         *trackedListener
	hs         *http.Server
	api        *cuttable
	client     *car.Client
	kill       func()
	up         atomic.Bool
	killed     atomic.Bool // its process is gone: set before the kill
}

// churnBook is what a run saw.
type churnBook struct {
	mu           sync.Mutex
	leases       map[string]bool // heartbeat sessions Start returned
	starts       map[string]int  // Starts that returned each lease (a reattach returns it again)
	released     map[string]int  // OnRelease by heartbeat session, over every replica
	releasedBy   map[string]string
	readies      map[string]int // "ready" notices by heartbeat session
	relNotices   map[string]int // "released" notices by heartbeat session
	tickets      map[string]uint64
	admitted     []string // heartbeat sessions in the order the store admitted them
	stayers      map[string]string
	queued       int
	startErrors  map[string]int
	queueDropped []string
	faults       int
	faultTicks   int                          // the fault injector's turns, each a fault unless CAR had few calls since the last
	faultsByKind map[string]int               // by faultKinds
	reason       map[string]car.ReleaseReason // the first OnRelease's, by heartbeat session
	idlers       map[string]bool              // leases that played the idle leg to its end
	usersPhase   time.Duration                // from the first arrival to the last user's end
	kills        int
	restarts     int
	stopsRetried int
	debugUsers   []string // whose logs a failed run prints (TCC_CHURN_DEBUG=1)
}

func (b *churnBook) startErr(user string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var e *car.APIError
	var se *car.StoreError
	key := "network"
	switch {
	case errors.As(err, &e):
		key = e.Code
	case errors.As(err, &se):
		key = "store"
	case errors.Is(err, context.DeadlineExceeded):
		key = "timeout"
	case errors.Is(err, car.ErrManagerClosed):
		key = "replica gone"
	}
	b.startErrors[key]++
	if key == car.CodeNoIdle {
		b.debugUsers = append(b.debugUsers, user)
	}
}

type cluster struct {
	t       *testing.T
	be      backend
	obs     car.LeaseStore
	car     *cartest.Server
	carNet  *memnet.Listener
	tokenK  []byte
	cfg     churnConfig
	book    *churnBook
	rngMu   sync.Mutex
	rng     *rand.Rand
	mu      sync.Mutex
	slots   []*replica
	zombies []*replica
	dbg     *debugLog
	cb      *callbackBook
	// carCalls counts the calls that reached CAR, over every replica.
	carCalls atomic.Int64
}

// drawDur returns a random duration in [0, d).
func (c *cluster) drawDur(d time.Duration) time.Duration {
	return time.Duration(c.draw(int(d/time.Millisecond)+1)) * time.Millisecond
}

func (c *cluster) draw(n int) int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.IntN(n)
}

// start brings up a new incarnation of a replica in slot i.
func (c *cluster) start(i int) *replica {
	c.mu.Lock()
	life := 1
	if old := c.slots[i]; old != nil {
		life = old.life + 1
	}
	c.mu.Unlock()
	r := &replica{slot: i, life: life, id: fmt.Sprintf("r%d-%d", i+1, life)}
	ls, hs, kill := c.be.replica(c.t, r.id)
	hs = &watchedSessions{Store: hs, cb: c.cb, id: r.id, killed: &r.killed}
	r.kill = kill
	r.api = &cuttable{base: &http.Transport{DialContext: c.carNet.DialContext}, calls: &c.carCalls}
	r.client = c.car.Client(car.WithHTTPClient(&http.Client{Transport: r.api}))
	opts := slices.Clone(c.cfg.managerOpts)
	hbOpts := append([]heartbeat.ServerOption{heartbeat.WithStore(hs), heartbeat.WithTokenKeys(c.tokenK)}, c.cfg.heartbeatOpts...)
	if c.dbg != nil {
		opts = append(opts, car.WithManagerLogger(c.dbg.logger(r.id)))
		hbOpts = append(hbOpts, heartbeat.WithLogger(c.dbg.logger(r.id)))
	}
	mgr, err := car.NewSessionManager(r.client, churnProject, append(opts,
		car.WithLeaseStore(ls),
		car.WithHeartbeat(hbOpts...),
		car.OnRelease(func(rel car.Release) {
			c.book.mu.Lock()
			c.book.released[rel.HeartbeatSession]++
			if _, ok := c.book.reason[rel.HeartbeatSession]; !ok {
				c.book.reason[rel.HeartbeatSession] = rel.Reason
			}
			c.book.releasedBy[rel.HeartbeatSession] += r.id + " "
			c.book.mu.Unlock()
		}))...)
	if err != nil {
		c.t.Fatal(err)
	}
	r.mgr = mgr
	r.ln = &trackedListener{Listener: memnet.Listen(r.id)}
	r.hs = &http.Server{Handler: mgr}
	go r.hs.Serve(r.ln)
	r.up.Store(true)
	if c.dbg != nil {
		c.dbg.logger(r.id).Info("test: up")
	}
	c.mu.Lock()
	c.slots[i] = r
	c.mu.Unlock()
	return r
}

// crash kills the replica in slot i without Shutdown: its process is gone.
func (c *cluster) crash(i int) {
	c.mu.Lock()
	r := c.slots[i]
	c.zombies = append(c.zombies, r)
	c.mu.Unlock()
	if c.dbg != nil {
		c.dbg.logger(r.id).Info("test: kill")
	}
	r.up.Store(false)
	r.killed.Store(true)
	r.api.dead.Store(true)
	r.kill()
	r.ln.cut()
	r.hs.Close()
}

// status says whether a replica id is up, killed or unknown.
func (c *cluster) status(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.slots {
		if r != nil && r.id == id {
			return "up"
		}
	}
	for _, r := range c.zombies {
		if r.id == id {
			return "killed"
		}
	}
	return "unknown"
}

// pick returns a random replica that is up (what a load balancer with
// health checks does), or nil.
func (c *cluster) pick() *replica {
	c.mu.Lock()
	var up []*replica
	for _, r := range c.slots {
		if r != nil && r.up.Load() {
			up = append(up, r)
		}
	}
	c.mu.Unlock()
	if len(up) == 0 {
		return nil
	}
	return up[c.draw(len(up))]
}

func (c *cluster) upCount() int {
	n := 0
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.slots {
		if r != nil && r.up.Load() {
			n++
		}
	}
	return n
}

// userNet is one user's network: every dial goes to a random live
// replica; it can be cut as when a laptop's Wi-Fi goes.
type userNet struct {
	c       *cluster
	hb      string // the heartbeat session, for the debug log
	mu      sync.Mutex
	offline bool
	conn    net.Conn
	to      string // the replica of the last dial
}

func (n *userNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offline {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("network is down")}
	}
	r := n.c.pick()
	if r == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("no replica up")}
	}
	conn, err := r.ln.DialContext(ctx, network, addr)
	n.conn, n.to = conn, r.id
	if n.c.dbg != nil {
		n.c.dbg.logger("client").Info("test: dial", "session", n.hb, "to", r.id, "error", err)
	}
	return conn, err
}

func (n *userNet) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.offline = true
	if n.conn != nil {
		n.conn.Close()
	}
}

func (n *userNet) restore() {
	n.mu.Lock()
	n.offline = false
	n.mu.Unlock()
}

type churnConfig struct {
	seed                 uint64
	users, concurrencies int
	arrivals             time.Duration // users arrive over this
	killEvery            time.Duration // mean time between replica kills
	downFor              time.Duration // a killed replica restarts after up to this
	faultEvery           time.Duration // mean time between CAR faults
	// The timeline: the managers' options, CAR's, and how long a user
	// stays active, how long a blip lasts, how long a vanished or idle
	// user's page waits before its next life.
	managerOpts                    []car.ManagerOption
	heartbeatOpts                  []heartbeat.ServerOption // each replica's, after the store and the token keys
	carWait, carCleanup            time.Duration
	active, blip, vanish, idle     time.Duration
	retry, settle, touch, stopWait time.Duration
	queueWait                      time.Duration
	realClock                      bool // realTime's timeline: timers run late under load
}

// fakeTime is the timeline at the SDK's defaults, for a run on the fake
// clock of a synctest bubble.
func fakeTime(cfg churnConfig) churnConfig {
	cfg.arrivals, cfg.killEvery, cfg.downFor, cfg.faultEvery = 2*time.Minute, 45*time.Second, 20*time.Second, 6*time.Second
	cfg.managerOpts = []car.ManagerOption{car.WithAPITimeout(25 * time.Second)}
	cfg.carWait, cfg.carCleanup = 2*time.Minute, 10*time.Second
	cfg.active, cfg.blip = 40*time.Second, 20*time.Second
	cfg.vanish = car.DefaultReconnectWait + 70*time.Second
	cfg.idle = car.DefaultIdleRelease*heartbeat.DefaultIdleThreshold + 70*time.Second
	cfg.retry, cfg.settle, cfg.touch, cfg.stopWait = 2*time.Second, 3*time.Minute, 40*time.Second, time.Minute
	cfg.queueWait = time.Hour
	return cfg
}

// runChurn runs one churn on be and checks the guarantees.
func runChurn(t *testing.T, be backend, cfg churnConfig) {
	c := &cluster{
		t: t, be: be, rng: rand.New(rand.NewPCG(cfg.seed, 12)),
		carNet: memnet.Listen("car"), tokenK: []byte("0123456789abcdef0123456789abcdef"),
		slots: make([]*replica, 3), cb: newCallbackBook(),
		book: &churnBook{
			leases: map[string]bool{}, starts: map[string]int{}, released: map[string]int{}, releasedBy: map[string]string{},
			readies: map[string]int{}, relNotices: map[string]int{}, tickets: map[string]uint64{},
			stayers: map[string]string{}, startErrors: map[string]int{}, faultsByKind: map[string]int{},
			reason: map[string]car.ReleaseReason{}, idlers: map[string]bool{},
		},
	}
	if debugOn() {
		c.dbg = &debugLog{}
		defer func() {
			if !t.Failed() {
				return
			}
			c.book.mu.Lock()
			var users []string
			for _, d := range c.book.queueDropped {
				users = append(users, d[:9])
			}
			users = append(users, c.book.debugUsers...)
			c.book.mu.Unlock()
			for _, u := range users {
				t.Logf("=== log of %s", u)
				for _, l := range c.dbg.grep(u) {
					t.Log(l)
				}
			}
		}()
	}
	c.car = cartest.Start(t,
		cartest.WithListener(c.carNet),
		cartest.WithProject(cartest.Project{ProjectId: churnProject, ReconnectWait: cfg.carWait}),
		cartest.WithPack(cartest.Pack{PackId: "pack", Size: cfg.concurrencies, Projects: []string{churnProject}}),
		cartest.WithCleanupDelay(cfg.carCleanup))
	c.cfg = cfg
	obs := be.observer(t)
	c.obs = obs
	stopWatch := obs.Watch(func(ev car.LeaseEvent) {
		if ev.Kind == car.LeaseEventAdmitted {
			c.book.mu.Lock()
			c.book.admitted = append(c.book.admitted, car.LeaseRecord{UserId: ev.UserId, Generation: ev.Generation}.SessionID())
			c.book.mu.Unlock()
		}
	})
	for i := range c.slots {
		c.start(i)
	}

	done := make(chan struct{})
	var bg sync.WaitGroup
	// CAR faults: 5xx, throttling, dropped connections, lost answers. A
	// real CAR fails a share of the calls it gets; cartest queues every
	// injected fault for the next calls of its action. Injected on a clock
	// alone, faults pile up when calls are few (the end of a run in real
	// time, when the last users wait in the queue: each failure sends the
	// head into a longer backoff, so it makes fewer calls than faults
	// arrive, and it is never admitted while the run goes on). So a fault
	// is injected only after faultCalls calls reached CAR since the last
	// one: at most a few in ten calls fail, however quiet the run.
	const faultCalls = 4
	bg.Go(func() {
		actions := []string{"ApplyConcurrent", "CreateSession", "DestroySession"}
		var lastCalls int64
		for {
			select {
			case <-done:
				return
			case <-time.After(cfg.faultEvery/2 + c.drawDur(cfg.faultEvery)):
			}
			c.book.mu.Lock()
			c.book.faultTicks++
			c.book.mu.Unlock()
			n := c.carCalls.Load()
			if n-lastCalls < faultCalls {
				continue
			}
			lastCalls = n
			// The kinds take turns, so that a run with n faults injected
			// has at least n/len(faultKinds) of each.
			c.book.mu.Lock()
			kind := faultKinds[c.book.faults%len(faultKinds)]
			c.book.mu.Unlock()
			var f cartest.Fault
			switch kind {
			case "HTTP 500":
				f = cartest.Fault{Code: car.CodeInternalError, Message: "HTTP 500", HTTPStatus: 500}
			case "HTTP 503":
				f = cartest.Fault{Code: "ServiceUnavailable", Message: "HTTP 503", HTTPStatus: 503}
			case "throttled":
				f = cartest.Fault{Code: car.CodeRequestLimitExceeded, Message: "throttled"}
			case "dropped connection":
				f = cartest.Fault{Drop: true}
			case "slow answer":
				f = cartest.Fault{Latency: time.Second + c.drawDur(cfg.faultEvery)}
			default: // "lost answer"
				f = cartest.Fault{DropAnswer: true}
			}
			f.Times = 1 + c.draw(2)
			action := actions[c.draw(len(actions))]
			if err := c.car.InjectFault(action, f); err != nil {
				t.Error(err)
				return
			}
			if c.dbg != nil {
				c.dbg.logger("car").Info("test: fault", "action", action, "fault", fmt.Sprintf("%+v", f))
			}
			c.book.mu.Lock()
			c.book.faults++
			c.book.faultsByKind[kind]++
			c.book.mu.Unlock()
		}
	})
	// Replica kills and restarts: never all three down at once.
	bg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(cfg.killEvery/2 + c.drawDur(cfg.killEvery)):
			}
			if c.upCount() < 2 {
				continue
			}
			slot := c.pick().slot
			c.crash(slot)
			c.book.mu.Lock()
			c.book.kills++
			c.book.mu.Unlock()
			select {
			case <-done:
			case <-time.After(cfg.downFor/4 + c.drawDur(cfg.downFor)):
			}
			c.start(slot)
			c.book.mu.Lock()
			c.book.restarts++
			c.book.mu.Unlock()
		}
	})

	var users sync.WaitGroup
	var stayClients sync.Map // user → *hbclient.Client
	for i := range cfg.users {
		id := fmt.Sprintf("user-%04d", i)
		arrive := c.drawDur(cfg.arrivals)
		steps := 1 + c.draw(3)
		kinds := make([]int, steps)
		for k := range kinds {
			kinds[k] = c.draw(10)
		}
		stay := c.draw(10) == 0 // a tenth are still playing at the end
		users.Go(func() {
			time.Sleep(arrive)
			for k, kind := range kinds {
				if cl := churnLife(c, id, kind, stay && k == len(kinds)-1); cl != nil {
					stayClients.Store(id, cl)
				}
			}
		})
	}
	began := time.Now()
	users.Wait()
	c.book.mu.Lock()
	c.book.usersPhase = time.Since(began)
	c.book.mu.Unlock()
	close(done)
	bg.Wait()
	// Every replica up again, then time for every grace, claim and sweep.
	for i, r := range c.slots {
		if !r.up.Load() {
			c.start(i)
		}
	}
	time.Sleep(cfg.settle)

	// Before the end: the users still playing are active, each connected
	// to exactly one replica, and CAR holds nothing else.
	b := c.book
	b.mu.Lock()
	stayers := maps(b.stayers)
	b.mu.Unlock()
	recs, err := obs.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]car.LeaseRecord{}
	for _, rec := range recs {
		live[rec.UserId] = rec
	}
	wrongStayers := 0
	for user, hb := range stayers {
		rec, ok := live[user]
		connectedOn := 0
		for _, r := range c.slots {
			for _, u := range r.mgr.Snapshot().Users {
				if u.UserId == user && u.Connected && u.HeartbeatSession == hb {
					connectedOn++
				}
			}
		}
		if !ok || rec.SessionID() != hb || rec.State != car.LeaseActive || connectedOn != 1 {
			wrongStayers++
			c.book.mu.Lock()
			c.book.debugUsers = append(c.book.debugUsers, user)
			relBy := c.book.releasedBy[hb]
			c.book.mu.Unlock()
			t.Errorf("still playing %s (%s): lease %+v (found %v), connected on %d replicas, want active on 1 (released by %q)", user, hb, rec, ok, connectedOn, relBy)
		}
	}
	leaked := 0
	for _, cc := range c.car.Concurrencies() {
		if cc.State == cartest.StateIdle || cc.State == cartest.StateCleanup {
			continue
		}
		if rec, ok := live[cc.UserId]; !ok || rec.State != car.LeaseActive {
			leaked++
			t.Errorf("leaked: %+v held in CAR with no live lease (%+v)", cc, rec)
		}
	}
	extra := 0
	for user, rec := range live {
		if _, ok := stayers[user]; !ok {
			extra++
			c.book.mu.Lock()
			c.book.debugUsers = append(c.book.debugUsers, user)
			c.book.mu.Unlock()
			t.Errorf("lease left behind for %s, who left: %s %s held by %s (%s) for %v more", user, rec.SessionID(), rec.State, rec.Holder, c.status(rec.Holder), rec.HoldLeft)
		}
	}

	// The end of the deploy: two replicas drain (their users move to the
	// last one), the last shuts down releasing everyone.
	for _, r := range c.slots[1:] {
		r.up.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		before := r.mgr.Snapshot()
		drained := make(chan error, 1)
		go func() { drained <- r.mgr.Drain(ctx) }()
		var err error
		select {
		case err = <-drained:
		case <-time.After(50 * time.Second):
			if c.dbg != nil {
				buf := make([]byte, 8<<20)
				buf = buf[:runtime.Stack(buf, true)]
				_ = os.WriteFile(os.TempDir()+"/churn-drain-hung.txt", buf, 0o644)
			}
			err = <-drained
		}
		if err != nil {
			t.Errorf("Drain %s: %v", r.id, err)
			t.Logf("before the drain: %d pending releases, %d users", before.PendingReleases, len(before.Users))
			for _, u := range before.Users {
				if u.State != car.LeaseActive {
					t.Logf("before the drain: %+v", u)
				}
			}
			if c.dbg != nil {
				buf := make([]byte, 8<<20)
				buf = buf[:runtime.Stack(buf, true)]
				_ = os.WriteFile(os.TempDir()+"/churn-drain-stacks.txt", buf, 0o644)
				t.Logf("goroutines written to %s/churn-drain-stacks.txt", os.TempDir())
			}
		}
		cancel()
		r.hs.Close()
	}
	time.Sleep(5 * cfg.retry) // the drained clients resume on the last replica
	last := c.slots[0]
	if err := last.mgr.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown %s: %v", last.id, err)
	}
	last.hs.Close()
	stayClients.Range(func(_, v any) bool { v.(*hbclient.Client).Close(); return true })
	for _, z := range c.zombies {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = z.mgr.Drain(ctx) // stops what the dropped manager still runs; it reaches nothing
	}
	stopWatch()
	time.Sleep(cfg.carCleanup + time.Second) // CAR's cleanup

	held := 0
	for _, cc := range c.car.Concurrencies() {
		if cc.State != cartest.StateIdle {
			held++
			t.Errorf("held after the last Shutdown: %+v", cc)
		}
	}
	callbacks := c.cb.check(t)
	b.mu.Lock()
	defer b.mu.Unlock()
	twice, missing, readyTwice, relNoticeTwice := 0, 0, 0, 0
	for hb, n := range b.released {
		if n > 1 {
			twice++
			t.Errorf("lease %s released %d times (by %s)", hb, n, b.releasedBy[hb])
		}
	}
	for hb := range b.leases {
		if b.released[hb] == 0 {
			missing++
			t.Errorf("lease %s never released", hb)
		}
		if b.readies[hb] > b.starts[hb] {
			readyTwice++
			t.Errorf("lease %s: %d ready notices for %d Starts", hb, b.readies[hb], b.starts[hb])
		}
		if b.relNotices[hb] > 1 {
			relNoticeTwice++
			t.Errorf("lease %s: %d released notices", hb, b.relNotices[hb])
		}
	}
	// Admission order is queue order: the admitted leases' tickets rise.
	inversions, ordered := 0, 0
	var prev uint64
	for _, hb := range b.admitted {
		tk, ok := b.tickets[hb]
		if !ok {
			continue
		}
		ordered++
		if tk < prev {
			inversions++
			t.Errorf("admission out of queue order: %s (ticket %d) after ticket %d", hb, tk, prev)
		}
		prev = tk
	}
	if len(b.queueDropped) > 0 {
		t.Errorf("queued users dropped by a transient error: %v", b.queueDropped)
	}
	reasons := map[car.ReleaseReason]int{}
	for _, r := range append(slices.Clone(c.slots), c.zombies...) {
		for k, v := range r.mgr.Snapshot().Released {
			reasons[k] += v
		}
	}
	// The idle leg: a user who went idle (no activity after the queue's
	// ready notice, or after a Start that was not queued) stayed so for
	// cfg.idle, longer than WithIdleRelease thresholds plus a margin, with
	// its client connected (reconnecting to a live replica when its own was
	// killed): its lease is released as idle, exactly once.
	idleBy := map[car.ReleaseReason]int{}
	for hb := range b.idlers {
		r, ok := b.reason[hb]
		if !ok {
			r = "never released"
		}
		idleBy[r]++
		if r != car.ReleaseIdle {
			t.Errorf("lease %s idled through the idle leg, released %q (by %s), want %q", hb, r, b.releasedBy[hb], car.ReleaseIdle)
			user, _, _ := strings.Cut(hb, "#")
			b.debugUsers = append(b.debugUsers, user)
		}
	}
	// What the run must have exercised. A replica is killed within
	// killMax of the last one's restart, so the users' phase holds at
	// least phase/killMax kills (half of it in real time, where timers run
	// late under load); faults take turns by kind; a project of a third of
	// the users or less queues at least a quarter of them (a tenth in real
	// time); a tenth of the
	// users' lives (1–3 each) are idle legs, a twentieth of the users at
	// least. (The runs of 2 December 2026: kills 24–27 for a minimum of
	// 8, faults 89–108 for 10, queued 198–210 for 37, idle 31–35 for 7 at
	// CI's race size; 154 faults for 66, 1,503 queued for 250, 190 idle
	// for 50 at the full size; 38, 70 and 14 for 6, 15 and 3 on a real
	// redis-server.)
	killMax := cfg.killEvery*3/2 + cfg.downFor*5/4
	minKills := max(1, int(b.usersPhase/killMax)/2)
	// A fault at each of the injector's turns (one per cfg.faultEvery on
	// average) that finds CAR busy: at least a quarter of them. (Half of
	// the users' phase over cfg.faultEvery failed at the full size in real
	// time: 62 faults for 66, where the long tail of the phase has few
	// CAR calls.)
	minFaults := max(len(faultKinds), min(cfg.users/15, b.faultTicks/4))
	// In real time a quarter is not always reached: how many users play
	// at once follows the machine's load (TestChurnCluster, seed 3, 30
	// users on 10 concurrencies: 5 queued in one CI run of 3 December
	// 2026, every other count 0), so a tenth there.
	minQueued := cfg.users / 4
	if cfg.realClock {
		minQueued = max(1, cfg.users/10)
	}
	minIdle := max(1, cfg.users/20)
	var short []string
	if b.kills < minKills {
		short = append(short, fmt.Sprintf("%d replica kills, want at least %d in %v", b.kills, minKills, b.usersPhase))
	}
	if b.restarts != b.kills {
		short = append(short, fmt.Sprintf("%d restarts for %d kills", b.restarts, b.kills))
	}
	if b.faults < minFaults {
		short = append(short, fmt.Sprintf("%d CAR faults injected, want at least %d", b.faults, minFaults))
	}
	for _, k := range faultKinds {
		if b.faultsByKind[k] == 0 {
			short = append(short, fmt.Sprintf("no CAR fault %q injected", k))
		}
	}
	if b.queued < minQueued {
		short = append(short, fmt.Sprintf("%d users queued, want at least %d", b.queued, minQueued))
	}
	if idleBy[car.ReleaseIdle] < minIdle {
		short = append(short, fmt.Sprintf("%d idle legs released as idle, want at least %d", idleBy[car.ReleaseIdle], minIdle))
	}
	if len(short) > 0 {
		t.Errorf("the run exercised too little: %s", strings.Join(short, "; "))
	}
	t.Logf("seed %d: %d users on %d concurrencies, 3 replicas; %d leases (%d queued, %d admitted through the queue), "+
		"%d CAR faults injected, %d replicas killed and %d restarted; "+
		"leaked concurrencies %d, released twice %d, never released %d, leases left behind %d, "+
		"users still playing %d (not active on exactly one replica: %d), admissions checked against queue order %d (out of order %d), "+
		"ready notices over Starts %d, released notices twice %d, queued users dropped %d, held after the last Shutdown %d; "+
		"Start failures %v; released by reason %v; "+
		"%s; idle legs played %d, released by reason %v; users' phase %v, faults by kind %v, minimums: kills %d, faults %d (of %d turns), queued %d, idle %d",
		cfg.seed, cfg.users, cfg.concurrencies, len(b.leases), b.queued, len(b.admitted),
		b.faults, b.kills, b.restarts,
		leaked, twice, missing, extra, len(stayers), wrongStayers, ordered, inversions,
		readyTwice, relNoticeTwice, len(b.queueDropped), held, b.startErrors, reasons,
		callbacks, len(b.idlers), idleBy, b.usersPhase.Round(time.Second), b.faultsByKind, minKills, minFaults, b.faultTicks, minQueued, minIdle)
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// churnLife plays one lease of a user: Start on a random replica (retried
// as a page would), wait in the queue if need be, then one way of leaving.
// With stay, the user is still playing at the end: its client is returned.
func churnLife(c *cluster, id string, kind int, stay bool) *hbclient.Client {
	t, b := c.t, c.book
	var lease *car.Lease
	for try := 0; ; try++ {
		r := c.pick()
		var err error
		if r == nil {
			err = car.ErrManagerClosed
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			lease, err = r.mgr.Start(ctx, car.StartRequest{UserId: id, UserIp: "10.1.2.3", ClientSession: "cs"})
			cancel()
		}
		if c.dbg != nil {
			if err == nil {
				c.dbg.logger(r.id).Info("test: Start", "session", lease.HeartbeatSession, "pos", lease.QueuePosition)
			} else if r != nil {
				c.dbg.logger(r.id).Info("test: Start failed", "user", id, "error", err)
			}
		}
		if err == nil {
			break
		}
		b.startErr(id, err)
		if try == 20 {
			t.Errorf("%s: Start failed 21 times, last: %v", id, err)
			return nil
		}
		time.Sleep(c.cfg.retry)
	}
	hb := lease.HeartbeatSession
	b.mu.Lock()
	b.leases[hb] = true
	b.starts[hb]++
	b.mu.Unlock()
	if lease.QueuePosition > 0 {
		rec, ok, err := c.obs.Get(context.Background(), id)
		b.mu.Lock()
		b.queued++
		if err == nil && ok && rec.SessionID() == hb && rec.Ticket > 0 {
			b.tickets[hb] = rec.Ticket
		}
		b.mu.Unlock()
	}

	ready := make(chan struct{}, 4)
	released := make(chan struct{}, 4)
	net := &userNet{c: c, hb: hb}
	var clientOpts []hbclient.Option
	if c.dbg != nil {
		clientOpts = append(clientOpts, hbclient.WithLogger(c.dbg.logger("client")),
			hbclient.OnStateChange(func(from, to hbclient.State) {
				c.dbg.logger("client").Info("test: client state", "session", hb, "from", from, "to", to)
			}))
	}
	sess, err := hbclient.Connect(context.Background(), "ws://heartbeat/", hb, lease.HeartbeatToken, append(clientOpts,
		hbclient.WithDialer(&websocket.Dialer{NetDialContext: net.dial}),
		hbclient.WithReconnectDelay(func(int) time.Duration { return c.cfg.retry }),
		hbclient.WithActivityInterval(c.cfg.touch/2),
		hbclient.OnNotice(func(n heartbeat.Notice) {
			if c.dbg != nil {
				c.dbg.logger("client").Info("test: notice", "session", hb, "kind", n.Kind, "pos", n.Position, "reason", n.Reason)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			switch n.Kind {
			case heartbeat.NoticeReady:
				// The manager admitted the user from the queue and
				// restarted the idle count (a Touch of its own): book it
				// as the user's activity, or an idle threshold fired while
				// the user waited looks fired again after the admission.
				c.cb.touched(hb)
				b.readies[hb]++
				ready <- struct{}{}
			case heartbeat.NoticeReleased:
				b.relNotices[hb]++
				released <- struct{}{}
			case heartbeat.NoticeIdle:
				net.mu.Lock()
				from := net.to
				net.mu.Unlock()
				c.cb.idleNotice(hb, n.Times, from)
			}
		}))...)
	if err != nil {
		return nil // released before the client connected
	}
	if lease.QueuePosition > 0 {
		select {
		case <-ready:
		case <-released:
			sess.Close()
			return nil
		case <-sess.Done():
			return nil
		case <-time.After(c.cfg.queueWait):
			rec, ok, err := c.obs.Get(context.Background(), id)
			pos, _ := c.obs.Positions(context.Background(), []string{id})
			b.mu.Lock()
			b.queueDropped = append(b.queueDropped, fmt.Sprintf("%s: no ready within %v (%s: found %v, %v, state %s, holder %q (%s), hold left %v, ticket %d, positions %v)",
				id, c.cfg.queueWait, hb, ok, err, rec.State, rec.Holder, c.status(rec.Holder), rec.HoldLeft, rec.Ticket, pos)+
				fmt.Sprintf(" released %d by %q", b.released[hb], b.releasedBy[hb]))
			b.mu.Unlock()
			sess.Close()
			return nil
		}
	}
	if stay {
		b.mu.Lock()
		b.stayers[id] = hb
		b.mu.Unlock()
		// Keeps playing: activity every 40 s until the end of the run.
		go func() {
			for {
				select {
				case <-sess.Done():
					return
				case <-time.After(c.cfg.touch):
					c.cb.touched(hb)
					sess.Touch()
				}
			}
		}()
		return sess
	}
	defer sess.Close()
	switch {
	case kind < 3: // active for a while, then quits
		for range 1 + kind {
			time.Sleep(c.cfg.active)
			c.cb.touched(hb)
			sess.Touch()
		}
		churnStop(c, id)
	case kind < 5: // a blip shorter than the reconnect wait, then quits
		net.cut()
		time.Sleep(c.cfg.blip)
		net.restore()
		time.Sleep(c.cfg.blip / 2)
		churnStop(c, id)
	case kind < 7: // vanishes
		net.cut()
		time.Sleep(c.cfg.vanish)
	case kind < 8: // idles out
		time.Sleep(c.cfg.idle)
		b.mu.Lock()
		b.idlers[hb] = true
		b.mu.Unlock()
	default:
		churnStop(c, id)
	}
	return nil
}

// churnStop is a user's Stop on a random replica, retried elsewhere if
// that replica dies under it; a release still pending when the page gives
// up waiting is the managers' to finish.
func churnStop(c *cluster, id string) {
	for try := 0; ; try++ {
		r := c.pick()
		if r == nil {
			time.Sleep(time.Second)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.stopWait)
		err := r.mgr.Stop(ctx, id)
		cancel()
		var pending *car.ReleasePendingError
		var se *car.StoreError
		switch {
		case err == nil, errors.As(err, &pending):
			return
		case (errors.As(err, &se) || errors.Is(err, car.ErrManagerClosed)) && try < 10:
			c.book.mu.Lock()
			c.book.stopsRetried++
			c.book.mu.Unlock()
			time.Sleep(time.Second)
		default:
			c.t.Errorf("%s: Stop on %s: %v", id, r.id, err)
			return
		}
	}
}
