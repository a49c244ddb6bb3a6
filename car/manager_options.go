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
)

// ManagerOption configures a SessionManager.
type ManagerOption func(*managerConfig) error

type managerConfig struct {
	reconnectWait time.Duration
	idleThreshold time.Duration
	idleRelease   int
	queueLimit    int
	queuePoll     time.Duration
	destroyRetry  RetryPolicy
	heartbeat     []heartbeat.ServerOption
	logger        *slog.Logger
	onRelease     func(Release)
	start         StartDefaults
}

// StartDefaults are CreateSession and ApplyConcurrent fields the manager
// sends for every user unless the StartRequest sets them.
type StartDefaults struct {
	RunMode               string
	ApplicationParameters string
	ApplicationId         string //nolint:revive // the API's spelling
	ApplicationVersionId  string //nolint:revive
}

// WithReconnectWait sets how long a user whose client vanished keeps the
// concurrency before the manager calls DestroySession (the heartbeat's grace
// window; default 90 s, CAR's own reconnect wait). Keep it no longer than
// the project's ReconnectTimeout, so the manager releases before CAR does.
func WithReconnectWait(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("WithReconnectWait: must be positive")
		}
		c.reconnectWait = d
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

// WithDestroyRetry sets the retry policy of DestroySession (default: 8
// attempts, waits from 500 ms up to 10 s), retried on throttling, 5xx and
// network errors.
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
// Callbacks set here are replaced by the manager's; watch OnRelease and
// Snapshot instead.
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
