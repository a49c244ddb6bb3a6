package heartbeat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Store keeps the part of the sessions that several Servers (replicas of one
// backend) must share, so that any replica serves any user: the session
// records, the token nonces, which replica and which connection own a
// session, the grace and idle deadlines, and the notices waiting for a
// client that is away. Give one to a Server with [WithStore]; package
// car/redisstore implements it on Redis, and [NewMemoryStore] in memory
// (several Servers of one process).
//
// A Server with a Store keeps only the sessions whose client is connected
// to it (its connections, their ping and liveness timers, and the idle
// count of a connected user) and asks the store for every decision that
// another replica could take at the same time. Every method that decides
// something is one atomic step of the store, timed by the store's own
// clock: durations go in and out as ages ("the client's last frame was
// 3.2 s ago"), never as a replica's wall-clock time, so clock skew between
// replicas changes nothing.
//
// Every method fails with a *StoreError when the store cannot be reached
// (or did not answer within ctx); other errors are the package's sentinels
// named in each method's doc. Methods are safe for concurrent use. Session
// ids are valid (see [MaxSessionIDLen]); nonces are opaque strings of at
// most 64 bytes (hashes of the token nonces, never the tokens).
type Store interface {
	// Replica is this replica's id, unique among the Servers that share
	// the store.
	Replica() string

	// Listen registers the function that receives the messages the store
	// routes to this replica ([StoreMessage]). It is called once, by
	// NewServer, before any other method; deliver must not block for long
	// (the Server hands each message to a goroutine of its own). stop
	// unregisters it.
	Listen(deliver func(StoreMessage)) (stop func())

	// Open creates the session in state waiting, or gives an existing one
	// a new join nonce. For a session with no connected client it
	// (re)starts the grace: the session expires Timing.Window from now
	// unless a client claims it.
	Open(ctx context.Context, id, join string, t Timing) error

	// Claim is a hello: in one atomic step it checks that used is the
	// session's join nonce or its current resume nonce, consumes it (a
	// join nonce for good; the resume nonce is replaced by resume), makes
	// this replica the owner with a new connection epoch, and takes the
	// undelivered notices. If another replica owned a connection of the
	// session, the store tells it (a MessageReplaced with the old epoch),
	// and it closes that connection with CloseReplaced. It fails with
	// ErrUnknownSession if the session does not exist (expired, released,
	// never opened) and ErrTokenUsed if used is not currently valid.
	Claim(ctx context.Context, id, used, resume string) (Claim, error)

	// Detach records that this replica's connection epoch of the session
	// ended: the session becomes disconnected and expires d.Grace after
	// the client's last frame (never before now), unless a client claims
	// it. If epoch is no longer the current one (another connection took
	// over), only the activity counts, and only if d.ActivityKnown is
	// false: if the activity d.ActivityAge ago is later than the one the
	// store has, the store records it (the idle
	// count starts again from it, with no threshold reported: with no
	// client connected, the next idle threshold is Timing.Idle after it)
	// and, if a client is connected, tells its replica (MessageTouch with
	// d.ActivityAge), so that the idle count follows the user to the last
	// activity the old connection saw. An activity that is not later (the
	// same or older), or a known one, changes nothing and tells nobody.
	// Nothing else of d counts (its grace, last frame, idle count and
	// revoke are ignored).
	Detach(ctx context.Context, id string, d Detach) error

	// Refresh tells the store that this replica still holds these
	// connections; it is called for all of them at least every
	// StoreRefreshInterval. A session whose owner stops refreshing it
	// (the replica died) becomes disconnected when the store's owner
	// lease runs out, its grace counted from the last frame reported, and
	// a Sweep on any replica reports it (DueLost). If the store lost its
	// data (restarted empty), Refresh recreates the sessions from what it
	// is given and reports Rebuilt. The result has one status per held
	// session, in order.
	Refresh(ctx context.Context, held []Held) (RefreshResult, error)

	// ReportIdle records an idle threshold of a connected user before its
	// owner fires it: this replica's connection epoch of the session
	// counted times thresholds since the user's activity activityAge ago,
	// and the store keeps that activity and count, as a Refresh would
	// (both leave a later activity told by a Touch in place; see Touch). It
	// reports false, and the owner fires nothing, if that connection is no
	// longer the session's (another one claimed it, a Sweep counted it
	// lost, or the session is gone): whoever has the session now counts
	// from the store's record. So a threshold fires on one replica only,
	// also when the connection moves, or its owner dies, right after it.
	ReportIdle(ctx context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error)

	// Touch records user activity now: the idle count starts again. If a
	// client of the session is connected, the store tells its replica
	// (MessageTouch), this one too. Until that owner reports an activity
	// as late (it counts from the message), its reports of an earlier one
	// (a Refresh, Detach or ReportIdle sent before the message came) change
	// neither the activity nor the count, for StoreOwnerTTL at most: a
	// delayed report never brings the next idle threshold forward, and an
	// owner whose message was lost is back in step with the store after
	// that. The same holds for the activity a replaced connection hands
	// over (Detach). It fails with ErrUnknownSession if there is no session
	// id.
	Touch(ctx context.Context, id string) error

	// Notify delivers a notice frame: to the owner replica (MessageNotice)
	// if a client is connected and that replica is there, else it keeps it
	// (replacing one with the same key) for Claim to hand to the next
	// connection. Route or keep is decided in one step with Claim: a
	// notice is never kept after a Claim took the kept ones. It fails with
	// ErrUnknownSession if there is no session id and ErrTooManyNotices
	// if 16 notices of other keys are already kept.
	Notify(ctx context.Context, id, key string, frame []byte) error

	// End removes the session for good (Release, Shutdown): its nonces
	// stop working and no deadline of it fires again. If its client is
	// connected to another replica, the store tells it (MessageRelease
	// with reason). It fails with ErrUnknownSession if there is no
	// session id.
	End(ctx context.Context, id, reason string) error

	// Sweep takes up to limit due deadlines of any session, whichever
	// replica set them: each is handed to exactly one caller (the step
	// that takes it also moves the session on: the next idle threshold,
	// disconnected, or gone). Idle thresholds of a connected session are
	// its owner's job and never swept, except after the owner died.
	Sweep(ctx context.Context, limit int) ([]Due, error)
}

// Timing is a session's timeline, recorded with it so that whichever
// replica sweeps its deadlines uses the settings of the replica that opened
// it.
type Timing struct {
	// Window is the reconnect window (WithReconnectWindow): the grace
	// after Open and after a lost connection.
	Window time.Duration
	// Idle is the idle threshold (WithIdleThreshold).
	Idle time.Duration
}

// Claim is the outcome of a successful Store.Claim.
type Claim struct {
	// Resumed: a client had connected before (the session was not
	// waiting), so this is OnResume rather than OnConnect.
	Resumed bool
	// Epoch numbers this connection of the session; later calls about it
	// (Detach, Refresh) carry it, so that a stale replica changes nothing.
	Epoch uint64
	// PrevOwner is the replica whose connection this one replaces ("" if
	// none). If it is another replica, the store has told it.
	PrevOwner string
	// PrevEpoch is the replaced connection's epoch.
	PrevEpoch uint64
	// PrevGone: no replica received the message for PrevOwner (it is
	// gone, and its connection with it), so the Server reports
	// OnDisconnect with ReasonReplaced for that connection itself, before
	// OnResume.
	PrevGone bool
	// ActivityAge is how long ago the user was last active, and IdleTimes
	// the idle thresholds already reported since then: the idle count
	// follows the user from replica to replica.
	ActivityAge time.Duration
	IdleTimes   int
	// OpenedAge is how long ago the session was first opened, for
	// SessionInfo.OpenedAt; zero if the store does not record it (the
	// hello's time is then reported).
	OpenedAge time.Duration
	// Timing is the session's timeline, as recorded by Open.
	Timing Timing
	// Notices are the undelivered notice frames, in order of first
	// arrival; the store no longer keeps them.
	Notices [][]byte
}

// Detach describes the end of a connection (Store.Detach).
type Detach struct {
	Epoch uint64
	// LastSeenAge is how long ago the client's last frame arrived; the
	// grace counts from it.
	LastSeenAge time.Duration
	// Grace is the reload grace or the reconnect window, by how the
	// connection ended.
	Grace time.Duration
	// ActivityAge and IdleTimes hand the idle count back to the store.
	ActivityAge time.Duration
	IdleTimes   int
	// ActivityKnown: the activity ActivityAge ago is one the store already
	// has (this connection reported it in a Refresh, or got it from the
	// store), and the connection saw none since. A Detach whose epoch is
	// no longer current then hands nothing over: the same activity,
	// measured again, can come out a few milliseconds "later" (a store
	// may keep milliseconds, and an age ages during the call), and taken
	// as new it would start the idle count again, reporting thresholds
	// already reported.
	ActivityKnown bool
	// Revoke invalidates the resume nonce (a client closed for a flood):
	// only a new Open brings the user back.
	Revoke bool
}

// Held is one connection this replica holds (Store.Refresh): enough to
// recreate the session if the store lost it.
type Held struct {
	Session     string
	Epoch       uint64
	Resume      string // the current resume nonce
	LastSeenAge time.Duration
	ActivityAge time.Duration
	IdleTimes   int
	Timing      Timing
}

// HeldStatus is what the store says about one held connection.
type HeldStatus uint8

const (
	// HeldOK: the connection still owns its session.
	HeldOK HeldStatus = iota
	// HeldRevived: the store had counted the owner as gone (refreshes
	// failed for longer than its owner lease) and reported the session
	// lost (OnDisconnect on the sweeping replica); it is connected again,
	// and the owner reports OnResume.
	HeldRevived
	// HeldGone: the session no longer exists (it expired or was
	// released); the owner closes the connection with CloseExpired.
	HeldGone
	// HeldReplaced: another connection owns the session; the owner closes
	// this one with CloseReplaced.
	HeldReplaced
)

// RefreshResult is the outcome of Store.Refresh.
type RefreshResult struct {
	// Status has one entry per held connection, in order.
	Status []HeldStatus
	// Rebuilt reports that the store had lost its data and recreated the
	// held sessions; the Server logs it at error level.
	Rebuilt bool
}

// DueKind says which deadline a Due is.
type DueKind uint8

const (
	// DueIdle: an idle threshold passed (OnIdle with Times).
	DueIdle DueKind = iota + 1
	// DueLost: the owner replica stopped refreshing the session's
	// connection; it is disconnected now (OnDisconnect with
	// ReasonConnectionLost, LastSeen and ExpiresAt).
	DueLost
	// DueExpired: the grace passed with no client (OnExpire); the session
	// is gone.
	DueExpired
)

// Due is one deadline taken by Store.Sweep.
type Due struct {
	Kind    DueKind
	Session string
	// At is when it happened by the store's clock: the threshold crossing
	// for DueIdle, the detection otherwise.
	At time.Time
	// Times is the idle count (DueIdle).
	Times int
	// LastSeen and ExpiresAt describe a DueLost.
	LastSeen, ExpiresAt time.Time
}

// StoreMessageKind says what a StoreMessage asks of its replica.
type StoreMessageKind uint8

const (
	// MessageReplaced: close the connection of Session with Epoch (code
	// CloseReplaced): a newer one on another replica took over.
	MessageReplaced StoreMessageKind = iota + 1
	// MessageNotice: write Frame to the connection of Session.
	MessageNotice
	// MessageRelease: the session was released with Reason on another
	// replica: send the released notice and close with CloseReleased.
	MessageRelease
	// MessageTouch: user activity was recorded in the store (Touch, or a
	// replaced connection's handover) while this replica holds, or is
	// claiming, the session's connection.
	MessageTouch
)

// StoreMessage is a message the store routes to the replica holding a
// session's connection.
type StoreMessage struct {
	Kind    StoreMessageKind
	Session string
	Epoch   uint64 // MessageReplaced
	Key     string // MessageNotice
	Frame   []byte // MessageNotice
	Reason  string // MessageRelease
	// ActivityAge is how long before the store sent a MessageTouch the
	// activity was (0: at once).
	ActivityAge time.Duration
}

// Timings of a Server with a Store.
const (
	// StoreRefreshInterval is how often a Server refreshes the
	// connections it holds (Store.Refresh).
	StoreRefreshInterval = 3 * time.Second
	// StoreSweepInterval is how often a Server sweeps due deadlines
	// (Store.Sweep), so a deadline fires at most this late (plus the
	// store's round trip).
	StoreSweepInterval = time.Second
	// StoreOwnerTTL is the owner lease a Store should give a refreshed
	// connection: a replica that stops refreshing counts as gone this long
	// after its last refresh.
	StoreOwnerTTL = 10 * time.Second
	// storeTimeout bounds one store call made by the Server on its own
	// (hello, detach, refresh, sweep), and one made by Open, Send, Touch
	// or Release whose ctx has no deadline.
	storeTimeout = 5 * time.Second
	// sweepBatch is the most deadlines one Sweep takes.
	sweepBatch = 256
)

// ErrTokenUsed is returned by Store.Claim when the token's nonce is not
// currently valid: already used, or superseded by a newer one.
var ErrTokenUsed = errors.New("heartbeat: token already used or superseded")

// StoreError reports that the session store could not be reached or did
// not answer in time. Match it with errors.As; Unwrap gives the cause.
// While the store is unreachable, connected clients stay connected, new
// hellos are refused with code 1013 (try again later), and Open, Send,
// Touch and Release fail with it.
type StoreError struct {
	// Op names the store call, e.g. "claim".
	Op string
	// Err is the cause.
	Err error
}

func (e *StoreError) Error() string {
	return "heartbeat: session store unreachable: " + e.Op + ": " + e.Err.Error()
}

func (e *StoreError) Unwrap() error { return e.Err }

// WithStore makes the Server share its sessions through st with the other
// replicas of the backend (see [Store] and the package doc, "Several
// replicas"). Give every replica the same token keys (WithTokenKeys). One
// Store per Server. Without this option a Server keeps its sessions in its
// own memory, as a single process.
func WithStore(st Store) ServerOption {
	return serverOption("WithStore", func(c *serverConfig) error {
		if st == nil {
			return &ValidationError{Field: "WithStore", Rule: "store must not be nil"}
		}
		c.store = st
		return nil
	})
}

// nonceID is what a store keeps of a token nonce: a hash, so that reading
// the store gives no token (which needs the key anyway).
func nonceID(n nonce) string {
	h := sha256.Sum256(n[:])
	return hex.EncodeToString(h[:16])
}

// storeCtx is the context of a store call the Server makes on its own:
// storeTimeout at most, cancelled when the Server is done.
func (s *Server) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.bg, storeTimeout)
}

// callCtx is the context of a store call made for a caller's ctx (Open,
// Send, Touch, Release): ctx, capped at storeTimeout only if it has no
// deadline, and also cancelled when the Server is done.
func (s *Server) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, storeTimeout)
	}
	stop := context.AfterFunc(s.bg, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// ctxDone returns an error wrapping ctx.Err() if ctx has already ended.
func ctxDone(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("heartbeat: %s: %w", op, err)
	}
	return nil
}
