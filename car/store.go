package car

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// The lease store: where the decisions that several replicas of a backend
// must share are made. Every manager runs on one: without WithLeaseStore,
// an in-memory store of its own that nobody shares (one replica, the model
// described in the package documentation). Every decision that must be
// made once across replicas is one atomic step of the store: a new lease
// and its generation, the release claim, the head of the queue, admission.
// The manager keeps a local copy of the leases it works on; the store is
// the truth.

// LeaseRecord is a lease as a LeaseStore keeps it.
type LeaseRecord struct {
	UserId string //nolint:revive // the API's spelling
	// Generation numbers the user's leases: every new lease of a project
	// gets a larger one, from one counter. It is the lease's fencing token;
	// its heartbeat session id is UserId#Generation.
	Generation uint64
	// State is queued, starting, active or releasing (a store does not
	// track disconnections: the heartbeat does).
	State LeaseState
	// Owner is the replica that last started or admitted the lease.
	Owner string
	// Holder is the replica whose hold runs: the starter while starting,
	// the claimer while releasing. HoldLeft is what remains of the hold,
	// measured on the store's clock when the record was read.
	Holder   string
	HoldLeft time.Duration
	// Applied reports that ApplyConcurrent may have run for the lease: its
	// release needs DestroySession. A lease whose starter's hold ran out
	// counts as applied.
	Applied bool
	// Ticket orders the queue; 0 for a lease that never queued.
	Ticket uint64
	// Reason is why the lease is being released (state releasing).
	Reason ReleaseReason
	// Request is what Start was called with, for a replica that admits or
	// reattaches the user; ServerSession the last CreateSession's answer.
	Request       StartRequest
	ServerSession string
}

// SessionID is the lease's heartbeat session id: UserId#Generation.
func (r LeaseRecord) SessionID() string { return sessionID(r.UserId, r.Generation) }

func sessionID(user string, gen uint64) string { return user + "#" + strconv.FormatUint(gen, 10) }

// ParseSessionID splits a lease's heartbeat session id into its UserId and
// generation.
func ParseSessionID(id string) (userID string, gen uint64, ok bool) {
	i := strings.LastIndexByte(id, '#')
	if i <= 0 {
		return "", 0, false
	}
	gen, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || gen == 0 {
		return "", 0, false
	}
	return id[:i], gen, true
}

// CreateLease asks a LeaseStore for a new lease.
type CreateLease struct {
	Request StartRequest
	// Queue, when someone is waiting in the queue, puts the new lease at
	// its end (state queued) instead of starting it: nobody overtakes a
	// waiting user. QueueLimit bounds the queue then (ErrQueueFull).
	Queue      bool
	QueueLimit int
	// Hold is how long the new lease is held by this replica while it
	// starts (state starting).
	Hold time.Duration
}

// LeaseUpdate is a state change for LeaseStore.Update.
type LeaseUpdate struct {
	State         LeaseState // starting, active or queued
	Hold          time.Duration
	Applied       bool   // ApplyConcurrent may have run
	ServerSession string // with state active
}

// ClaimRequest asks for the release claim of one lease.
type ClaimRequest struct {
	UserId     string //nolint:revive
	Generation uint64
	Reason     ReleaseReason
	// TTL is how long the claim lasts. A claimer that dies with the claim
	// held leaves the lease in state releasing until the TTL ends; then any
	// replica may claim the same generation again.
	TTL time.Duration
	// IfHolding refuses the claim of a queued lease (NotHolding): an idle
	// queued user may wait.
	IfHolding bool
}

// Claim is a LeaseStore's answer to a ClaimRequest. Exactly one of Won,
// Gone, NotHolding, Lost is true, or none, and then RetryIn says when the claim
// may be tried again.
type Claim struct {
	// Won: this replica now holds the release of the lease. Record is the
	// lease as it was claimed (Applied says whether DestroySession is
	// needed). TakenOver reports that an earlier claim of the same
	// generation had expired: its claimer may have called DestroySession
	// already.
	Won       bool
	TakenOver bool
	// Gone: the lease no longer exists (it was released, or the user has a
	// newer one).
	Gone bool
	// NotHolding: IfHolding was set and the lease is queued.
	NotHolding bool
	// Lost: the store has no such lease and never handed out its
	// generation: it lost its data (a Redis restarted empty). The claimer
	// releases the lease on what it knows, as if it had won, and finishes
	// it without the store.
	Lost bool
	// RetryIn: another replica holds the lease (starting or releasing) for
	// that long yet.
	RetryIn time.Duration
	Record  LeaseRecord
}

// LeaseEventKind says what changed in a LeaseStore.
type LeaseEventKind string

// Lease events.
const (
	// LeaseEventReleased: a lease was finished (deleted) on some replica.
	LeaseEventReleased LeaseEventKind = "released"
	// LeaseEventAdmitted: a queued lease got its concurrency on some
	// replica.
	LeaseEventAdmitted LeaseEventKind = "admitted"
	// LeaseEventQueue: the queue changed (a join, a departure): positions
	// may have moved, the head may try again.
	LeaseEventQueue LeaseEventKind = "queue"
)

// LeaseEvent is a change a LeaseStore reports to every replica's Watch.
type LeaseEvent struct {
	Kind       LeaseEventKind
	UserId     string //nolint:revive
	Generation uint64
	Replica    string // the replica that made the change
}

// LeaseStore keeps the leases and the queue of one project for every
// replica of a backend. Each replica's manager has its own LeaseStore value
// (Replica tells them apart), all backed by the same state. Every method
// that changes something is one atomic step of the store. Methods return a
// *StoreError when the store cannot be reached; the manager then fails
// Start fast and retries releases until they are done.
//
// The package redisstore implements it on Redis; NewMemoryLeaseStore in
// one process's memory (several managers in one process, tests).
type LeaseStore interface {
	// Replica is this replica's id: the Owner and Holder it writes.
	Replica() string
	// Create makes a new lease for a user who has none, with a new
	// generation, in state starting (held by this replica for Hold) or, if
	// Queue is set and the queue is not empty, queued at its end. If the
	// user already has a lease, it returns that lease and false, changing
	// nothing. A full queue is ErrQueueFull.
	Create(ctx context.Context, c CreateLease) (LeaseRecord, bool, error)
	// List returns every lease of the project (Shutdown's release-all on
	// the last replica).
	List(ctx context.Context) ([]LeaseRecord, error)
	// Get returns the user's lease, if any.
	Get(ctx context.Context, userID string) (LeaseRecord, bool, error)
	// Update moves the lease userID#gen to u.State (fenced by gen):
	//   - starting: held by this replica for u.Hold (refused with
	//     ErrLeaseHeld while another replica holds it);
	//   - active: the hold ends, the lease leaves the queue, Owner becomes
	//     this replica, ServerSession is recorded; a queued lease that got
	//     its concurrency is reported as LeaseEventAdmitted;
	//   - queued: the hold ends and the lease (re)joins the queue keeping
	//     its ticket if it had one (a user who comes back keeps its place).
	// Applied, once set, stays set. It fails with ErrLeaseGone if the lease
	// is not there or is being released.
	Update(ctx context.Context, userID string, gen uint64, u LeaseUpdate) (LeaseRecord, error)
	// Claim takes the release of a lease: it wins once per generation,
	// unless the claim expires first (see ClaimRequest.TTL). Winning moves
	// the lease to releasing and takes it out of the queue. A claim by the
	// replica that already holds it renews it.
	Claim(ctx context.Context, r ClaimRequest) (Claim, error)
	// Finish deletes the lease userID#gen whose claim this replica holds
	// and reports LeaseEventReleased. It returns false, changing nothing,
	// if the lease is gone or another replica's claim replaced this one's.
	Finish(ctx context.Context, userID string, gen uint64) (bool, error)
	// Positions returns the 1-based queue positions of the users (0 for a
	// user not queued).
	Positions(ctx context.Context, userIDs []string) ([]int, error)
	// QueueLen returns the number of queued users.
	QueueLen(ctx context.Context) (int, error)
	// LockHead takes, or renews, the head lock for ttl: one replica at a
	// time admits the head of the queue. It returns the head's lease (false
	// when the queue is empty), or ErrHeadLocked while another replica
	// holds the lock. A head left starting by an admitter whose hold ran
	// out goes back to queued.
	LockHead(ctx context.Context, ttl time.Duration) (LeaseRecord, bool, error)
	// UnlockHead gives the head lock up, if this replica holds it.
	UnlockHead(ctx context.Context) error
	// Watch calls f for every LeaseEvent of any replica, until stop is
	// called. f must not block.
	Watch(f func(LeaseEvent)) (stop func())
}

// OrphanLister is an optional part of a LeaseStore: Orphans returns up to
// limit leases being released whose claim has run out (their claimer died
// or lost the store). The replica holding the head lock takes their
// releases over. Without it the manager reads them from List.
type OrphanLister interface {
	Orphans(ctx context.Context, limit int) ([]LeaseRecord, error)
}

// LeaseRebuilder is an optional part of a LeaseStore that can lose its
// data (a Redis restarted empty). The manager registers held with it;
// when the store finds its data lost, it calls held before it answers
// anything else on that replica, writes back the leases held returns (the
// queued ones keep their Ticket, in the order held lists them), and moves
// its generation counter past every generation it knows, so that none is
// handed out twice. held returns the leases this replica has on its books:
// active ones (State active, with Request and ServerSession), its queued
// users in queue order, the leases it is starting (State starting) and the
// releases it carries out (State releasing, Holder this replica); HoldLeft
// is how long the hold or claim must last. held does not block and must
// not be called by the store with a lock the manager may wait on.
type LeaseRebuilder interface {
	OnDataLoss(held func() []LeaseRecord) (stop func())
}

// Errors of a LeaseStore.
var (
	// ErrLeaseGone: the lease of that generation is not in the store, or is
	// being released.
	ErrLeaseGone = errors.New("car: lease store: the lease is gone")
	// ErrLeaseHeld: another replica holds the lease (it is starting or
	// being released there).
	ErrLeaseHeld = errors.New("car: lease store: the lease is held by another replica")
	// ErrHeadLocked: another replica holds the head lock of the queue.
	ErrHeadLocked = errors.New("car: lease store: another replica admits the head of the queue")
)

// StoreError reports that the lease store (or the heartbeat's session
// store) could not be reached or failed: Start returns it at once rather
// than waiting, and the manager retries what it must record (releases)
// until the store is back.
type StoreError struct {
	Op  string // the store operation, e.g. "create", "claim"
	Err error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("car: lease store unreachable (%s): %v", e.Op, e.Err)
}

func (e *StoreError) Unwrap() error { return e.Err }

// Store is a shared store for both halves of a replica: the manager's
// leases and its heartbeat server's sessions. package redisstore's *Store
// is one.
type Store interface {
	Leases() LeaseStore
	Sessions() heartbeat.Store
}

// WithStore makes the manager one replica of a backend whose replicas
// share s: WithLeaseStore(s.Leases()) for the manager, and
// heartbeat.WithStore(s.Sessions()) for the heartbeat server the manager
// runs, so that any replica accepts any client's hello and the grace and
// idle deadlines fire on exactly one replica. Both views must name the same
// replica.
func WithStore(s Store) ManagerOption {
	return func(c *managerConfig) error {
		if s == nil {
			return errors.New("WithStore: store must not be nil")
		}
		ls, hs := s.Leases(), s.Sessions()
		if ls == nil || hs == nil {
			return errors.New("WithStore: Leases and Sessions must not be nil")
		}
		if ls.Replica() != hs.Replica() {
			return fmt.Errorf("WithStore: Leases is replica %q and Sessions replica %q: they must be the same", ls.Replica(), hs.Replica())
		}
		if err := WithLeaseStore(ls)(c); err != nil {
			return err
		}
		c.heartbeat = append(c.heartbeat, heartbeat.WithStore(hs))
		return nil
	}
}

// WithLeaseStore shares the manager's leases and queue with the other
// replicas of the backend through s: any replica serves any user, each
// release is claimed once across replicas, and the queue is one FIFO. Each
// replica has its own s (its Replica id). Pair it with a shared heartbeat
// session store (WithStore does both).
func WithLeaseStore(s LeaseStore) ManagerOption {
	return func(c *managerConfig) error {
		if s == nil {
			return errors.New("WithLeaseStore: store must not be nil")
		}
		if s.Replica() == "" {
			return errors.New("WithLeaseStore: the store's Replica id must not be empty")
		}
		c.store = s
		return nil
	}
}

// WithStoreTimeout bounds each call the manager makes to its LeaseStore
// (default 2 s): a Start while the store is unreachable fails within it.
func WithStoreTimeout(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithStoreTimeout: must be positive")
		}
		c.storeTimeout = d
		return nil
	}
}

// WithReleaseClaimTTL sets how long a release claim lasts (default: the
// API timeout plus WithReleaseRetryMax, 60 s): after a claimer died, the
// release is finished by another replica at most that long after its last
// attempt. The claimer renews it before each DestroySession attempt.
func WithReleaseClaimTTL(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d < time.Second {
			return errors.New("WithReleaseClaimTTL: must be at least 1 s")
		}
		c.claimTTL = d
		return nil
	}
}

// storeErr wraps a store failure that is not one of the store's answers.
func storeErr(op string, err error) error {
	if err == nil || errors.Is(err, ErrLeaseGone) || errors.Is(err, ErrLeaseHeld) || errors.Is(err, ErrHeadLocked) || errors.Is(err, ErrQueueFull) {
		return err
	}
	var se *StoreError
	if errors.As(err, &se) {
		return err
	}
	return &StoreError{Op: op, Err: err}
}
