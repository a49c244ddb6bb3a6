package transport

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/credential"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// Defaults of RetryPolicy.
const (
	DefaultMaxAttempts = 3
	DefaultMinWait     = 500 * time.Millisecond
	DefaultMaxWait     = 20 * time.Second
)

// RetryPolicy bounds the retries of one call. Zero fields take the client's
// value, and the client's zero fields take the defaults.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included;
	// 1 disables retries. Default 3.
	MaxAttempts int
	// MinWait is the ceiling of the first wait before a retry; later
	// ceilings double, and each wait is drawn between half its ceiling and
	// the ceiling (retry.Exponential). Default 500 ms.
	MinWait time.Duration
	// MaxWait is the longest single wait, also the cap on a server's
	// Retry-After. Default 20 s.
	MaxWait time.Duration
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return errors.New("RetryPolicy.MaxAttempts must not be negative")
	case p.MinWait < 0:
		return errors.New("RetryPolicy.MinWait must not be negative")
	case p.MaxWait < 0:
		return errors.New("RetryPolicy.MaxWait must not be negative")
	case p.MinWait > 0 && p.MaxWait > 0 && p.MinWait > p.MaxWait:
		return fmt.Errorf("RetryPolicy.MinWait (%v) must not exceed MaxWait (%v)", p.MinWait, p.MaxWait)
	}
	return nil
}

// over returns p with its zero fields taken from base.
func (p RetryPolicy) over(base RetryPolicy) RetryPolicy {
	p.MaxAttempts = cmp.Or(p.MaxAttempts, base.MaxAttempts)
	p.MinWait = cmp.Or(p.MinWait, base.MinWait)
	p.MaxWait = cmp.Or(p.MaxWait, base.MaxWait)
	if p.MinWait > p.MaxWait {
		p.MinWait = p.MaxWait
	}
	return p
}

var defaultRetry = RetryPolicy{MaxAttempts: DefaultMaxAttempts, MinWait: DefaultMinWait, MaxWait: DefaultMaxWait}

// backoff is the policy's waits, in the SDK's one backoff.
func (p RetryPolicy) backoff() retry.Backoff { return retry.Exponential(p.MinWait, p.MaxWait) }

// Defaults of RetryBudget: those of aws-sdk-go-v2's standard retryer.
const (
	DefaultBudgetCapacity = retry.DefaultBudgetCapacity
	DefaultRetryCost      = retry.DefaultRetryCost
	DefaultTimeoutCost    = retry.DefaultTimeoutCost
	DefaultSuccessRefund  = retry.DefaultSuccessRefund
)

// RetryBudget is a client's retry budget: a token bucket that the retries
// of all its calls draw on, so that during an outage retries do not
// multiply the load on the API. A retry takes RetryCost tokens
// (TimeoutCost after an attempt that timed out); a call that succeeds at
// its first attempt gives back SuccessRefund, one that succeeds after
// retries gives back what they took. When the bucket holds too little, a
// failed attempt is not retried and the call returns its error. With the
// defaults, a client adds at most 100 retries to an outage, and 5 calls
// that succeed at once pay for one retry again. Zero fields take the
// defaults.
type RetryBudget struct {
	// Capacity is the tokens of a full bucket; it starts full. Default 500.
	Capacity int
	// RetryCost is what one retry takes. Default 5.
	RetryCost int
	// TimeoutCost is what a retry after a timed-out attempt takes.
	// Default 10.
	TimeoutCost int
	// SuccessRefund is what a call that succeeds at its first attempt
	// gives back. Default 1.
	SuccessRefund int
	// Disabled turns the budget off: every call retries up to its
	// MaxAttempts, however many other calls are failing.
	Disabled bool
}

var defaultBudget = RetryBudget{Capacity: DefaultBudgetCapacity, RetryCost: DefaultRetryCost,
	TimeoutCost: DefaultTimeoutCost, SuccessRefund: DefaultSuccessRefund}

func (b RetryBudget) validate() error {
	for _, f := range [...]struct {
		name string
		v    int
	}{{"Capacity", b.Capacity}, {"RetryCost", b.RetryCost}, {"TimeoutCost", b.TimeoutCost}, {"SuccessRefund", b.SuccessRefund}} {
		if f.v < 0 {
			return fmt.Errorf("RetryBudget.%s must not be negative", f.name)
		}
	}
	return nil
}

// over returns b with its zero fields taken from base.
func (b RetryBudget) over(base RetryBudget) RetryBudget {
	b.Capacity = cmp.Or(b.Capacity, base.Capacity)
	b.RetryCost = cmp.Or(b.RetryCost, base.RetryCost)
	b.TimeoutCost = cmp.Or(b.TimeoutCost, base.TimeoutCost)
	b.SuccessRefund = cmp.Or(b.SuccessRefund, base.SuccessRefund)
	return b
}

// Config is what a service client is built from. The service packages fill
// Service, Version and Endpoint; options fill the rest.
type Config struct {
	Service  string // "car"
	Version  string // "2022-01-10"
	Endpoint string // "https://car.tencentcloudapi.com"
	Region   string // X-TC-Region; sent only when set
	Language string // X-TC-Language; "en-US" or "zh-CN"

	Credentials credential.Provider
	HTTPClient  *http.Client
	Logger      *slog.Logger
	Retry       RetryPolicy
	RetryBudget RetryBudget
}

// Option configures a client.
type Option func(*Config) error

// WithEndpoint sets the API endpoint: a URL ("http://127.0.0.1:8080",
// "https://car.ap-guangzhou.tencentcloudapi.com") or a bare host, which
// means HTTPS.
func WithEndpoint(endpoint string) Option {
	return func(c *Config) error {
		if endpoint == "" {
			return errors.New("endpoint must not be empty")
		}
		if !strings.Contains(endpoint, "://") {
			endpoint = "https://" + endpoint
		}
		u, err := url.Parse(endpoint)
		if err != nil {
			return fmt.Errorf("endpoint %q is not a URL: %w", endpoint, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("endpoint %q: scheme must be http or https", endpoint)
		}
		if u.Host == "" {
			return fmt.Errorf("endpoint %q has no host", endpoint)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("endpoint %q must not carry user info, a query or a fragment", endpoint)
		}
		c.Endpoint = endpoint
		return nil
	}
}

// WithRegion sets the region sent in X-TC-Region.
func WithRegion(region string) Option {
	return func(c *Config) error {
		c.Region = region
		return nil
	}
}

// WithLanguage sets X-TC-Language: "en-US" or "zh-CN".
func WithLanguage(lang string) Option {
	return func(c *Config) error {
		if lang != "en-US" && lang != "zh-CN" {
			return fmt.Errorf("language %q: must be en-US or zh-CN", lang)
		}
		c.Language = lang
		return nil
	}
}

// WithCredentials sets the credential provider. The default is the chain
// environment → profile file.
func WithCredentials(p credential.Provider) Option {
	return func(c *Config) error {
		if p == nil {
			return errors.New("credentials provider must not be nil")
		}
		c.Credentials = p
		return nil
	}
}

// WithHTTPClient sets the HTTP client. Its Timeout bounds each attempt.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Config) error {
		if h == nil {
			return errors.New("HTTP client must not be nil")
		}
		c.HTTPClient = h
		return nil
	}
}

// WithLogger sets the logger; the default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(c *Config) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		c.Logger = l
		return nil
	}
}

// WithRetry sets the client's retry policy.
func WithRetry(p RetryPolicy) Option {
	return func(c *Config) error {
		if err := p.validate(); err != nil {
			return err
		}
		c.Retry = p
		return nil
	}
}

// WithRetryBudget sets the client's retry budget (RetryBudget{Disabled:
// true} turns it off). The default is a bucket of 500 tokens, 5 a retry,
// 10 a retry after a timeout, 1 back for a call that succeeds at once.
func WithRetryBudget(b RetryBudget) Option {
	return func(c *Config) error {
		if err := b.validate(); err != nil {
			return err
		}
		c.RetryBudget = b
		return nil
	}
}

// CallOption adjusts one call.
type CallOption func(*callSettings)

type callSettings struct {
	retry      RetryPolicy
	idempotent bool
}

// WithCallRetry overrides the retry policy for one call; zero fields keep the
// client's values.
func WithCallRetry(p RetryPolicy) CallOption {
	return func(s *callSettings) { s.retry = p.over(s.retry) }
}

// NotIdempotent marks a call that must not be repeated once it may have
// reached the server (SCF Invoke): network errors after the connection was
// made and 5xx responses are not retried. Throttling answers and failed
// dials still are, since the server did not act on them.
func NotIdempotent() CallOption {
	return func(s *callSettings) { s.idempotent = false }
}
