package scf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// Defaults of the provisioned-concurrency waiter's polling.
const (
	DefaultWaitMinDelay = 2 * time.Second
	DefaultWaitMaxDelay = 30 * time.Second
)

// WaitOption configures [Client.WaitProvisionedConcurrencyReady].
type WaitOption func(*waitConfig) error

type waitConfig struct {
	minDelay, maxDelay time.Duration
	clock              Clock
}

// WithWaitDelay sets the first and the longest pause between polls
// (default 2 s and 30 s). The pauses are the SDK's one backoff: each
// ceiling doubles, and each pause is drawn between half its ceiling and
// the ceiling.
func WithWaitDelay(minDelay, maxDelay time.Duration) WaitOption {
	return func(c *waitConfig) error {
		if minDelay <= 0 || maxDelay < minDelay {
			return fmt.Errorf("wait delays %v and %v: need 0 < min ≤ max", minDelay, maxDelay)
		}
		c.minDelay, c.maxDelay = minDelay, maxDelay
		return nil
	}
}

// WithWaitClock sets the clock the waiter pauses on (default: the host's).
func WithWaitClock(clock Clock) WaitOption {
	return func(c *waitConfig) error {
		if clock == nil {
			return errors.New("wait clock must not be nil")
		}
		c.clock = clock
		return nil
	}
}

// ErrNoProvisionedConcurrency is wrapped by the waiter's error when the
// version has no provisioned concurrency configured.
var ErrNoProvisionedConcurrency = errors.New("no provisioned concurrency is configured for the version")

// ProvisionedConcurrencyError reports a provisioned concurrency whose
// Status became Failed (partly or fully); StatusReason says why.
type ProvisionedConcurrencyError struct {
	FunctionName string
	Namespace    string
	Qualifier    string
	StatusReason string
	// Info is the last status seen.
	Info VersionProvisionedConcurrencyInfo
}

func (e *ProvisionedConcurrencyError) Error() string {
	return fmt.Sprintf("scf: provisioned concurrency of %s:%s failed: %s (%d of %d instances available)",
		e.FunctionName, e.Qualifier, e.StatusReason,
		e.Info.AvailableProvisionedConcurrencyNum, e.Info.AllocatedProvisionedConcurrencyNum)
}

// WaitProvisionedConcurrencyReady polls GetProvisionedConcurrencyConfig,
// with growing pauses, until the version's provisioned concurrency reports
// Done, and returns that status. Failed becomes a
// *[ProvisionedConcurrencyError] carrying StatusReason; a version without
// provisioned concurrency wraps [ErrNoProvisionedConcurrency]. The context
// bounds the wait: when it ends, the error wraps ctx.Err() and names the
// last status seen. in.Qualifier is required.
func (c *Client) WaitProvisionedConcurrencyReady(ctx context.Context, in *GetProvisionedConcurrencyConfigInput, opts ...WaitOption) (*VersionProvisionedConcurrencyInfo, error) {
	const action = "WaitProvisionedConcurrencyReady"
	if in == nil {
		return nil, &ValidationError{Service: Service, Action: action, Field: "input", Rule: "must not be nil"}
	}
	if in.Qualifier == "" {
		return nil, &ValidationError{Service: Service, Action: action, Field: "Qualifier", Rule: "is required: the waiter follows one version"}
	}
	cfg := waitConfig{minDelay: DefaultWaitMinDelay, maxDelay: DefaultWaitMaxDelay, clock: hostClock{}}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("scf %s: %w", action, err)
		}
	}
	pause := retry.Exponential(cfg.minDelay, cfg.maxDelay)
	name := in.FunctionName + ":" + in.Qualifier
	last := "none yet"
	for polls := 1; ; polls++ {
		out, err := c.GetProvisionedConcurrencyConfig(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scf: waiting for the provisioned concurrency of %s (last status %s): %w", name, last, err)
		}
		var info *VersionProvisionedConcurrencyInfo
		for i := range out.Allocated {
			if out.Allocated[i].Qualifier == in.Qualifier {
				info = &out.Allocated[i]
			}
		}
		if info == nil {
			return nil, fmt.Errorf("scf: waiting for the provisioned concurrency of %s: %w", name, ErrNoProvisionedConcurrency)
		}
		switch info.Status {
		case ProvisionedStatusDone:
			return info, nil
		case ProvisionedStatusFailed:
			return nil, &ProvisionedConcurrencyError{
				FunctionName: in.FunctionName, Namespace: in.Namespace, Qualifier: in.Qualifier,
				StatusReason: info.StatusReason, Info: *info,
			}
		}
		last = fmt.Sprintf("%s, %d of %d available", info.Status,
			info.AvailableProvisionedConcurrencyNum, info.AllocatedProvisionedConcurrencyNum)
		if err := cfg.clock.Sleep(ctx, pause.Delay(polls)); err != nil {
			return nil, fmt.Errorf("scf: waiting for the provisioned concurrency of %s (last status %s): %w", name, last, err)
		}
	}
}
