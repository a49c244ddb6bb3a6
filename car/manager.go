package car

import (
	"context"
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
	// ErrQueueTimeout: a queued user waited longer than WithQueueTimeout.
	ErrQueueTimeout = errors.New("car: the user waited in the queue longer than the queue timeout")
	// ErrNotQueued: RefreshClientSession for a user who is not waiting in
	// the queue.
	ErrNotQueued = errors.New("car: the user is not waiting in the queue")
)

// MaxUserIDLen is the longest UserId the manager accepts, in bytes: the
// heartbeat session id of a lease is the UserId, "#" and the lease's
// generation (up to 20 decimal digits), and must fit
// heartbeat.MaxSessionIDLen.
const MaxUserIDLen = heartbeat.MaxSessionIDLen - len("#") - 20

// ReleaseReason says why a lease ended.
type ReleaseReason string

// Release reasons, as the client also reads them in its released notice.
const (
	ReleaseIdle         ReleaseReason = "idle"          // idle for WithIdleRelease thresholds
	ReleaseDisconnected ReleaseReason = "disconnected"  // the client did not come back within the reconnect wait
	ReleaseStopped      ReleaseReason = "stopped"       // Stop was called
	ReleaseShutdown     ReleaseReason = "shutdown"      // the manager shut down
	ReleaseStartFailed  ReleaseReason = "start failed"  // ApplyConcurrent or CreateSession failed
	ReleaseLeftQueue    ReleaseReason = "left queue"    // stopped or gone while waiting in the queue
	ReleaseQueueTimeout ReleaseReason = "queue timeout" // waited longer than WithQueueTimeout
	ReleaseStreamLost   ReleaseReason = "stream lost"   // the client reported the CAR stream lost for good
	ReleaseAdopted      ReleaseReason = "adopted"       // a pending release handed over by WithPendingReleases
)

// LeaseState is where a user stands.
type LeaseState int

// Lease states.
const (
	LeaseQueued       LeaseState = iota // waiting for a concurrency
	LeaseStarting                       // ApplyConcurrent/CreateSession running
	LeaseActive                         // holds a concurrency; the client is connected or expected
	LeaseDisconnected                   // holds a concurrency; the client is gone, the reconnect wait runs
	LeaseReleasing                      // being released: DestroySession running or waiting for a retry
)

var leaseStateNames = [...]string{"queued", "starting", "active", "disconnected", "releasing"}

func (s LeaseState) String() string {
	if int(s) >= 0 && int(s) < len(leaseStateNames) {
		return leaseStateNames[s]
	}
	return fmt.Sprintf("LeaseState(%d)", int(s))
}

// MarshalText encodes the state as its name ("active"), so JSON shows it
// that way.
func (s LeaseState) MarshalText() ([]byte, error) {
	if int(s) < 0 || int(s) >= len(leaseStateNames) {
		return nil, fmt.Errorf("car: LeaseState(%d) has no name", int(s))
	}
	return []byte(leaseStateNames[s]), nil
}

// UnmarshalText decodes a state name.
func (s *LeaseState) UnmarshalText(b []byte) error {
	if i := slices.Index(leaseStateNames[:], string(b)); i >= 0 {
		*s = LeaseState(i)
		return nil
	}
	return fmt.Errorf("car: unknown lease state %q", b)
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
	// ServerSession goes to TCGSDK.start(). Empty while queued. Every
	// user, queued or not, also gets it in a "ready" heartbeat notice
	// (Data: {"ServerSession": …}), so a page has one path; Wait returns
	// it too.
	ServerSession string
	// QueuePosition is the 1-based place in the queue; 0 when not queued.
	QueuePosition int

	e *entry
}

// Wait blocks until a queued user has a concurrency and returns its
// ServerSession, or the reason it never will (ErrLeftQueue,
// ErrQueueTimeout, a start error, ErrManagerClosed). It returns at once for
// a lease that was not queued.
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
	// HeartbeatSession is the lease's heartbeat session id (its Lease's
	// HeartbeatSession): it tells the leases of one user apart. Empty for
	// a release adopted with WithPendingReleases.
	HeartbeatSession string
	Reason           ReleaseReason
	// Destroyed reports that the lease held (or may have held) a
	// concurrency and DestroySession was called for it until it succeeded
	// or failed for good; DestroyErr is that permanent failure, if any.
	Destroyed  bool
	DestroyErr error
	// Attempts counts the DestroySession calls made (each with its own
	// retries); more than 1 means the release was queued and retried.
	Attempts int
	At       time.Time
}

// entry is one lease. Its fields are guarded by SessionManager.mu; the
// channels are closed once each.
type entry struct {
	userID        string
	hbID          string // "" for a release adopted with WithPendingReleases
	req           StartRequest
	state         LeaseState
	resume        LeaseState // state to return to if a reattach fails
	since         time.Time
	applied       bool          // a lock or session may exist in CAR: releasing needs DestroySession
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

	queueSlot // while queued

	// While releasing (see lease.go).
	reason      ReleaseReason
	relAttempts int
	relErr      error     // the last transient DestroySession failure
	relNext     time.Time // when the next attempt is due
	relRunning  bool      // an attempt is in progress
	relCost     int       // retry budget tokens the attempt in progress took
	relProbe    bool      // the attempt in progress is the budget's probe
	relWaiting  bool      // waiting for the retry budget
	relFinal    error     // a permanent failure, once released is closed
	released    chan struct{}

	// Its lease in the store (store_manager.go).
	gen         uint64 // the lease's generation; 0 for a Start's placeholder and a WithPendingReleases hand-over
	done        bool   // left the books (finished or forgotten)
	wasAdmitted bool   // admitted is closed
	claimed     bool   // this replica won the release claim
	destroyed   bool   // DestroySession is done; Finish is left
	destroyErr  error  // its permanent failure, if any
	ifHolding   bool   // an idle release adopted from another replica: not for a queued lease
	relTries    int    // failed release attempts (store or CAR), for the backoff
	lost        bool   // the store lost the lease: released from what this replica knows
	storeTicket uint64 // its queue ticket in the store, 0 if none known (store_rebuild.go)
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
	// releases); Shutdown cancels it when its ctx ends.
	runCtx    context.Context
	cancelRun context.CancelFunc
	queueWG   sync.WaitGroup // the queue runner
	relWG     sync.WaitGroup // the release runner and its attempts
	stops     sync.WaitGroup // releases started by Stop and Start cleanups; Add only under mu, before closing

	mu         sync.Mutex
	users      map[string]*entry // by UserId
	byHB       map[string]*entry // by heartbeat session id
	queue      waitQueue
	closing    bool
	kick       chan struct{}
	relPending map[*entry]struct{} // releases waiting for their next attempt
	relAlive   bool                // the release runner is alive
	relKick    chan struct{}
	relProbing bool      // a release retry goes uncharged: the retry budget is empty
	relProbeAt time.Time // when the next such probe may go
	stats      struct {
		released                  map[ReleaseReason]int
		destroyCalls, destroyFail int
		destroyRetries            int
		noticesSent               int
		forgotten                 int // leases finished by another replica
	}

	// The lease store (store_manager.go).
	store           LeaseStore
	private         bool // store is this manager's own (no WithLeaseStore): nobody shares it
	stopWatch       func()
	headMine        bool          // this replica held the head lock at the last try
	headAt          time.Time     // when the head's backoff ends (the runner wakes then)
	nextOrphanSweep time.Time     // sweepOrphans' next run
	nextFullRound   time.Time     // positionRound's next look at every queued user
	recheck         []*entry      // queued here, admitted elsewhere: to look up
	changed         chan struct{} // closed and replaced at every store event
}

// NewSessionManager returns a manager for one project.
func NewSessionManager(client *Client, projectID string, opts ...ManagerOption) (*SessionManager, error) {
	if client == nil {
		return nil, errors.New("car: NewSessionManager: client must not be nil")
	}
	if projectID == "" {
		return nil, &ValidationError{Service: Service, Action: "NewSessionManager", Field: "ProjectId", Rule: "is required"}
	}
	cfg := defaultManagerConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("car: NewSessionManager: %w", err)
		}
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("car: NewSessionManager: %w", err)
	}
	m := &SessionManager{
		client: client, project: projectID, cfg: cfg, log: cfg.logger,
		users: make(map[string]*entry), byHB: make(map[string]*entry),
		kick: make(chan struct{}, 1), relKick: make(chan struct{}, 1),
		relPending: make(map[*entry]struct{}), store: cfg.store,
	}
	m.stats.released = make(map[ReleaseReason]int)
	m.runCtx, m.cancelRun = context.WithCancel(context.Background())
	own := append([]heartbeat.ServerOption{
		heartbeat.WithReconnectWindow(cfg.reconnectWait),
		heartbeat.WithReloadGrace(cfg.reloadGrace),
		heartbeat.WithIdleThreshold(cfg.idleThreshold),
		heartbeat.OnConnect(m.onConnect),
		heartbeat.OnDisconnect(m.onDisconnect),
		heartbeat.OnResume(m.onResume),
		heartbeat.OnIdle(m.onIdle),
		heartbeat.OnExpire(m.onExpire),
	}, m.streamOptions()...)
	if err := refuseManaged(cfg.heartbeat, own); err != nil {
		m.cancelRun()
		return nil, err
	}
	hbOpts := append(slices.Clone(cfg.heartbeat), own...)

	hb, err := heartbeat.NewServer(hbOpts...)
	if err != nil {
		m.cancelRun()
		return nil, fmt.Errorf("car: NewSessionManager: heartbeat: %w", err)
	}
	m.hb = hb
	if m.store == nil {
		// One replica: the leases and the queue live in a store of this
		// manager's own, which nobody else shares.
		m.store, m.private = NewMemoryLeaseStore().Replica("local"), true
	}
	m.startShared()
	m.adoptPending(cfg.pendingReleases)
	return m, nil
}

// ServeHTTP serves the heartbeat WebSocket (see package heartbeat for the
// protocol).
func (m *SessionManager) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.hb.ServeHTTP(w, r) }

// notify sends a notice to a session, counting it; a session already gone
// is not an error.
func (m *SessionManager) notify(hbID string, n heartbeat.Notice) {
	err := m.hb.Send(m.runCtx, hbID, n)
	if err != nil {
		if !errors.Is(err, heartbeat.ErrUnknownSession) && !errors.Is(err, heartbeat.ErrServerClosed) {
			m.log.Warn("notice not sent", "session", hbID, "kind", string(n.Kind), "error", err)
		}
		return
	}
	m.mu.Lock()
	m.stats.noticesSent++
	m.mu.Unlock()
}

// RefreshClientSession replaces the ClientSession of a user waiting in the
// queue, for the CreateSession its admission will run (a ClientSession is
// valid for one TCGSDK.init, so a page that waited long may init again).
// It fails with ErrNotQueued for a user who is not queued, and with a
// *ValidationError for an empty ClientSession.
func (m *SessionManager) RefreshClientSession(ctx context.Context, userID, clientSession string) error {
	if clientSession == "" {
		return &ValidationError{Service: Service, Action: "RefreshClientSession", Field: "ClientSession", Rule: "is required"}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.users[userID]
	if e == nil || e.state != LeaseQueued {
		return fmt.Errorf("%w: %q", ErrNotQueued, userID)
	}
	e.req.ClientSession = clientSession
	return nil
}

// Heartbeat callbacks. They run on the heartbeat server's per-session
// goroutines, in order for a session, with no lock held.
func (m *SessionManager) entryFor(hbID string) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byHB[hbID]
}

func (m *SessionManager) onConnect(ev heartbeat.Event) {
	m.lookupEntry(ev.SessionID)
	m.setConnected(ev.SessionID, true)
}

func (m *SessionManager) onResume(ev heartbeat.Event) {
	m.lookupEntry(ev.SessionID)
	m.setConnected(ev.SessionID, true)
}

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
	e := m.adoptForRelease(ev.SessionID, true)
	if e == nil {
		return
	}
	m.mu.Lock()
	holding := (e.state == LeaseActive || e.state == LeaseDisconnected || e.state == LeaseStarting) && !e.inQueue
	m.mu.Unlock()
	if holding { // a queued user may wait idle
		m.release(e, ReleaseIdle)
	}
}

func (m *SessionManager) onExpire(ev heartbeat.Event) {
	if e := m.adoptForRelease(ev.SessionID, false); e != nil {
		m.release(e, ReleaseDisconnected)
	}
}
