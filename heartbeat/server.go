package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxPendingNotices bounds the undelivered notices (of distinct kinds and
// names) a session keeps.
const maxPendingNotices = 16

// Server is the backend side of the heartbeat: an http.Handler that accepts
// client connections, tracks liveness and idleness of every session, and
// calls back when a session connects, idles, disconnects, resumes or
// expires. Create it with NewServer; end it with Shutdown. Its methods are
// safe for concurrent use, including from its own callbacks (except
// Shutdown, which waits for the callbacks).
type Server struct {
	cfg      serverConfig
	upgrader websocket.Upgrader
	tokens   *minter
	epoch    time.Time // monotonic base of all deadlines

	mu         sync.Mutex
	sessions   map[string]*serverSession // the sessions whose client is connected here
	mailboxes  map[string]*mailbox       // callbacks queued or running, by session id
	sched      scheduler
	writers    sync.WaitGroup // the connections' writer goroutines (writer.go)
	active     int            // goroutines owned by the Server, handlers included
	closed     bool
	allDone    chan struct{} // made by Shutdown; closed when active drops to 0
	doneClosed bool

	// The store (store_server.go).
	own        *ownStore       // the Server's own store (no WithStore), else nil
	bg         context.Context // store calls; cancelled once the Server is done
	cancelBG   context.CancelFunc
	loopStop   chan struct{} // closed by Shutdown and Drain: the refresher and sweeper exit
	stopListen func()
	stopOnce   sync.Once
	leaving    map[string]*serverSession // detached here, detach not yet in the store
	claiming   map[string]*claiming      // hellos waiting for Store.Claim, by session id
	sweeping   bool                      // the sweeper runs (own store: only while a deadline is set)
	sweepWake  chan struct{}             // own store: a deadline became the earliest
}

// serverSession is the Server's state for one session id. Fields are guarded
// by Server.mu except lastActivity, which the reader stores without it.
type serverSession struct {
	srv          *Server
	id           string
	timer        timerEntry
	conn         *conn // current connection; nil unless state is SessionConnected
	state        SessionState
	ended        bool          // expired, released or shut down
	openedAt     time.Duration // since Server.epoch, like every time.Duration here
	since        time.Duration // entered state at
	expiresAt    time.Duration // while not connected: when OnExpire is due
	lastSeen     time.Duration // last frame of the latest connection, as of its detach
	lastActivity atomic.Int64
	idleBase     time.Duration // lastActivity that idleTimes counts from
	idleTimes    int
	// unreported counts the thresholds of idleBase handed to
	// postSharedIdleLocked whose Store.ReportIdle has not answered yet:
	// what this Server tells the store meanwhile (refresh, detach, drain)
	// leaves them out, so that a threshold still being recorded is never
	// taken as recorded (it would then fire nowhere).
	unreported int
	// storeWrite is closed when the store write in flight that carries
	// this connection's idle count (its refresh batch, or a
	// Store.ReportIdle) is answered; nil when none is. Each waits for the
	// other's, so the store never gets a count older than one it was
	// given: a refresh measured before a threshold never lands after its
	// record.
	storeWrite chan struct{}
	// knownActivity is the activity the store was given by or gave to
	// this connection, when activityKnown: the one its Claim gave, a
	// MessageTouch, or the one its last Refresh reported (which the store
	// keeps unless it has a later one told by a Touch). A detach of that same activity hands
	// nothing over (Detach.ActivityKnown).
	knownActivity time.Duration
	activityKnown bool
	resume        nonce // the currently valid resume token nonce
	hasJoin       bool
	hasResume     bool
	pending       []pendingNotice
	epoch         uint64 // the connection epoch from Store.Claim
	timing        Timing // the session's timeline from Store.Claim
}

type pendingNotice struct {
	key   string
	frame []byte
}

func (ss *serverSession) entry() *timerEntry { return &ss.timer }

// NewServer returns a Server configured by opts. It starts no goroutine until
// there is something to do.
func NewServer(opts ...ServerOption) (*Server, error) {
	cfg, err := newServerConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		tokens:    newMinter(cfg.tokenKeys),
		epoch:     time.Now(),
		sessions:  make(map[string]*serverSession),
		mailboxes: make(map[string]*mailbox),
		sched:     scheduler{wake: make(chan struct{}, 1)},
	}
	if cfg.store == nil {
		// A store of its own, on the Server's clock.
		s.own = newOwnStore(func() time.Time { return s.epoch.Add(s.now()) })
		s.cfg.store = s.own
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: helloTimeout,
		ReadBufferSize:   512,
		WriteBufferSize:  4096,
		WriteBufferPool:  new(sync.Pool),
		Subprotocols:     []string{SubprotocolV2, Subprotocol}, // preferred first
		CheckOrigin:      s.checkOrigin,
	}
	s.startStore()
	return s, nil
}

func (s *Server) now() time.Duration { return time.Since(s.epoch) }

// String describes the Server without revealing secrets.
func (s *Server) String() string {
	return "heartbeat.Server(sessions=" + strconv.Itoa(s.Len()) + ")"
}

// GoString is String, so %#v reveals no secrets either.
func (s *Server) GoString() string { return s.String() }

// ServeHTTP upgrades the request to a WebSocket connection speaking
// Subprotocol and handles its hello. It returns once the hello is accepted;
// the connection is then served by a reader goroutine owned by the Server
// (so the HTTP server's per-request memory is freed). It answers 403 to a
// browser Origin that is not allowed and 503 after Shutdown.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "heartbeat: server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.active++
	s.mu.Unlock()
	defer s.exit()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.cfg.logger.Debug("heartbeat: upgrade failed", "err", err, "origin", r.Header.Get("Origin"))
		return
	}
	c := s.accept(ws)
	if !c.handshake(r) {
		c.readLoop() // drains the closing connection
		return
	}
	// Serve the rest on a fresh goroutine so the HTTP server's per-request
	// state (buffers, request) is released: an idle connection then costs
	// one small stack.
	s.mu.Lock()
	s.goLocked(c.readLoop)
	s.mu.Unlock()
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || s.cfg.anyOrigin {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if s.cfg.origins == nil {
		return strings.EqualFold(u.Host, r.Host)
	}
	o := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, allowed := range s.cfg.origins {
		if o == allowed {
			return true
		}
	}
	return false
}

// Open creates the session id, or returns a fresh join token for an existing
// one (e.g. after a page reload). The client presents the token in its hello;
// it is good for one successful hello. For a session with no connected
// client, Open (re)starts the grace window: if no client connects within it,
// the session expires. The token is a secret: hand it to the client only.
//
// With a Store, Open, Send, Touch and Release wait for the store: for ctx,
// or at most 5 s if ctx has no deadline (Shutdown and Drain also end the
// wait). They fail with a *StoreError when the store cannot be reached or
// ctx ends during the call (the store may then have taken the step or
// not). Without one, the Server's own store answers at once: they do not
// wait. With or without one, a ctx that has already ended fails them with
// an error wrapping ctx.Err(), changing nothing.
func (s *Server) Open(ctx context.Context, id string) (token string, err error) {
	if err := validateSessionID("session id", id); err != nil {
		return "", err
	}
	if err := ctxDone(ctx, "open"); err != nil {
		return "", err
	}
	n := newNonce()
	token = s.tokens.mint(id, n)
	if err := s.openShared(ctx, id, n); err != nil {
		return "", err
	}
	return token, nil
}

// SetTokenKeys replaces the token key ring while the Server runs, with the
// rules of WithTokenKeys: tokens minted from now on are signed with
// current, and tokens signed with any of current and older are accepted.
// It closes no connection. To rotate without breaking a client, keep the
// previous current key among older for as long as a token it signed may
// still be presented (a welcome's resume token lives until the next
// hello), and across replicas rotate in the three phases of the package
// documentation ("Rotating the token key"): a token signed with a key the
// Server does not hold is refused with 4002. Invalid keys change nothing
// and return a *ValidationError.
func (s *Server) SetTokenKeys(current []byte, older ...[]byte) error {
	r, err := newKeyRing("SetTokenKeys", current, older)
	if err != nil {
		return err
	}
	s.tokens.ring.Store(r)
	return nil
}

// Send pushes a notice (queue, ready or custom) to the session's client. It
// does not wait for the write: the notice is queued and written by the
// Server's writers. If no client is connected it waits for the next
// connection; a newer notice of the same kind (and name) replaces an
// undelivered one. It fails with ErrUnknownSession if there is no session
// id, ErrTooManyNotices when more than 16 distinct notices are waiting, or a
// *ValidationError for a bad notice. With a Store it waits for the store
// when the client is not connected to this replica (see Open for ctx).
func (s *Server) Send(ctx context.Context, id string, n Notice) error {
	if err := n.validate(); err != nil {
		return err
	}
	if err := ctxDone(ctx, "send"); err != nil {
		return err
	}
	frame := encodeNotice(n)
	key := n.key()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	ss := s.sessions[id]
	if ss == nil || ss.conn == nil {
		s.mu.Unlock() // not connected here: the store keeps or routes it
		return s.notifyShared(ctx, id, key, frame)
	}
	defer s.mu.Unlock()
	if !ss.queueNotice(key, frame) {
		return fmt.Errorf("%w: session %q", ErrTooManyNotices, id)
	}
	s.kick(ss.conn)
	return nil
}

// queueNotice adds or replaces an undelivered notice. Caller holds Server.mu.
func (ss *serverSession) queueNotice(key string, frame []byte) bool {
	for i := range ss.pending {
		if ss.pending[i].key == key {
			// Keep the order of first arrival: a replacement is as urgent
			// as the notice it replaces.
			ss.pending[i].frame = frame
			return true
		}
	}
	if len(ss.pending) >= maxPendingNotices {
		return false
	}
	ss.pending = append(ss.pending, pendingNotice{key: key, frame: frame})
	return true
}

// Release ends the session: the client gets a released notice with reason,
// then a close frame with CloseReleased and the reason. Once Release returns
// no callback of the session starts (one already running may finish), and
// the session's tokens no longer work. reason must be valid UTF-8 of at most
// MaxReleaseReasonLen bytes. With a Store it waits for the store (see Open
// for ctx).
func (s *Server) Release(ctx context.Context, id string, reason string) error {
	if len(reason) > MaxReleaseReasonLen {
		return &ValidationError{Field: "reason", Rule: "must be at most " + strconv.Itoa(MaxReleaseReasonLen) + " bytes, got " + strconv.Itoa(len(reason))}
	}
	if err := checkText("reason", reason); err != nil {
		return err
	}
	if err := ctxDone(ctx, "release"); err != nil {
		return err
	}
	frame := encodeNotice(Notice{Kind: NoticeReleased, Reason: reason})
	return s.releaseShared(ctx, id, reason, frame)
}

// endLocked removes a session for good and returns its connection, if any,
// for the caller to close. With dropQueued, callbacks not yet started are
// discarded (Release, Shutdown); otherwise they still run (expiry, whose
// OnExpire was just queued). Caller holds Server.mu.
func (s *Server) endLocked(ss *serverSession, dropQueued bool) *conn {
	ss.ended = true
	if dropQueued {
		s.dropMailboxLocked(ss.id)
	}
	ss.pending = nil
	ss.hasJoin, ss.hasResume = false, false
	delete(s.sessions, ss.id)
	s.unschedule(ss)
	c := ss.conn
	ss.conn = nil
	return c
}

// Shutdown ends every session: each connected client gets a close frame with
// CloseGoingAway, and no callback starts after Shutdown begins. It then waits
// until every goroutine of the Server is gone (connection readers finish
// their close handshake, at most the write timeout) and queued callbacks have
// run. If ctx ends first, the remaining connections are cut and the context's
// error is returned. After Shutdown, Open, Send and Release return
// ErrServerClosed and new connections get 503. Do not call it from a
// callback: it would wait for itself until ctx ends. It does not stop the
// http.Server the handler is mounted on. It ends in the store (Store.End)
// the sessions whose client is connected here; with a Store shared by
// replicas, the others are left to the other replicas (for a rolling
// deploy, use Drain instead); the Server's own store goes with it.
func (s *Server) Shutdown(ctx context.Context) error {
	var ended []string
	s.mu.Lock()
	if !s.closed {
		s.closeDownLocked()
		s.cfg.logger.Debug("heartbeat: shutting down", "sessions", len(s.sessions))
		for _, ss := range s.sessions {
			ended = append(ended, ss.id)
			s.endLocked(ss, true)
		}
		for _, c := range s.connsLocked() {
			s.closeLocked(c, CloseGoingAway, "server shutting down")
		}
		s.checkDoneLocked()
	}
	done := s.allDone
	s.mu.Unlock()
	for _, id := range ended {
		if err := s.cfg.store.End(ctx, id, "server shutting down"); err != nil && !errors.Is(err, ErrUnknownSession) {
			s.cfg.logger.Warn("heartbeat: shutdown: ending a session in the store failed; it expires there after its grace", "session", id, "err", err)
		}
	}
	return s.waitDone(ctx, done, "shutdown")
}

// Drain closes every connection with CloseGoingAway and the reason "going
// away, reconnect", for a rolling deploy: it ends no session and releases
// nothing, and no callback starts after Drain begins. With a Store, the
// sessions stay in the store: each is recorded as disconnected (its grace,
// the reconnect window, counted from the client's last frame), and clients
// resume on another replica, which reports OnResume (or, if none comes
// back, OnExpire when the grace passes). If the store cannot be reached,
// the owner lease of the connections runs out instead (StoreOwnerTTL) with
// the same outcome. Without a Store, the sessions live only in the
// Server's own store and go with it, as with Shutdown. Drain then waits like Shutdown; after
// it the Server is closed (Open, Send and Release return ErrServerClosed).
// Calling Shutdown after Drain only waits.
func (s *Server) Drain(ctx context.Context) error {
	type handover struct {
		id string
		d  Detach
	}
	var held []handover
	s.mu.Lock()
	if !s.closed {
		s.closeDownLocked()
		s.cfg.logger.Debug("heartbeat: draining", "sessions", len(s.sessions))
		now := s.now()
		for _, ss := range s.sessions {
			if c := ss.conn; c != nil {
				ss.conn = nil // so that the reader's finish reports nothing
				activity := time.Duration(ss.lastActivity.Load())
				times := ss.recordedTimes()
				if activity != ss.idleBase {
					times = 0
				}
				held = append(held, handover{ss.id, Detach{
					Epoch:       ss.epoch,
					LastSeenAge: max(0, now-time.Duration(c.lastSeen.Load())),
					Grace:       s.cfg.grace,
					ActivityAge: max(0, now-activity),
					IdleTimes:   times,
				}})
			}
			s.unschedule(ss)
			delete(s.sessions, ss.id)
		}
		for _, c := range s.connsLocked() {
			s.closeLocked(c, CloseGoingAway, "going away, reconnect")
		}
		s.checkDoneLocked()
	}
	done := s.allDone
	s.mu.Unlock()
	for _, h := range held {
		if err := s.cfg.store.Detach(ctx, h.id, h.d); err != nil {
			s.cfg.logger.Warn("heartbeat: drain: handing a session over failed; its owner lease runs out instead", "session", h.id, "err", err)
		}
	}
	return s.waitDone(ctx, done, "drain")
}

// closeDownLocked marks the Server closed and stops what runs on its own:
// the store's refresher and sweeper, and callbacks not yet started.
// Caller holds Server.mu.
func (s *Server) closeDownLocked() {
	s.closed = true
	s.allDone = make(chan struct{})
	close(s.loopStop)
	for id := range s.mailboxes {
		s.dropMailboxLocked(id)
	}
}

// waitDone waits until every goroutine of the Server is gone and the writers
// are done, or ctx ends (the remaining connections are then cut).
func (s *Server) waitDone(ctx context.Context, done chan struct{}, what string) error {
	// Every reader is gone once done is closed, so no writer starts after
	// it; the remaining ones end with their write (or its deadline).
	wrote := make(chan struct{})
	go func() {
		<-done
		s.writers.Wait()
		close(wrote)
	}()
	select {
	case <-wrote:
		s.stopStore()
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		conns := s.connsLocked()
		s.mu.Unlock()
		for _, c := range conns {
			c.ws.Close()
		}
		s.stopStore() // cancels the store calls still running
		return fmt.Errorf("heartbeat: %s: %w", what, ctx.Err())
	}
}

// connsLocked lists the live connections: each one has a deadline in the
// heap until its close handshake times out. Caller holds Server.mu.
func (s *Server) connsLocked() []*conn {
	var conns []*conn
	for _, t := range s.sched.heap {
		if c, ok := t.(*conn); ok {
			conns = append(conns, c)
		}
	}
	return conns
}

// Session reports the state of session id; ok is false if there is none.
// It does not wait. Without a Store it reports every session of the
// Server (they are all in its own store). With a Store it reports this
// replica's view: only the sessions whose client is connected to this
// replica (or whose connection here has just ended) are known, so ok is
// false for a session that exists in the store with no client or with its
// client on another replica. After Shutdown or Drain there is none.
func (s *Server) Session(id string) (info SessionInfo, ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return SessionInfo{}, false
	}
	ss := s.sessions[id]
	if ss == nil {
		ss = s.leaving[id]
	}
	if ss != nil {
		info = s.infoLocked(ss)
		s.mu.Unlock()
		return info, true
	}
	s.mu.Unlock()
	if s.own == nil {
		return SessionInfo{}, false
	}
	v, ok := s.own.view(id)
	if !ok {
		return SessionInfo{}, false
	}
	info = SessionInfo{
		ID:           id,
		State:        v.state,
		Connected:    v.state == SessionConnected,
		OpenedAt:     v.openedAt,
		Since:        v.since,
		LastActivity: v.act,
		IdleTimes:    v.idleTimes,
	}
	if v.state != SessionConnected {
		info.ExpiresAt = v.expiresAt
	}
	if v.state != SessionWaiting || !v.lastSeen.IsZero() {
		info.LastSeen = v.lastSeen
	}
	return info, true
}

// infoLocked describes a session held here. Caller holds Server.mu.
func (s *Server) infoLocked(ss *serverSession) SessionInfo {
	lastSeen := ss.lastSeen
	if ss.conn != nil {
		lastSeen = time.Duration(ss.conn.lastSeen.Load())
	}
	activity := time.Duration(ss.lastActivity.Load())
	times := ss.idleTimes
	if activity != ss.idleBase {
		times = 0
	}
	info := SessionInfo{
		ID:           ss.id,
		State:        ss.state,
		Connected:    ss.state == SessionConnected,
		OpenedAt:     s.epoch.Add(ss.openedAt),
		Since:        s.epoch.Add(ss.since),
		LastActivity: s.epoch.Add(activity),
		IdleTimes:    times,
	}
	if ss.state != SessionConnected {
		info.ExpiresAt = s.epoch.Add(ss.expiresAt)
	}
	if ss.state != SessionWaiting || lastSeen != 0 {
		info.LastSeen = s.epoch.Add(lastSeen)
	}
	return info
}

// Len reports the number of sessions (waiting, connected or disconnected).
// It does not wait. Without a Store it counts every session of the
// Server. With a Store it reports this replica's view: the sessions whose
// client is connected to this replica, not the store's total
// (MemoryStore.Len or the store's own count gives that). After Shutdown or
// Drain it is 0.
func (s *Server) Len() int {
	s.mu.Lock()
	closed, n := s.closed, len(s.sessions)
	s.mu.Unlock()
	switch {
	case closed:
		return 0
	case s.own != nil:
		return s.own.count()
	}
	return n
}

// expire handles the idle thresholds of a session held here (those of a
// session with no client are the store's, found by the sweeper). Caller
// holds Server.mu.
func (ss *serverSession) expire(now time.Duration, _ *effects) {
	s := ss.srv
	if ss.ended {
		return
	}
	activity := time.Duration(ss.lastActivity.Load())
	if activity != ss.idleBase {
		ss.idleBase, ss.idleTimes, ss.unreported = activity, 0, 0
	}
	threshold := s.cfg.idleThreshold
	for n := int((now - activity) / threshold); ss.idleTimes < n; {
		ss.idleTimes++
		at := activity + time.Duration(ss.idleTimes)*threshold
		ev := Event{SessionID: ss.id, At: s.epoch.Add(at), Times: ss.idleTimes}
		if s.own == nil {
			s.postSharedIdleLocked(ss, activity, ev)
			continue
		}
		s.postLocked(ss.id, s.cfg.onIdle, ev)
		s.sendIdleNoticeLocked(ss, ev.Times)
	}
	s.schedule(ss, activity+time.Duration(ss.idleTimes+1)*threshold)
}

// recordedTimes is the idle count of idleBase to give the store: the
// thresholds fired, less those still being recorded (with a shared store).
func (ss *serverSession) recordedTimes() int { return ss.idleTimes - ss.unreported }

// sendIdleNoticeLocked sends the idle notice of threshold times to the
// client of ss, if one is connected: idle notices are not kept. Caller
// holds Server.mu.
func (s *Server) sendIdleNoticeLocked(ss *serverSession, times int) {
	if ss.conn != nil {
		ss.conn.out = append(ss.conn.out, encodeNotice(Notice{Kind: NoticeIdle, Times: times}))
		s.kick(ss.conn)
	}
}

// postLocked queues a callback on the mailbox of session id: the callbacks
// of one session run one at a time, in order, whether the connection or
// the store's sweep found them, and a slow one delays only its session.
// None starts once the Server is closed. Caller holds Server.mu.
func (s *Server) postLocked(id string, cb func(Event), ev Event) {
	if cb == nil {
		return
	}
	s.postFuncLocked(id, func() { cb(ev) })
}

// postFuncLocked queues f on the mailbox of session id, as postLocked
// does a callback. Caller holds Server.mu.
func (s *Server) postFuncLocked(id string, f func()) {
	if s.closed {
		return
	}
	mb := s.mailboxes[id]
	if mb == nil {
		mb = new(mailbox)
		s.mailboxes[id] = mb
	}
	if mb.post(f) {
		s.goLocked(func() {
			mb.drain(&s.mu)
			s.mu.Lock()
			if s.mailboxes[id] == mb && mb.idle() {
				delete(s.mailboxes, id)
			}
			s.mu.Unlock()
		})
	}
}

// dropMailboxLocked discards the callbacks of session id not yet started
// (one running finishes). Caller holds Server.mu.
func (s *Server) dropMailboxLocked(id string) {
	if mb := s.mailboxes[id]; mb != nil {
		mb.drop()
		delete(s.mailboxes, id)
	}
}

// goLocked runs f on a goroutine owned by the Server: Shutdown waits for it.
// Caller holds Server.mu.
func (s *Server) goLocked(f func()) {
	s.active++
	go func() {
		defer s.exit()
		f()
	}()
}

// exit accounts for the end of a goroutine started by goLocked or of a
// ServeHTTP call.
func (s *Server) exit() {
	s.mu.Lock()
	s.active--
	s.checkDoneLocked()
	s.mu.Unlock()
}

func (s *Server) checkDoneLocked() {
	if s.closed && s.active == 0 && !s.doneClosed {
		s.doneClosed = true
		close(s.allDone)
	}
}
