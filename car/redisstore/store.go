package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the replica liveness key.
const (
	// AliveTTL is the expiry of a replica's liveness key: a replica that
	// stops refreshing it counts as dead this long after its last refresh.
	AliveTTL = 10 * time.Second
	// AliveRefresh is how often a replica refreshes its liveness key.
	AliveRefresh = 3 * time.Second
)

const (
	maxProjectLen = 256
	maxReplicaLen = 64
)

// ValidationError reports a bad argument or option of [New]: which one, and
// the rule it broke.
type ValidationError struct {
	// Field names the argument or option, e.g. "project" or
	// "WithReplicaID".
	Field string
	// Rule says what is required.
	Rule string
}

func (e *ValidationError) Error() string {
	return "redisstore: invalid " + e.Field + ": " + e.Rule
}

// Option configures a [Store].
type Option func(*config) error

type config struct {
	replica string
	logger  *slog.Logger

	// for tests of this package
	aliveTTL     time.Duration
	aliveRefresh time.Duration
	onRefresh    func(error) // called after each liveness refresh
	exactID      bool        // the id as given, with no per-process suffix
}

// WithReplicaID sets the stable part of this replica's id (default: "r",
// e.g. a pod name): 1 to 64 letters, digits, '.', '_' or '-'. The Store
// adds a suffix of its own, a '-' and 8 hex digits drawn when it is made
// ([Store.Replica] is "pod-a-1f0c9e2b"), so a restarted process that reuses
// its pod name is never taken for its previous life: the sessions, claims
// and holds the dead process left under its id are not mistaken for the new
// one's, and a notice routed to the dead process is kept for the client's
// next connection instead of being delivered to a process that does not
// hold it.
func WithReplicaID(id string) Option {
	return func(c *config) error {
		if err := checkReplicaID(id); err != nil {
			return err
		}
		c.replica = id
		return nil
	}
}

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return &ValidationError{Field: "WithLogger", Rule: "logger must not be nil"}
		}
		c.logger = l
		return nil
	}
}

func checkReplicaID(id string) error {
	if id == "" || len(id) > maxReplicaLen {
		return &ValidationError{Field: "WithReplicaID", Rule: "must be 1 to 64 characters"}
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return &ValidationError{Field: "WithReplicaID", Rule: "only letters, digits, '.', '_' and '-' are allowed"}
		}
	}
	return nil
}

func checkProject(p string) error {
	switch {
	case p == "":
		return &ValidationError{Field: "project", Rule: "must not be empty"}
	case len(p) > maxProjectLen:
		return &ValidationError{Field: "project", Rule: "must be at most 256 bytes"}
	case strings.ContainsAny(p, "{}"):
		return &ValidationError{Field: "project", Rule: "must not contain '{' or '}' (it is the keys' Cluster hash tag)"}
	}
	return nil
}

// replicaID is a replica id: the stable part and a per-process suffix.
func replicaID(stable string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return stable + "-" + hex.EncodeToString(b[:])
}

// Store is one replica's view of the state shared in Redis. Make it with
// [New]; it is safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	sharded bool // a Cluster: the bus is sharded pub/sub (bus.go)
	project string
	replica string
	logger  *slog.Logger
	keys    keys

	aliveTTL     time.Duration
	aliveRefresh time.Duration
	onRefresh    func(error)

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ready  chan struct{} // closed once the subscriptions are in place

	// hbstore: the fields of sessions*.go go here (one line each).
	hbOnce sync.Once     // Sessions
	hb     *sessionStore // the heartbeat sessions (sessions.go)

	mu       sync.Mutex
	handlers map[string]func(message)
	pubsub   *redis.PubSub
	closed   bool

	// leasestore: the fields of leases*.go and queue*.go go here.
	lsOnce sync.Once   // Leases
	ls     *leaseStore // the leases and the queue (leases.go, queue.go)
}

// New makes the Store of one replica for a project, on a client the caller
// owns (Close does not close it). The project goes inside the keys' Cluster
// hash tag: it must be non-empty, at most 256 bytes, without '{' or '}'.
//
// New does not wait for Redis: the Store subscribes to its channels and
// sets its liveness key in the background, retrying while Redis is
// unreachable.
func New(client redis.UniversalClient, project string, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, &ValidationError{Field: "client", Rule: "must not be nil"}
	}
	if err := checkProject(project); err != nil {
		return nil, err
	}
	cc, sharded := client.(*redis.ClusterClient)
	if sharded && cc.Options().ReadOnly {
		// Its subscriptions would sit on replicas, where a sharded
		// publish's count of receivers does not look (see "The bus").
		return nil, &ValidationError{Field: "client", Rule: "a cluster client must not route to replicas (ReadOnly, RouteByLatency, RouteRandomly)"}
	}
	c := config{
		logger:       slog.New(slog.DiscardHandler),
		aliveTTL:     AliveTTL,
		aliveRefresh: AliveRefresh,
	}
	for _, o := range opts {
		if o == nil {
			return nil, &ValidationError{Field: "option", Rule: "must not be nil"}
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if c.replica == "" {
		c.replica = "r"
	}
	if !c.exactID {
		c.replica = replicaID(c.replica)
	}
	s := &Store{
		client:       client,
		sharded:      sharded,
		project:      project,
		replica:      c.replica,
		logger:       c.logger.With("replica", c.replica),
		keys:         newKeys(project),
		aliveTTL:     c.aliveTTL,
		aliveRefresh: c.aliveRefresh,
		onRefresh:    c.onRefresh,
		ready:        make(chan struct{}),
		handlers:     make(map[string]func(message)),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Replica returns this replica's id: WithReplicaID's (or "r"), a '-' and
// the per-process suffix.
func (s *Store) Replica() string { return s.replica }

// Project returns the project the Store was made for.
func (s *Store) Project() string { return s.project }

// ErrClosed is returned by the Store's calls after Close.
var ErrClosed = errors.New("redisstore: store closed")

// Close stops the Store's goroutines (its subscriptions and refreshers) and
// deletes its liveness key, so the other replicas see it gone at once. It
// does not close the client, and it touches no session or lease: a replica
// that closes its Store without draining leaves its users to resume
// elsewhere. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.pubsub
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		_ = ps.Close() // unblocks a Receive in progress
	}
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.client.Del(ctx, s.keys.alive(s.replica)).Err(); err != nil && !errors.Is(err, redis.ErrClosed) {
		s.logger.Warn("redisstore: deleting the liveness key", "err", err)
	}
	return nil
}

// go runs f in a goroutine owned by the Store: its context is cancelled by
// Close, which waits for f to return. It reports false, running nothing,
// once the Store is closed.
func (s *Store) goroutine(f func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
	return true
}

// waitReady waits until the Store's subscriptions are in place (so that a
// message another replica sends to this one from now on is received), or
// ctx ends, or the Store is closed (ErrClosed, also once it was ready).
func (s *Store) waitReady(ctx context.Context) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	select {
	case <-s.ready:
		if s.ctx.Err() != nil {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}
