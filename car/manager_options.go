package car

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Defaults of the SessionManager.
const (
	DefaultIdleRelease       = 2
	DefaultQueueLimit        = 1000
	DefaultQueuePollInterval = time.Second
	// DefaultNoticeInterval is the shortest time between two queue
	// position notices to one user.
	DefaultNoticeInterval = time.Second
	// DefaultAPITimeout bounds each API call the manager makes.
	DefaultAPITimeout = 30 * time.Second
	// DefaultReleaseRetryMax is the longest wait between two attempts of a
	// queued release.
	DefaultReleaseRetryMax = 30 * time.Second
	// DefaultReconnectWait is how long a user whose client lost its
	// connection keeps the concurrency, from its last sign of life: the
	// heartbeat's reconnect window.
	DefaultReconnectWait = heartbeat.DefaultReconnectWindow
	// DefaultReloadGrace is how long a user whose page closed cleanly keeps
	// it.
	DefaultReloadGrace = heartbeat.DefaultReloadGrace
)

// ManagerOption configures a SessionManager.
type ManagerOption func(*managerConfig) error

type managerConfig struct {
	reconnectWait    time.Duration
	reloadGrace      time.Duration
	reloadGraceSet   bool
	carReconnectWait time.Duration // the project's own, when known
	idleThreshold    time.Duration
	idleRelease      int
	queueLimit       int
	queuePoll        time.Duration
	queueTimeout     time.Duration
	noticeInterval   time.Duration
	apiTimeout       time.Duration
	releaseRetryMax  time.Duration
	destroyRetry     RetryPolicy
	heartbeat        []heartbeat.ServerOption
	logger           *slog.Logger
	onRelease        func(Release)
	onReleasePending func(PendingRelease)
	pendingReleases  []PendingRelease
	streamLost       StreamLostAction
	onStreamEvent    func(StreamEvent)
	start            StartDefaults
	store            LeaseStore
	storeTimeout     time.Duration
	claimTTL         time.Duration
}

func defaultManagerConfig() managerConfig {
	return managerConfig{
		reconnectWait:   DefaultReconnectWait,
		reloadGrace:     DefaultReloadGrace,
		idleThreshold:   heartbeat.DefaultIdleThreshold,
		idleRelease:     DefaultIdleRelease,
		queueLimit:      DefaultQueueLimit,
		queuePoll:       DefaultQueuePollInterval,
		noticeInterval:  DefaultNoticeInterval,
		apiTimeout:      DefaultAPITimeout,
		releaseRetryMax: DefaultReleaseRetryMax,
		destroyRetry:    RetryPolicy{MaxAttempts: 8, MinWait: 500 * time.Millisecond, MaxWait: 10 * time.Second},
		streamLost:      StreamLostRelease,
		logger:          slog.New(slog.DiscardHandler),
		storeTimeout:    2 * time.Second,
	}
}

// check validates the options together.
func (c *managerConfig) check() error {
	if c.claimTTL == 0 {
		c.claimTTL = c.apiTimeout + c.releaseRetryMax
	}
	if !c.reloadGraceSet && c.reloadGrace > c.reconnectWait {
		c.reloadGrace = c.reconnectWait // a short WithReconnectWait bounds the default
	}
	if c.carReconnectWait > 0 && c.reloadGrace > c.carReconnectWait {
		return fmt.Errorf("WithReloadGrace (%v) is longer than the project's CAR reconnect wait (%v, WithCARReconnectWait): CAR would reclaim the concurrency first", c.reloadGrace, c.carReconnectWait)
	}
	if c.carReconnectWait > 0 && c.reconnectWait > c.carReconnectWait {
		return fmt.Errorf("WithReconnectWait (%v) is longer than the project's CAR reconnect wait (%v, WithCARReconnectWait): CAR would reclaim the concurrency first", c.reconnectWait, c.carReconnectWait)
	}
	return nil
}

// StartDefaults are CreateSession and ApplyConcurrent fields the manager
// sends for every user unless the StartRequest sets them.
type StartDefaults struct {
	RunMode               string
	ApplicationParameters string
	ApplicationId         string //nolint:revive // the API's spelling
	ApplicationVersionId  string //nolint:revive
}

// WithReconnectWait sets how long a user whose client lost its connection
// (network gone, ping timeout) keeps the concurrency, counted from the
// client's last sign of life, before the manager calls DestroySession: the
// heartbeat's reconnect window. Default 60 s (TCGSDK's own stream retries
// for 10 × 6 s). Keep it shorter than the project's CAR reconnect wait
// (90 s by default; see WithCARReconnectWait), so the manager releases
// before CAR does.
func WithReconnectWait(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithReconnectWait: must be positive")
		}
		c.reconnectWait = d
		return nil
	}
}

// WithReloadGrace sets how long a user whose page closed its heartbeat
// cleanly (close code 1000 or 1001: tab closed, navigation, reload) keeps
// the concurrency: long enough for a reload or a quick reopen to resume it.
// Default 10 s.
func WithReloadGrace(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithReloadGrace: must be positive")
		}
		c.reloadGrace, c.reloadGraceSet = d, true
		return nil
	}
}

// WithIdleThreshold sets the idle threshold (default 300 s, as TCGSDK's
// idleThreshold): idle notices go out at 1×, 2×, 3×… the threshold after
// the last user activity.
func WithIdleThreshold(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithIdleThreshold: must be positive")
		}
		c.idleThreshold = d
		return nil
	}
}

// WithIdleRelease releases a user's concurrency at the n-th idle notice
// (default 2: the first notice warns the client, the second releases).
// 0 never releases for idleness.
func WithIdleRelease(n int) ManagerOption {
	return func(c *managerConfig) error {
		if n < 0 {
			return errors.New("WithIdleRelease: must not be negative")
		}
		c.idleRelease = n
		return nil
	}
}

// WithQueueLimit bounds the number of users waiting for a concurrency
// (default 1000); Start fails with ErrQueueFull beyond it. 0 disables the
// queue: Start fails with the NoIdle error at once.
func WithQueueLimit(n int) ManagerOption {
	return func(c *managerConfig) error {
		if n < 0 {
			return errors.New("WithQueueLimit: must not be negative")
		}
		c.queueLimit = n
		return nil
	}
}

// WithQueuePollInterval sets how often the head of the queue retries
// ApplyConcurrent while nothing is idle (default 1 s, as Tencent's demo
// backend). A release by this manager retries at once.
func WithQueuePollInterval(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithQueuePollInterval: must be positive")
		}
		c.queuePoll = d
		return nil
	}
}

// WithDestroyRetry sets the retries inside one DestroySession call
// (default: 8 attempts, waits from 500 ms up to 10 s), on throttling, 5xx
// and network errors. A call that still fails for a transient reason sends
// the release to the release queue, which tries again with backoff until it
// is done (WithReleaseRetryMax).
func WithDestroyRetry(p RetryPolicy) ManagerOption {
	return func(c *managerConfig) error {
		if p.MaxAttempts < 0 || p.MinWait < 0 || p.MaxWait < 0 {
			return errors.New("WithDestroyRetry: fields must not be negative")
		}
		c.destroyRetry = p
		return nil
	}
}

// WithHeartbeat passes options to the heartbeat server: ping interval and
// timeout, allowed origins, an authorization hook, message size, logger.
// The settings the manager makes itself are refused, never replaced:
// NewSessionManager fails with a *ValidationError naming the option and
// the manager's own to use instead. They are the reconnect window
// (WithReconnectWait), the reload grace (WithReloadGrace), the idle
// threshold (WithIdleThreshold), the stream callback (OnStreamEvent) and
// the lifecycle callbacks OnConnect, OnDisconnect, OnResume, OnIdle and
// OnExpire (watch OnRelease and Snapshot instead).
func WithHeartbeat(opts ...heartbeat.ServerOption) ManagerOption {
	return func(c *managerConfig) error {
		c.heartbeat = append(c.heartbeat, opts...)
		return nil
	}
}

// WithManagerLogger sets the manager's logger (default: silent).
func WithManagerLogger(l *slog.Logger) ManagerOption {
	return func(c *managerConfig) error {
		if l == nil {
			return errors.New("WithManagerLogger: logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// OnRelease sets a callback run after each release, once per lease, with
// why and whether DestroySession succeeded. It runs on the releasing
// goroutine, with no lock held.
func OnRelease(f func(Release)) ManagerOption {
	return func(c *managerConfig) error {
		c.onRelease = f
		return nil
	}
}

// WithStartDefaults sets CreateSession/ApplyConcurrent fields sent for every
// user whose StartRequest leaves them empty.
func WithStartDefaults(d StartDefaults) ManagerOption {
	return func(c *managerConfig) error {
		switch d.RunMode {
		case RunModeDefault, RunModeRunWithoutClient:
		default:
			return fmt.Errorf("WithStartDefaults: RunMode %q must be empty or RunWithoutClient", d.RunMode)
		}
		c.start = d
		return nil
	}
}

// WithCARReconnectWait tells the manager the project's own reconnect wait
// in CAR (its ReconnectTimeout; 90 s unless the project says otherwise). A
// WithReconnectWait longer than it is refused: after CAR's wait the lease
// is dead.
func WithCARReconnectWait(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithCARReconnectWait: must be positive")
		}
		c.carReconnectWait = d
		return nil
	}
}

// WithQueueTimeout makes a queued user leave the queue (reason "queue
// timeout", Wait returns ErrQueueTimeout) after waiting d. 0, the default,
// means no limit: a queued user leaves only by Stop, by its client being
// gone past the grace window, or by a permanent error.
func WithQueueTimeout(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d < 0 {
			return errors.New("WithQueueTimeout: must not be negative")
		}
		c.queueTimeout = d
		return nil
	}
}

// WithNoticeInterval sets the shortest time between two queue position
// notices to one user (default 1 s); the latest position wins, and only
// users whose position changed get one.
func WithNoticeInterval(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithNoticeInterval: must be positive")
		}
		c.noticeInterval = d
		return nil
	}
}

// WithAPITimeout bounds each ApplyConcurrent, CreateSession and
// DestroySession call the manager makes (default 30 s; CAR documents 20 s
// as ApplyConcurrent's own limit). A call cut short counts as a transient
// failure that may have reached CAR.
func WithAPITimeout(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithAPITimeout: must be positive")
		}
		c.apiTimeout = d
		return nil
	}
}

// WithReleaseRetryMax sets the longest wait between two attempts of a
// queued release (default 30 s); waits start at 1 s and double.
func WithReleaseRetryMax(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d < time.Second {
			return errors.New("WithReleaseRetryMax: must be at least 1 s")
		}
		c.releaseRetryMax = d
		return nil
	}
}

// OnReleasePending sets a callback that Shutdown and Drain run, once their
// context has ended, for every release not done yet. Persist them, and
// give them to the next manager with WithPendingReleases.
func OnReleasePending(f func(PendingRelease)) ManagerOption {
	return func(c *managerConfig) error {
		if f == nil {
			return errors.New("OnReleasePending: callback must not be nil")
		}
		c.onReleasePending = f
		return nil
	}
}

// WithPendingReleases hands the manager releases an earlier one could not
// finish (see OnReleasePending; only UserId and Generation are read): it
// calls DestroySession for each user, retried until done; a Start for one
// of them waits for it. With a shared store and a Generation, it releases
// that lease through the store, claimed and finished as any release, and
// leaves the user alone if the lease was finished meanwhile.
func WithPendingReleases(pending ...PendingRelease) ManagerOption {
	return func(c *managerConfig) error {
		for _, p := range pending {
			if p.UserId == "" || len(p.UserId) > MaxUserIDLen {
				return fmt.Errorf("WithPendingReleases: UserId %q must be 1 to %d bytes", p.UserId, MaxUserIDLen)
			}
		}
		c.pendingReleases = append(c.pendingReleases, pending...)
		return nil
	}
}
