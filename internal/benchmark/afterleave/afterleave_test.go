package afterleave

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

var (
	jsonOut = flag.String("json", "", "write the results to this file as JSON (schema afterleave/v1)")
	users   = flag.Int("users", 200, "users per case")
	seed    = flag.Uint64("seed", 1, "seed of the users' jittered timings")
)

// How a user leaves.
type leaving int

const (
	silentVanish leaving = iota
	tcpCut
	cleanClose
	reload
)

var cases = []struct {
	key, name string
	how       leaving
}{
	{"silent", "silent vanish", silentVanish},
	{"cut", "TCP cut", tcpCut},
	{"clean", "clean close", cleanClose},
	{"reload", "reload within the grace", reload},
}

// The users' timings.
const (
	startSpread   = 30 * time.Second  // users start within this
	minStay       = 60 * time.Second  // and leave after this
	maxStay       = 300 * time.Second // at most
	minActivity   = 10 * time.Second  // an active user's input comes every
	maxActivity   = 40 * time.Second  // 10–40 s
	minReload     = 1 * time.Second   // a reload takes 1–5 s
	maxReload     = 5 * time.Second   //
	checkResume   = 150 * time.Second // after coming back, when a resume is checked
	settleAfter   = 400 * time.Second // after the last leave, when the run ends
	carHeldAlone  = cartest.DefaultReconnectWait + cartest.DefaultCleanupDelay
	heartbeatPath = "ws://heartbeat/"
)

// Results, as written to -json.
type results struct {
	Schema string `json:"schema"`
	Users  int    `json:"users"`
	Seed   uint64 `json:"seed"`
	// Welcome is the timings the heartbeat server announced at its
	// defaults (its welcome frame, in ms); CAR the reference server's.
	Welcome map[string]float64 `json:"heartbeat_welcome_ms"`
	CAR     struct {
		ReconnectWaitS float64 `json:"reconnect_wait_s"`
		CleanupS       float64 `json:"cleanup_s"`
	} `json:"car"`
	Cases []caseResult `json:"cases"`
	// Failed reports that an assertion of the test failed.
	Failed bool `json:"test_failed"`
}

type caseResult struct {
	Key   string      `json:"key"`
	Name  string      `json:"name"`
	SDK   worldResult `json:"sdk"`
	Alone worldResult `json:"car_alone"`
}

type worldResult struct {
	Users int `json:"users"`
	// Held: seconds from leaving to the concurrency idle in CAR (users who
	// left for good).
	Held *dist `json:"held_s,omitempty"`
	// Destroy: seconds from leaving to the manager's release (sdk world).
	Destroy *dist `json:"destroy_s,omitempty"`
	// Resumed: users who came back and kept the same concurrency (reload).
	Resumed *int `json:"resumed,omitempty"`
	// Releases by reason (sdk world).
	Releases map[string]int `json:"releases,omitempty"`
}

type dist struct {
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
	N       int     `json:"n"`
	Missing int     `json:"missing"` // users with no such event
}

func summarize(v []float64, missing int) *dist {
	if len(v) == 0 {
		return &dist{Missing: missing}
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	rank := func(p float64) float64 { // nearest rank
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return &dist{P50: rank(0.5), P99: rank(0.99), Max: s[len(s)-1], Mean: sum / float64(len(s)), N: len(s), Missing: missing}
}

func TestAfterLeave(t *testing.T) {
	if *users < 1 {
		t.Fatalf("-users %d: must be at least 1", *users)
	}
	res := results{Schema: "afterleave/v1", Users: *users, Seed: *seed}
	res.CAR.ReconnectWaitS = cartest.DefaultReconnectWait.Seconds()
	res.CAR.CleanupS = cartest.DefaultCleanupDelay.Seconds()
	for i, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			var cr caseResult
			synctest.Test(t, func(t *testing.T) {
				r := newRun(t, c.how, *users, *seed+uint64(i))
				r.play()
				cr = r.measure()
				if res.Welcome == nil {
					res.Welcome = r.welcome
				}
			})
			cr.Key, cr.Name = c.key, c.name
			res.Cases = append(res.Cases, cr)
			logCase(t, cr)
		})
	}
	// The figures are written even when an assertion failed: they say by
	// how much.
	res.Failed = t.Failed()
	if *jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func logCase(t *testing.T, c caseResult) {
	for _, w := range []struct {
		name string
		r    worldResult
	}{{"sdk", c.SDK}, {"car alone", c.Alone}} {
		switch {
		case w.r.Resumed != nil:
			t.Logf("%-24s %-9s resumed %d of %d", c.Name, w.name, *w.r.Resumed, w.r.Users)
		case w.r.Held != nil:
			t.Logf("%-24s %-9s held p50 %6.1f s  p99 %6.1f s  max %6.1f s  mean %6.1f s", c.Name, w.name, w.r.Held.P50, w.r.Held.P99, w.r.Held.Max, w.r.Held.Mean)
		}
		if w.r.Destroy != nil && w.r.Destroy.N > 0 {
			t.Logf("%-24s %-9s DestroySession p50 %6.1f s  p99 %6.1f s", c.Name, w.name, w.r.Destroy.P50, w.r.Destroy.P99)
		}
	}
}

// run is one case: two worlds, the same users.
type run struct {
	t     *testing.T
	how   leaving
	rng   *rand.Rand
	users []*user

	sdkCAR   *cartest.Server
	mgr      *car.SessionManager
	hbNet    *memnet.Listener
	aloneCAR *cartest.Server
	alone    *car.Client

	mu       sync.Mutex
	releases map[string][]car.Release // by UserId
	welcome  map[string]float64
}

// user is one user in both worlds.
type user struct {
	id                   string
	startAt, leaveAt     time.Duration // from the run's start
	backAt               time.Duration // reload: when the page is back
	touches              []time.Duration
	left, back           time.Time
	lease                *car.Lease
	hb                   *hbclient.Client
	net                  *clientNet
	sdkStream            *cartest.Stream
	aloneSession         string
	aloneStream          *cartest.Stream
	sdkConc, aloneConc   string // the concurrency held before leaving
	sdkResumed, aloneRes bool
	lastFrame            time.Time // reload: the page's last frame before it closed
	resumeErr            error     // reload: why the heartbeat resume failed
}

func newRun(t *testing.T, how leaving, n int, seed uint64) *run {
	r := &run{t: t, how: how, rng: rand.New(rand.NewPCG(seed, 0x5eed)), releases: map[string][]car.Release{}}
	pack := cartest.Pack{PackId: "pack", Size: n, Projects: []string{cartest.DefaultProjectId}}
	// The sdk world: a reference server at its defaults, and a manager at
	// its defaults serving its heartbeat on an in-memory network.
	r.sdkCAR = cartest.Start(t, cartest.WithListener(memnet.Listen("car-sdk")), cartest.WithPack(pack))
	client := r.sdkCAR.Client()
	mgr, err := car.NewSessionManager(client, cartest.DefaultProjectId, car.OnRelease(func(rel car.Release) {
		r.mu.Lock()
		r.releases[rel.UserId] = append(r.releases[rel.UserId], rel)
		r.mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	r.mgr = mgr
	r.hbNet = memnet.Listen("heartbeat")
	hs := &http.Server{Handler: mgr}
	go hs.Serve(r.hbNet)
	// The car-alone world: the same reference server, and a backend that
	// only calls ApplyConcurrent and CreateSession.
	r.aloneCAR = cartest.Start(t, cartest.WithListener(memnet.Listen("car-alone")), cartest.WithPack(pack))
	r.alone = r.aloneCAR.Client()
	t.Cleanup(func() {
		for _, u := range r.users {
			if u.hb != nil {
				u.hb.Close()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := mgr.Shutdown(ctx); err != nil && !errors.Is(err, car.ErrManagerClosed) {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
		client.CloseIdleConnections()
		r.alone.CloseIdleConnections()
	})

	span := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.rng.Int64N(int64(hi-lo)+1)) }
	for i := range n {
		u := &user{id: fmt.Sprintf("user-%03d", i)}
		u.startAt = span(0, startSpread)
		u.leaveAt = u.startAt + span(minStay, maxStay)
		for at := u.startAt + span(minActivity, maxActivity); at < u.leaveAt; at += span(minActivity, maxActivity) {
			u.touches = append(u.touches, at)
		}
		if how == reload {
			u.backAt = u.leaveAt + span(minReload, maxReload)
			// Back, the user is active again until the check.
			for at := u.backAt + span(minActivity, maxActivity); at < u.backAt+checkResume; at += span(minActivity, maxActivity) {
				u.touches = append(u.touches, at)
			}
		}
		r.users = append(r.users, u)
	}
	return r
}

// step is something one user does at one instant.
type step struct {
	at   time.Duration
	u    *user
	what func(*user)
}

// play runs the users' steps in time order, each at its instant, once
// every goroutine of the bubble is idle (so no write is in progress on a
// connection a step breaks).
func (r *run) play() {
	var steps []step
	for _, u := range r.users {
		steps = append(steps, step{u.startAt, u, r.start}, step{u.leaveAt, u, r.leave})
		for _, at := range u.touches {
			steps = append(steps, step{at, u, func(u *user) { u.hb.Touch() }})
		}
		if r.how == reload {
			steps = append(steps, step{u.backAt, u, r.comeBack}, step{u.backAt + checkResume, u, r.checkResumed})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	origin := time.Now()
	for _, s := range steps {
		if d := time.Until(origin.Add(s.at)); d > 0 {
			time.Sleep(d)
		}
		synctest.Wait()
		s.what(s.u)
	}
	last := slices.MaxFunc(r.users, func(a, b *user) int { return int(a.leaveAt - b.leaveAt) })
	time.Sleep(time.Until(origin.Add(last.leaveAt + settleAfter)))
	synctest.Wait()
}

func (r *run) start(u *user) {
	t, ctx := r.t, r.t.Context()
	// The sdk world.
	lease, err := r.mgr.Start(ctx, car.StartRequest{UserId: u.id, UserIp: "203.0.113.7", ClientSession: "cs-" + u.id})
	if err != nil {
		t.Fatalf("Start(%s): %v", u.id, err)
	}
	u.lease = lease
	u.net = &clientNet{l: r.hbNet}
	u.hb, err = hbclient.Connect(ctx, heartbeatPath, lease.HeartbeatSession, lease.HeartbeatToken,
		hbclient.WithDialer(&websocket.Dialer{NetDialContext: u.net.dial}))
	if err != nil {
		t.Fatalf("hbclient.Connect(%s): %v", u.id, err)
	}
	if r.welcome == nil {
		r.welcome = u.net.welcomeTimings()
	}
	if u.sdkStream, err = r.sdkCAR.DialStream(ctx, lease.ServerSession); err != nil {
		t.Fatalf("DialStream(%s): %v", u.id, err)
	}
	u.sdkConc = u.sdkStream.ConcurrencyId()
	// The car-alone world.
	if _, err := r.alone.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: u.id, UserIp: "203.0.113.7", ProjectId: cartest.DefaultProjectId}); err != nil {
		t.Fatalf("ApplyConcurrent(%s): %v", u.id, err)
	}
	out, err := r.alone.CreateSession(ctx, &car.CreateSessionInput{UserId: u.id, UserIp: "203.0.113.7", ClientSession: "cs-" + u.id})
	if err != nil {
		t.Fatalf("CreateSession(%s): %v", u.id, err)
	}
	u.aloneSession = out.ServerSession
	if u.aloneStream, err = r.aloneCAR.DialStream(ctx, out.ServerSession); err != nil {
		t.Fatalf("DialStream(%s): %v", u.id, err)
	}
	u.aloneConc = u.aloneStream.ConcurrencyId()
}

// leave is the user going, in both worlds at the same instant.
func (r *run) leave(u *user) {
	u.left = time.Now()
	switch r.how {
	case silentVanish:
		u.net.freeze()
		for _, srv := range []*cartest.Server{r.sdkCAR, r.aloneCAR} {
			if err := srv.ExpireHeartbeat(u.id); err != nil {
				r.t.Fatalf("ExpireHeartbeat(%s): %v", u.id, err)
			}
		}
	case tcpCut:
		u.net.cut()
		u.sdkStream.Drop()
		u.aloneStream.Drop()
	case cleanClose, reload:
		r.closePage(u)
	}
}

// closePage closes the page's connections cleanly: the heartbeat with 1000
// (Session.Close) or, for every other user, 1001 as a browser tab does;
// the CAR stream with a close frame.
func (r *run) closePage(u *user) {
	u.lastFrame = u.net.lastWrite()
	hb := u.hb
	if u.id[len(u.id)-1]%2 == 0 {
		hb.Close()
	} else {
		if err := u.net.goAway(); err != nil {
			r.t.Fatalf("closing %s with 1001: %v", u.id, err)
		}
		go hb.Close() // what is left of the page; its network is gone
	}
	u.sdkStream.Close()
	u.aloneStream.Close()
}

// comeBack is the reloaded page: it resumes its heartbeat with the resume
// token of its last welcome and reconnects its streams with the same
// ServerSession.
func (r *run) comeBack(u *user) {
	t, ctx := r.t, r.t.Context()
	u.back = time.Now()
	token := u.net.resumeToken()
	if token == "" {
		t.Fatalf("%s: no resume token seen in a welcome", u.id)
	}
	u.net = &clientNet{l: r.hbNet}
	hb, err := hbclient.Connect(ctx, heartbeatPath, u.lease.HeartbeatSession, token,
		hbclient.WithDialer(&websocket.Dialer{NetDialContext: u.net.dial}))
	if err == nil {
		u.hb = hb
	} else {
		u.resumeErr = err
	}
	if st, err := r.sdkCAR.DialStream(ctx, u.lease.ServerSession); err == nil {
		u.sdkStream = st
	}
	if st, err := r.aloneCAR.DialStream(ctx, u.aloneSession); err == nil {
		u.aloneStream = st
	}
}

// checkResumed checks, well after the grace, that the user who came back
// holds the same concurrency, connected, in each world, and (sdk) that the
// manager never released it.
func (r *run) checkResumed(u *user) {
	c, ok := r.sdkCAR.User(u.id)
	r.mu.Lock()
	released := len(r.releases[u.id]) > 0
	r.mu.Unlock()
	var lease car.UserSnapshot
	for _, s := range r.mgr.Snapshot().Users {
		if s.UserId == u.id {
			lease = s
		}
	}
	u.sdkResumed = ok && c.ConcurrencyId == u.sdkConc && c.State == cartest.StateConnected && !released &&
		lease.State == car.LeaseActive && lease.Connected
	c, ok = r.aloneCAR.User(u.id)
	u.aloneRes = ok && c.ConcurrencyId == u.aloneConc && c.State == cartest.StateConnected
}

// measure reads both worlds' event logs (model time: each event carries
// the instant it was due) and the manager's releases.
func (r *run) measure() caseResult {
	var cr caseResult
	idle := func(srv *cartest.Server) map[string]time.Time {
		out := map[string]time.Time{}
		for _, e := range srv.Events() {
			if e.Kind == cartest.EventReleased {
				if _, seen := out[e.Subject]; !seen {
					out[e.Subject] = e.Time
				}
			}
		}
		return out
	}
	sdkIdle, aloneIdle := idle(r.sdkCAR), idle(r.aloneCAR)
	cr.SDK.Users, cr.Alone.Users = len(r.users), len(r.users)
	cr.SDK.Releases = map[string]int{}
	for reason, n := range r.mgr.Snapshot().Released {
		cr.SDK.Releases[string(reason)] = n
	}
	if r.how == reload {
		var sdkOK, aloneOK int
		for _, u := range r.users {
			if u.sdkResumed {
				sdkOK++
			}
			if u.aloneRes {
				aloneOK++
			}
		}
		cr.SDK.Resumed, cr.Alone.Resumed = &sdkOK, &aloneOK
		if sdkOK != len(r.users) || aloneOK != len(r.users) {
			r.t.Errorf("a reload within the grace resumed the same concurrency for %d (sdk) and %d (car alone) of %d users, want all: "+
				"a page is alive when it sends its close frame, so a grace counted from the last sign of life counts from the close", sdkOK, aloneOK, len(r.users))
			shown := 0
			for _, u := range r.users {
				if !u.sdkResumed && shown < 5 {
					shown++
					r.t.Errorf("%s (sdk): closed %.1f s after its last frame before the close frame, back %.1f s after the close; heartbeat resume: %v",
						u.id, u.left.Sub(u.lastFrame).Seconds(), u.back.Sub(u.left).Seconds(), u.resumeErr)
				}
			}
		}
		return cr
	}
	var sdkHeld, aloneHeld, destroy []float64
	var sdkMissing, aloneMissing, destroyMissing int
	for _, u := range r.users {
		s, okS := sdkIdle[u.id]
		a, okA := aloneIdle[u.id]
		switch {
		case !okS:
			sdkMissing++
			r.t.Errorf("%s: the sdk world never released the concurrency", u.id)
		case !okA:
			aloneMissing++
			r.t.Errorf("%s: CAR alone never released the concurrency", u.id)
		default:
			hs, ha := s.Sub(u.left), a.Sub(u.left)
			sdkHeld, aloneHeld = append(sdkHeld, hs.Seconds()), append(aloneHeld, ha.Seconds())
			if hs > ha {
				r.t.Errorf("%s: held %v after leaving with the SDK, longer than the %v of CAR alone", u.id, hs, ha)
			}
			if ha != carHeldAlone {
				r.t.Errorf("%s: CAR alone held %v after leaving, want its reconnect wait plus its cleanup, %v", u.id, ha, carHeldAlone)
			}
		}
		r.mu.Lock()
		rel := r.releases[u.id]
		r.mu.Unlock()
		if len(rel) == 0 {
			destroyMissing++
			continue
		}
		destroy = append(destroy, rel[0].At.Sub(u.left).Seconds())
	}
	cr.SDK.Held, cr.Alone.Held = summarize(sdkHeld, sdkMissing), summarize(aloneHeld, aloneMissing)
	cr.SDK.Destroy = summarize(destroy, destroyMissing)
	return cr
}

// clientNet is one page's network to the heartbeat endpoint. It keeps the
// page's current connection so that a step can freeze it, cut it or send a
// raw close frame on it, and reads the welcome frames that pass.
type clientNet struct {
	l       *memnet.Listener
	mu      sync.Mutex
	offline bool
	conn    *wireConn
	seen    []byte // the first bytes read on each connection
}

func (n *clientNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offline {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("the user is gone")}
	}
	c, err := n.l.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.conn = &wireConn{Conn: c, net: n, frozen: make(chan struct{}), closed: make(chan struct{})}
	return n.conn, nil
}

// freeze makes the current connection silent both ways, and new dials fail.
func (n *clientNet) freeze() {
	n.mu.Lock()
	n.offline = true
	c := n.conn
	n.mu.Unlock()
	c.freeze()
}

// cut breaks the current connection (the far end sees it lost), and new
// dials fail.
func (n *clientNet) cut() {
	n.mu.Lock()
	n.offline = true
	c := n.conn
	n.mu.Unlock()
	c.Close()
}

// goAway sends a masked close frame with 1001 (going away) on the current
// connection, as a browser does for a tab that closes; the page's network
// is then gone.
func (n *clientNet) goAway() error {
	n.mu.Lock()
	n.offline = true
	c := n.conn
	n.mu.Unlock()
	payload := websocket.FormatCloseMessage(websocket.CloseGoingAway, "")
	mask := [4]byte{0x1f, 0x2e, 0x3d, 0x4c}
	frame := append([]byte{0x88, 0x80 | byte(len(payload))}, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	// The Session's last write left its deadline behind; it sets a new
	// one before each write of its own.
	c.Conn.SetWriteDeadline(time.Time{})
	_, err := c.Conn.Write(frame)
	return err
}

// lastWrite returns when the page last wrote on its current connection.
func (n *clientNet) lastWrite() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return time.Time{}
	}
	return n.conn.wrote
}

// welcome returns the latest welcome frame seen.
func (n *clientNet) welcome() map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := bytes.LastIndex(n.seen, []byte(`{"type":"welcome"`))
	if i < 0 {
		return nil
	}
	var w map[string]any
	if err := json.NewDecoder(bytes.NewReader(n.seen[i:])).Decode(&w); err != nil {
		return nil
	}
	return w
}

func (n *clientNet) resumeToken() string {
	tok, _ := n.welcome()["token"].(string)
	return tok
}

// welcomeTimings returns the numbers of the welcome: the server's timings.
func (n *clientNet) welcomeTimings() map[string]float64 {
	out := map[string]float64{}
	for k, v := range n.welcome() {
		if f, ok := v.(float64); ok && k != "v" {
			out[k] = f
		}
	}
	return out
}

// wireConn is one connection of a clientNet.
type wireConn struct {
	net.Conn
	net        *clientNet
	frozen     chan struct{} // closed by freeze
	closed     chan struct{} // closed by Close
	freezeOnce sync.Once
	closeOnce  sync.Once
	read       int       // bytes read so far, under net.mu
	wrote      time.Time // the last write, under net.mu
}

// freeze: from now on nothing the page writes leaves it, and nothing
// reaches it; the server's side stays open, and what the server sends is
// taken off the wire and lost, as packets into a black hole.
func (c *wireConn) freeze() {
	c.freezeOnce.Do(func() {
		close(c.frozen)
		go func() {
			var buf [512]byte
			for {
				if _, err := c.Conn.Read(buf[:]); err != nil {
					return // the server cut the connection
				}
			}
		}()
	})
}

func (c *wireConn) isFrozen() bool {
	select {
	case <-c.frozen:
		return true
	default:
		return false
	}
}

func (c *wireConn) Read(p []byte) (int, error) {
	if !c.isFrozen() {
		n, err := c.Conn.Read(p)
		if !c.isFrozen() {
			c.note(p[:n])
			return n, err
		}
	}
	<-c.closed
	return 0, net.ErrClosed
}

// note keeps the first bytes of the connection, where the welcome is.
func (c *wireConn) note(p []byte) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	if c.read == 0 {
		c.net.seen = c.net.seen[:0]
	}
	if room := 4096 - c.read; room > 0 {
		c.net.seen = append(c.net.seen, p[:min(len(p), room)]...)
	}
	c.read += len(p)
}

func (c *wireConn) Write(p []byte) (int, error) {
	if c.isFrozen() {
		return len(p), nil // lost on the way
	}
	n, err := c.Conn.Write(p)
	c.net.mu.Lock()
	c.wrote = time.Now()
	c.net.mu.Unlock()
	return n, err
}

// Close ends the page's side. A frozen connection stays open at the
// server, which must find out by itself.
func (c *wireConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	if c.isFrozen() {
		return nil
	}
	return c.Conn.Close()
}
