package hbclient

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// Defaults of a Client.
const (
	// DefaultActivityInterval is how often at most a Client reports user
	// activity (WithActivityInterval).
	DefaultActivityInterval = 5 * time.Second
	// DefaultIdleThreshold is the local idle threshold (WithIdleThreshold),
	// the Server's default too.
	DefaultIdleThreshold = heartbeat.DefaultIdleThreshold
	// DefaultWriteTimeout bounds every write (WithWriteTimeout).
	DefaultWriteTimeout = heartbeat.DefaultWriteTimeout
)

// Option configures a Client (see Connect). Options of a heartbeat.Server
// are a different type: neither side takes the other's.
type Option func(*config) error

type config struct {
	logger           *slog.Logger
	idleThreshold    time.Duration
	resumeWindow     time.Duration // 0: the window the server states in its welcome
	writeTimeout     time.Duration
	onIdle           func(heartbeat.Event)
	dialer           websocket.Dialer
	activityInterval time.Duration
	reconnectDelay   func(attempt int) time.Duration
	onStateChange    func(from, to State)
	onNotice         func(heartbeat.Notice)
}

func newConfig(opts []Option) (config, error) {
	c := config{
		logger:        slog.New(slog.DiscardHandler),
		idleThreshold: DefaultIdleThreshold,
		writeTimeout:  DefaultWriteTimeout,
		dialer: websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
		},
		activityInterval: DefaultActivityInterval,
		reconnectDelay:   reconnectBackoff.Delay,
	}
	for _, o := range opts {
		if o == nil {
			return c, &heartbeat.ValidationError{Field: "Option", Rule: "must not be nil"}
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	c.dialer.Subprotocols = []string{heartbeat.SubprotocolV2, heartbeat.Subprotocol}
	if c.dialer.HandshakeTimeout <= 0 {
		c.dialer.HandshakeTimeout = 10 * time.Second
	}
	return c, nil
}

func checkDuration(field string, d time.Duration) error {
	if rule := wire.DurationRule(d); rule != "" {
		return &heartbeat.ValidationError{Field: field, Rule: rule}
	}
	return nil
}

// WithLogger sets the logger. The default discards everything. Tokens are
// never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return &heartbeat.ValidationError{Field: "WithLogger", Rule: "logger must not be nil"}
		}
		c.logger = l
		return nil
	}
}

// WithIdleThreshold sets the local idle threshold (default
// DefaultIdleThreshold): OnIdle fires at 1×, 2×, 3×… the threshold after the
// last Touch. The Server counts idleness on its own, with its own
// threshold.
func WithIdleThreshold(d time.Duration) Option {
	return func(c *config) error {
		if err := checkDuration("WithIdleThreshold", d); err != nil {
			return err
		}
		c.idleThreshold = d
		return nil
	}
}

// WithResumeWindow bounds the reconnect attempts of one outage: the Client
// stops trying to resume d after the last frame it exchanged with the
// server, and becomes StateExpired. Without this option it uses the
// server's reconnect window (heartbeat.WithReconnectWindow), which the
// welcome frame states; a longer window is of no use, since the server
// has expired the session by then.
func WithResumeWindow(d time.Duration) Option {
	return func(c *config) error {
		if err := checkDuration("WithResumeWindow", d); err != nil {
			return err
		}
		c.resumeWindow = d
		return nil
	}
}

// WithWriteTimeout bounds every write (default DefaultWriteTimeout). It is
// also how long Close waits for the server's answer to its close frame.
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) error {
		if err := checkDuration("WithWriteTimeout", d); err != nil {
			return err
		}
		c.writeTimeout = d
		return nil
	}
}

// OnIdle sets the local idle callback. It fires at 1×, 2×, 3×… the idle
// threshold after the last Touch with Event.Times = 1, 2, 3…; a Touch starts
// the count again. It keeps counting while the Client reconnects.
func OnIdle(f func(heartbeat.Event)) Option {
	return func(c *config) error {
		if f == nil {
			return &heartbeat.ValidationError{Field: "OnIdle", Rule: "callback must not be nil"}
		}
		c.onIdle = f
		return nil
	}
}

// WithDialer sets the WebSocket dialer (a copy is kept; its Subprotocols are
// replaced by heartbeat.SubprotocolV2 and heartbeat.Subprotocol). Tests pass
// one whose NetDialContext dials an in-memory listener.
func WithDialer(d *websocket.Dialer) Option {
	return func(c *config) error {
		if d == nil {
			return &heartbeat.ValidationError{Field: "WithDialer", Rule: "dialer must not be nil"}
		}
		c.dialer = *d
		return nil
	}
}

// WithActivityInterval sets how often at most the Client reports user
// activity (default DefaultActivityInterval). Touch calls are coalesced: the
// first one is sent at once, later ones within the interval become one frame
// at its end.
func WithActivityInterval(d time.Duration) Option {
	return func(c *config) error {
		if err := checkDuration("WithActivityInterval", d); err != nil {
			return err
		}
		c.activityInterval = d
		return nil
	}
}

// reconnectBackoff is the default wait before resume attempt n: the SDK's
// one backoff (package internal/retry).
var reconnectBackoff = retry.Exponential(500*time.Millisecond, 10*time.Second)

// WithReconnectDelay sets the wait before each resume attempt of an outage:
// delay(n) before attempt n, counted from 1 again in every outage. It is
// called on the Client's goroutine only; a negative wait counts as none.
// Attempts stop when the next wait would end past the resume window. The
// default is the SDK's one backoff: ceilings of 500 ms, 1 s, 2 s… up to
// 10 s, each wait drawn between half its ceiling and the ceiling. A fixed
// delay d is func(int) time.Duration { return d }.
func WithReconnectDelay(delay func(attempt int) time.Duration) Option {
	return func(c *config) error {
		if delay == nil {
			return &heartbeat.ValidationError{Field: "WithReconnectDelay", Rule: "function must not be nil"}
		}
		c.reconnectDelay = delay
		return nil
	}
}

// OnStateChange sets the callback for the Client's state changes.
func OnStateChange(f func(from, to State)) Option {
	return func(c *config) error {
		if f == nil {
			return &heartbeat.ValidationError{Field: "OnStateChange", Rule: "callback must not be nil"}
		}
		c.onStateChange = f
		return nil
	}
}

// OnNotice sets the callback for notices from the server: queue, ready,
// custom, idle, and released (delivered once, just before the Client
// closes).
func OnNotice(f func(heartbeat.Notice)) Option {
	return func(c *config) error {
		if f == nil {
			return &heartbeat.ValidationError{Field: "OnNotice", Rule: "callback must not be nil"}
		}
		c.onNotice = f
		return nil
	}
}
