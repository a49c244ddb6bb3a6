package car

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Errors of the SessionManager.
var (
	// ErrQueueFull: every concurrency is busy and the queue is at its limit.
	ErrQueueFull = errors.New("car: no idle concurrency and the queue is full")
	// ErrManagerClosed: the manager is shutting down.
	ErrManagerClosed = errors.New("car: session manager is shut down")
	// ErrLeftQueue: a queued user was stopped or went away before getting
	// a concurrency.
	ErrLeftQueue = errors.New("car: the user left the queue")
)

// ReleaseReason says why a lease ended.
type ReleaseReason string

// Release reasons, as the client also reads them in its released notice.
const (
	ReleaseIdle         ReleaseReason = "idle"         // idle for WithIdleRelease thresholds
	ReleaseDisconnected ReleaseReason = "disconnected" // the client did not come back within the reconnect wait
	ReleaseStopped      ReleaseReason = "stopped"      // Stop was called
	ReleaseShutdown     ReleaseReason = "shutdown"     // the manager shut down
	ReleaseStartFailed  ReleaseReason = "start failed" // ApplyConcurrent or CreateSession failed
	ReleaseLeftQueue    ReleaseReason = "left queue"   // stopped or gone while waiting in the queue
)

// LeaseState is where a user stands.
type LeaseState int

// Lease states.
const (
	LeaseQueued       LeaseState = iota // waiting for a concurrency
	LeaseStarting                       // ApplyConcurrent/CreateSession running
	LeaseActive                         // holds a concurrency; the client is connected or expected
	LeaseDisconnected                   // holds a concurrency; the client is gone, the reconnect wait runs
	LeaseReleasing                      // being released
)

func (s LeaseState) String() string {
	switch s {
	case LeaseQueued:
		return "queued"
	case LeaseStarting:
		return "starting"
	case LeaseActive:
		return "active"
	case LeaseDisconnected:
		return "disconnected"
	case LeaseReleasing:
		return "releasing"
	}
	return fmt.Sprintf("LeaseState(%d)", int(s))
}

// StartRequest asks for a concurrency for one user.
type StartRequest struct {
	UserId        string //nolint:revive // the API's spelling. Required.
	UserIp        string //nolint:revive // Required.
	ClientSession string // from the client's TCGSDK.getClientSession()
	// Optional fields; empty ones take the manager's StartDefaults.
	RunMode               string
	ApplicationParameters string
	ApplicationId         string //nolint:revive
	ApplicationVersionId  string //nolint:revive
}

// Lease is the answer to Start: what the user's client needs.
type Lease struct {
	UserId string //nolint:revive
	// HeartbeatSession and HeartbeatToken are what the client's heartbeat
	// hello carries. The token is a secret for this client only.
	HeartbeatSession string
	HeartbeatToken   string
	// ServerSession goes to TCGSDK.start(). Empty while queued: it then
	// arrives in a "ready" heartbeat notice (Data: {"ServerSession": …})
	// and from Wait.
	ServerSession string
	// QueuePosition is the 1-based place in the queue; 0 when not queued.
	QueuePosition int

	e *entry
}

// Wait blocks until a queued user has a concurrency and returns its
// ServerSession, or the reason it never will (ErrLeftQueue, a start error,
// ErrManagerClosed). It returns at once for a lease that was not queued.
func (l *Lease) Wait(ctx context.Context) (string, error) {
	select {
	case <-l.e.admitted:
		return l.e.admission()
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Release describes a finished lease, for OnRelease.
type Release struct {
	UserId string //nolint:revive
	Reason ReleaseReason
	// Destroyed reports that the lease held a concurrency and
	// DestroySession was called for it (once); DestroyErr is its final
	// error, if it failed after its retries.
	Destroyed  bool
	DestroyErr error
	At         time.Time
}

// UserSnapshot is one user's state in a Snapshot.
type UserSnapshot struct {
	UserId           string //nolint:revive
	State            LeaseState
	Since            time.Time
	QueuePosition    int
	Connected        bool
	IdleTimes        int
	HeartbeatSession string
}

// Snapshot is the manager's state at one moment.
type Snapshot struct {
	Users        []UserSnapshot // by UserId
	Active       int            // holding a concurrency (active or disconnected)
	Disconnected int            // of which the client is gone
	Waiting      int            // queued
	// Released counts finished leases by reason since the manager started.
	Released map[ReleaseReason]int
	// DestroyCalls counts DestroySession calls (one per lease that held a
	// concurrency); DestroyFailures those that failed after retries.
	DestroyCalls, DestroyFailures int
}

// entry is one lease. Its fields are guarded by SessionManager.mu; the
// channels are closed once each.
type entry struct {
	userID        string
	hbID          string
	req           StartRequest
	state         LeaseState
	resume        LeaseState // state to return to if a reattach fails
	since         time.Time
	applied       bool          // ApplyConcurrent succeeded: releasing needs DestroySession
	pending       ReleaseReason // a release asked for while starting
	serverSession string

	// busy is non-nil while ApplyConcurrent/CreateSession run for the
	// entry (state LeaseStarting), and closed when they settle. Releases
	// wait for it, so a release never races a lock being taken.
	busy chan struct{}
	// admitted is closed when the user first has a concurrency, or never
	// will; admitSession and admitErr say which.
	admitted     chan struct{}
	admitSession string
	admitErr     error
	released     chan struct{} // closed once the release is complete
}

func (e *entry) admission() (string, error) { return e.admitSession, e.admitErr }

// SessionManager runs CAR sessions for a backend: it joins the API client
// to a heartbeat with each user's client. See the package documentation
// for the model. It is an http.Handler: mount it where clients connect
// their heartbeat WebSocket.
type SessionManager struct {
	client  *Client
	project string
	cfg     managerConfig
	hb      *heartbeat.Server
	log     *slog.Logger

	// runCtx bounds the calls the manager makes on its own (queue,
	// callback-driven releases); Shutdown cancels it when its ctx ends.
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup // the queue runner
	stops     sync.WaitGroup // releases started by Stop; Add only under mu, before closing

	mu      sync.Mutex
	users   map[string]*entry // by UserId
	byHB    map[string]*entry // by heartbeat session id
	queue   []*entry
	gen     uint64
	closing bool
	running bool // the queue runner is alive
	kick    chan struct{}
	stats   struct {
		released                  map[ReleaseReason]int
		destroyCalls, destroyFail int
	}
}

// NewSessionManager returns a manager for one project.
func NewSessionManager(client *Client, projectID string, opts ...ManagerOption) (*SessionManager, error) {
	if client == nil {
		return nil, errors.New("car: NewSessionManager: client must not be nil")
	}
	if projectID == "" {
		return nil, &ValidationError{Service: Service, Action: "NewSessionManager", Field: "ProjectId", Rule: "is required"}
	}
	cfg := managerConfig{
		reconnectWait: heartbeat.DefaultGraceWindow,
		idleThreshold: heartbeat.DefaultIdleThreshold,
		idleRelease:   DefaultIdleRelease,
		queueLimit:    DefaultQueueLimit,
		queuePoll:     DefaultQueuePollInterval,
		destroyRetry:  RetryPolicy{MaxAttempts: 8, MinWait: 500 * time.Millisecond, MaxWait: 10 * time.Second},
		logger:        slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("car: NewSessionManager: %w", err)
		}
	}
	m := &SessionManager{
		client: client, project: projectID, cfg: cfg, log: cfg.logger,
		users: make(map[string]*entry), byHB: make(map[string]*entry),
		kick: make(chan struct{}, 1),
	}
	m.stats.released = make(map[ReleaseReason]int)
	m.runCtx, m.cancelRun = context.WithCancel(context.Background())
	hbOpts := append(slices.Clone(cfg.heartbeat),
		heartbeat.WithGraceWindow(cfg.reconnectWait),
		heartbeat.WithIdleThreshold(cfg.idleThreshold),
		heartbeat.OnConnect(m.onConnect),
		heartbeat.OnDisconnect(m.onDisconnect),
		heartbeat.OnResume(m.onResume),
		heartbeat.OnIdle(m.onIdle),
		heartbeat.OnExpire(m.onExpire),
	)
	hb, err := heartbeat.NewServer(hbOpts...)
	if err != nil {
		m.cancelRun()
		return nil, fmt.Errorf("car: NewSessionManager: heartbeat: %w", err)
	}
	m.hb = hb
	return m, nil
}

// ServeHTTP serves the heartbeat WebSocket (see package heartbeat for the
// protocol).
func (m *SessionManager) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.hb.ServeHTTP(w, r) }

func (r *StartRequest) validate() error {
	in := CreateSessionInput{UserId: r.UserId, UserIp: r.UserIp, RunMode: r.RunMode}
	if field, rule := in.validate(); field != "" {
		return &ValidationError{Service: Service, Action: "Start", Field: field, Rule: rule}
	}
	if len(r.UserId) > heartbeat.MaxSessionIDLen-21 {
		return &ValidationError{Service: Service, Action: "Start", Field: "UserId", Rule: fmt.Sprintf("must be at most %d bytes", heartbeat.MaxSessionIDLen-21)}
	}
	return nil
}

// Start admits a user. With a concurrency idle, it runs ApplyConcurrent then
// CreateSession and returns the ServerSession; with none (NoIdle) the user
// joins the FIFO queue and the lease says so (QueuePosition); its heartbeat
// then reports the position, and a "ready" notice brings the ServerSession.
// Either way the lease carries the heartbeat token for the client.
//
// Start for a user who already holds a concurrency (a reload, another
// device) runs ApplyConcurrent and CreateSession again: CAR reattaches the
// same concurrency and closes the older stream; the newer heartbeat
// connection replaces the older one. Start for a queued user keeps its
// place and issues a fresh token.
func (m *SessionManager) Start(ctx context.Context, req StartRequest) (*Lease, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	m.applyDefaults(&req)
	for {
		m.mu.Lock()
		if m.closing {
			m.mu.Unlock()
			return nil, ErrManagerClosed
		}
		e := m.users[req.UserId]
		if e == nil {
			return m.startNew(ctx, req) // unlocks
		}
		switch e.state {
		case LeaseReleasing, LeaseStarting:
			wait := e.released
			if e.state == LeaseStarting {
				wait = e.busy
			}
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case LeaseQueued:
			e.req = req
			m.mu.Unlock()
			return m.lease(e)
		default:
			e.req, e.resume = req, e.state
			m.beginStartLocked(e)
			m.mu.Unlock()
			return m.reattach(ctx, e)
		}
	}
}

func (m *SessionManager) applyDefaults(r *StartRequest) {
	d := m.cfg.start
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&r.RunMode, d.RunMode}, {&r.ApplicationParameters, d.ApplicationParameters},
		{&r.ApplicationId, d.ApplicationId}, {&r.ApplicationVersionId, d.ApplicationVersionId},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
}

// startNew runs with m.mu held and releases it.
func (m *SessionManager) startNew(ctx context.Context, req StartRequest) (*Lease, error) {
	m.gen++
	e := &entry{
		userID: req.UserId, hbID: fmt.Sprintf("%s#%d", req.UserId, m.gen), req: req,
		since: time.Now(), admitted: make(chan struct{}), released: make(chan struct{}),
	}
	queued := len(m.queue) > 0 // FIFO: nobody overtakes a waiting user
	if queued {
		if len(m.queue) >= m.cfg.queueLimit {
			m.mu.Unlock()
			return nil, ErrQueueFull
		}
		e.state = LeaseQueued
		m.queue = append(m.queue, e)
	} else {
		m.beginStartLocked(e)
	}
	m.users[e.userID], m.byHB[e.hbID] = e, e
	m.mu.Unlock()

	if queued {
		return m.leaseQueued(e)
	}
	err := m.admit(ctx, e)
	if HasCode(err, CodeNoIdle) && m.cfg.queueLimit > 0 {
		m.mu.Lock()
		full := len(m.queue) >= m.cfg.queueLimit
		if !full && e.pending == "" {
			e.state = LeaseQueued
			m.queue = append(m.queue, e)
			m.settleLocked(e)
			m.mu.Unlock()
			return m.leaseQueued(e)
		}
		m.mu.Unlock()
		if full {
			err = fmt.Errorf("%w: %w", ErrQueueFull, err)
		}
	}
	m.finishStart(e, err, true)
	if err != nil {
		return nil, err
	}
	return m.lease(e)
}

// beginStartLocked marks e as starting: releases wait until it settles.
func (m *SessionManager) beginStartLocked(e *entry) {
	e.state = LeaseStarting
	e.busy = make(chan struct{})
}

// settleLocked ends a start: those waiting on busy go on.
func (m *SessionManager) settleLocked(e *entry) {
	if e.busy != nil {
		close(e.busy)
		e.busy = nil
	}
}

// leaseQueued opens the heartbeat session of a user who just joined the
// queue, then tells every queued user its position.
func (m *SessionManager) leaseQueued(e *entry) (*Lease, error) {
	l, err := m.lease(e)
	m.queueChanged()
	return l, err
}

// lease issues a heartbeat token for e and describes it.
func (m *SessionManager) lease(e *entry) (*Lease, error) {
	token, err := m.hb.Open(e.hbID)
	if err != nil {
		m.release(m.runCtx, e, ReleaseStartFailed)
		return nil, fmt.Errorf("car: heartbeat session: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &Lease{UserId: e.userID, HeartbeatSession: e.hbID, HeartbeatToken: token, ServerSession: e.serverSession, e: e}
	if e.state == LeaseQueued {
		l.QueuePosition = slices.Index(m.queue, e) + 1
	}
	return l, nil
}

// admit runs ApplyConcurrent then CreateSession for e.
func (m *SessionManager) admit(ctx context.Context, e *entry) error {
	m.mu.Lock()
	r := e.req
	m.mu.Unlock()
	_, err := m.client.ApplyConcurrent(ctx, &ApplyConcurrentInput{
		UserId: r.UserId, UserIp: r.UserIp, ProjectId: m.project,
		ApplicationId: r.ApplicationId, ApplicationVersionId: r.ApplicationVersionId,
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	e.applied = true
	m.mu.Unlock()
	out, err := m.client.CreateSession(ctx, &CreateSessionInput{
		UserId: r.UserId, UserIp: r.UserIp, ClientSession: r.ClientSession,
		RunMode: r.RunMode, ApplicationParameters: r.ApplicationParameters,
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	e.serverSession = out.ServerSession
	m.mu.Unlock()
	return nil
}

// finishStart settles an ApplyConcurrent/CreateSession run. On the first
// admission (initial) a failure releases the entry; a failed reattach
// leaves the user with the concurrency it held. A release asked for
// meanwhile runs now.
func (m *SessionManager) finishStart(e *entry, err error, initial bool) {
	m.mu.Lock()
	pending := e.pending
	e.pending = ""
	switch {
	case err == nil, initial:
		e.state = LeaseActive
	default:
		e.state = e.resume
	}
	e.since = time.Now()
	if initial {
		e.admitSession, e.admitErr = e.serverSession, err
	}
	m.settleLocked(e)
	m.mu.Unlock()
	if initial {
		close(e.admitted)
	}
	switch {
	case err != nil && initial:
		m.release(m.runCtx, e, ReleaseStartFailed)
	case pending != "":
		m.release(m.runCtx, e, pending)
	}
}

// reattach repeats ApplyConcurrent and CreateSession for a user who holds a
// concurrency (e is starting): CAR hands back the same one.
func (m *SessionManager) reattach(ctx context.Context, e *entry) (*Lease, error) {
	err := m.admit(ctx, e)
	m.finishStart(e, err, false)
	if err != nil {
		return nil, err
	}
	return m.lease(e)
}

// Stop releases the user's concurrency (DestroySession) or takes the user
// out of the queue, and waits until that is done. Stopping a user with no
// lease does nothing.
//
// ctx bounds only the wait. The release itself runs on the manager's own
// context: a caller that goes away (the request of a page being closed)
// gets ctx's error back, and the concurrency is still released.
func (m *SessionManager) Stop(ctx context.Context, userID string) error {
	m.mu.Lock()
	e := m.users[userID]
	if e == nil {
		m.mu.Unlock()
		return nil
	}
	reason := ReleaseStopped
	if e.state == LeaseQueued {
		reason = ReleaseLeftQueue
	}
	closing := m.closing
	if !closing {
		m.stops.Add(1)
	}
	m.mu.Unlock()
	if !closing { // else Shutdown releases e
		go func() {
			defer m.stops.Done()
			m.release(m.runCtx, e, reason)
		}()
	}
	select {
	case <-e.released:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release ends e exactly once: whoever moves it to LeaseReleasing does the
// work; every other caller returns at once. A release asked for while e is
// starting is recorded and carried out when the start settles.
func (m *SessionManager) release(ctx context.Context, e *entry, reason ReleaseReason) {
	m.mu.Lock()
	if m.users[e.userID] != e || e.state == LeaseReleasing {
		m.mu.Unlock()
		return
	}
	if e.state == LeaseStarting {
		if e.pending == "" {
			e.pending = reason
		}
		m.mu.Unlock()
		return
	}
	wasQueued := e.state == LeaseQueued
	if wasQueued {
		m.queue = slices.DeleteFunc(m.queue, func(q *entry) bool { return q == e })
		e.admitErr = ErrLeftQueue
		if reason == ReleaseShutdown {
			e.admitErr = ErrManagerClosed
		} else {
			reason = ReleaseLeftQueue
		}
	}
	e.state, e.since = LeaseReleasing, time.Now()
	held := e.applied
	m.mu.Unlock()

	if wasQueued {
		close(e.admitted)
		m.queueChanged()
	}
	// Tell the client first, so it stops reconnecting; an expired session
	// is already gone and that is fine.
	if err := m.hb.Release(e.hbID, string(reason)); err != nil && !errors.Is(err, heartbeat.ErrUnknownSession) && !errors.Is(err, heartbeat.ErrServerClosed) {
		m.log.Warn("telling the client of its release failed", "user", e.userID, "error", err)
	}
	var destroyErr error
	if held {
		destroyErr = m.destroy(ctx, e.userID)
	}
	at := time.Now()
	m.mu.Lock()
	delete(m.users, e.userID)
	delete(m.byHB, e.hbID)
	m.stats.released[reason]++
	if held {
		m.stats.destroyCalls++
		if destroyErr != nil {
			m.stats.destroyFail++
		}
	}
	m.mu.Unlock()
	close(e.released)

	level := slog.LevelInfo
	if destroyErr != nil {
		level = slog.LevelError
	}
	m.log.Log(ctx, level, "released", "user", e.userID, "reason", string(reason), "destroyed", held, "error", destroyErr)
	if m.cfg.onRelease != nil {
		m.cfg.onRelease(Release{UserId: e.userID, Reason: reason, Destroyed: held, DestroyErr: destroyErr, At: at})
	}
	if held {
		m.wakeQueue()
	}
}

// destroy calls DestroySession, retried on throttling, 5xx and network
// errors. A session CAR is already tearing down counts as destroyed.
func (m *SessionManager) destroy(ctx context.Context, userID string) error {
	_, err := m.client.DestroySession(ctx, &DestroySessionInput{UserId: userID}, WithCallRetry(m.cfg.destroyRetry))
	if HasCode(err, CodeStopping) {
		return nil
	}
	return err
}

// Heartbeat callbacks. They run on the heartbeat server's per-session
// goroutines, in order for a session, with no lock held.

func (m *SessionManager) entryFor(hbID string) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byHB[hbID]
}

func (m *SessionManager) onConnect(ev heartbeat.Event) { m.setConnected(ev.SessionID, true) }
func (m *SessionManager) onResume(ev heartbeat.Event)  { m.setConnected(ev.SessionID, true) }
func (m *SessionManager) onDisconnect(ev heartbeat.Event) {
	m.setConnected(ev.SessionID, false)
}

func (m *SessionManager) setConnected(hbID string, connected bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.byHB[hbID]
	if e == nil {
		return
	}
	switch {
	case connected && e.state == LeaseDisconnected:
		e.state, e.since = LeaseActive, time.Now()
	case !connected && e.state == LeaseActive:
		e.state, e.since = LeaseDisconnected, time.Now()
	}
}

func (m *SessionManager) onIdle(ev heartbeat.Event) {
	if m.cfg.idleRelease == 0 || ev.Times < m.cfg.idleRelease {
		return
	}
	e := m.entryFor(ev.SessionID)
	if e == nil {
		return
	}
	m.mu.Lock()
	holding := e.state == LeaseActive || e.state == LeaseDisconnected || e.state == LeaseStarting
	m.mu.Unlock()
	if holding { // a queued user may wait idle
		m.release(m.runCtx, e, ReleaseIdle)
	}
}

func (m *SessionManager) onExpire(ev heartbeat.Event) {
	if e := m.entryFor(ev.SessionID); e != nil {
		m.release(m.runCtx, e, ReleaseDisconnected)
	}
}

// The queue.

// queueChanged tells every queued user its position and makes sure the
// runner is working on the head.
func (m *SessionManager) queueChanged() {
	m.mu.Lock()
	ids := make([]string, len(m.queue))
	for i, e := range m.queue {
		ids[i] = e.hbID
	}
	if len(m.queue) > 0 && !m.running && !m.closing {
		m.running = true
		m.wg.Add(1)
		go m.runQueue()
	}
	m.mu.Unlock()
	for i, id := range ids {
		if err := m.hb.Send(id, heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: i + 1}); err != nil && !errors.Is(err, heartbeat.ErrUnknownSession) {
			m.log.Debug("queue notice not sent", "session", id, "error", err)
		}
	}
}

func (m *SessionManager) wakeQueue() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// runQueue admits queued users in order. It lives while the queue is not
// empty; the head retries ApplyConcurrent every poll interval, or at once
// after a release.
func (m *SessionManager) runQueue() {
	defer m.wg.Done()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		m.mu.Lock()
		if m.closing || len(m.queue) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		e := m.queue[0]
		m.beginStartLocked(e)
		m.mu.Unlock()

		err := m.admit(m.runCtx, e)
		if HasCode(err, CodeNoIdle) {
			m.mu.Lock()
			pending := e.pending
			e.state, e.pending = LeaseQueued, ""
			m.settleLocked(e)
			m.mu.Unlock()
			if pending != "" {
				m.release(m.runCtx, e, pending)
				continue
			}
			poll.Reset(m.cfg.queuePoll)
			select {
			case <-poll.C:
			case <-m.kick:
			case <-m.runCtx.Done():
			}
			continue
		}
		m.mu.Lock()
		m.queue = slices.DeleteFunc(m.queue, func(q *entry) bool { return q == e })
		m.mu.Unlock()
		m.finishStart(e, err, true)
		if err == nil {
			data, _ := json.Marshal(map[string]string{"ServerSession": e.admitSession})
			if err := m.hb.Send(e.hbID, heartbeat.Notice{Kind: heartbeat.NoticeReady, Data: data}); err != nil && !errors.Is(err, heartbeat.ErrUnknownSession) {
				m.log.Warn("ready notice not sent", "user", e.userID, "error", err)
			}
		}
		m.queueChanged()
	}
}

// Snapshot reports every user's state and the counters.
func (m *SessionManager) Snapshot() Snapshot {
	m.mu.Lock()
	s := Snapshot{
		Users:           make([]UserSnapshot, 0, len(m.users)),
		Released:        make(map[ReleaseReason]int, len(m.stats.released)),
		DestroyCalls:    m.stats.destroyCalls,
		DestroyFailures: m.stats.destroyFail,
	}
	for k, v := range m.stats.released {
		s.Released[k] = v
	}
	for _, e := range m.users {
		u := UserSnapshot{UserId: e.userID, State: e.state, Since: e.since, HeartbeatSession: e.hbID}
		switch e.state {
		case LeaseQueued:
			u.QueuePosition = slices.Index(m.queue, e) + 1
			s.Waiting++
		case LeaseActive:
			s.Active++
		case LeaseDisconnected:
			s.Active++
			s.Disconnected++
		}
		s.Users = append(s.Users, u)
	}
	m.mu.Unlock()
	for i := range s.Users {
		if info, ok := m.hb.Session(s.Users[i].HeartbeatSession); ok {
			s.Users[i].Connected, s.Users[i].IdleTimes = info.Connected, info.IdleTimes
		}
	}
	slices.SortFunc(s.Users, func(a, b UserSnapshot) int {
		if a.UserId < b.UserId {
			return -1
		}
		if a.UserId > b.UserId {
			return 1
		}
		return 0
	})
	return s
}

// Shutdown drains the manager: it stops admitting, empties the queue,
// releases every concurrency it holds (DestroySession, a few at a time),
// then shuts the heartbeat server down. If ctx ends first, the calls still
// running are cancelled and ctx's error is returned.
func (m *SessionManager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return ErrManagerClosed
	}
	m.closing = true
	entries := make([]*entry, 0, len(m.users))
	for _, e := range m.users {
		entries = append(entries, e)
	}
	m.mu.Unlock()
	stop := context.AfterFunc(ctx, m.cancelRun)
	defer stop()
	m.wakeQueue()
	m.wg.Wait() // the queue runner has stopped; queued users are still queued

	sem := make(chan struct{}, 8)
	var releases sync.WaitGroup
	for _, e := range entries {
		releases.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; releases.Done() }()
			m.release(m.runCtx, e, ReleaseShutdown)
			<-e.released
		}()
	}
	releases.Wait()
	m.stops.Wait()
	err := m.hb.Shutdown(ctx)
	m.cancelRun()
	if err == nil {
		err = ctx.Err()
	}
	return err
}
