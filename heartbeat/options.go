package heartbeat

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/gorilla/websocket"
)

// Defaults. Detection of a vanished client (at most DefaultPingTimeout after
// its last frame) fits inside the DefaultGraceWindow that CAR itself waits
// for a reconnect.
const (
	DefaultPingInterval     = 25 * time.Second
	DefaultPingTimeout      = 60 * time.Second
	DefaultIdleThreshold    = 300 * time.Second // TCGSDK idleThreshold
	DefaultGraceWindow      = 90 * time.Second  // CAR reconnect wait
	DefaultMaxMessageSize   = 4 << 10
	DefaultWriteTimeout     = 10 * time.Second
	DefaultActivityInterval = 5 * time.Second
)

const maxDuration = 30 * 24 * time.Hour // keeps deadline arithmetic far from overflow

// ServerOption configures a Server (see NewServer).
type ServerOption interface {
	applyServer(*serverConfig) error
}

// SessionOption configures a client Session (see Connect).
type SessionOption interface {
	applySession(*sessionConfig) error
}

// Option configures both a Server and a Session; it is a ServerOption and a
// SessionOption.
type Option interface {
	ServerOption
	SessionOption
}

type serverOption func(*serverConfig) error

func (f serverOption) applyServer(c *serverConfig) error { return f(c) }

type sessionOption func(*sessionConfig) error

func (f sessionOption) applySession(c *sessionConfig) error { return f(c) }

type sharedOption struct {
	server  serverOption
	session sessionOption
}

func (o sharedOption) applyServer(c *serverConfig) error   { return o.server(c) }
func (o sharedOption) applySession(c *sessionConfig) error { return o.session(c) }

// common holds the settings both sides share.
type common struct {
	logger        *slog.Logger
	idleThreshold time.Duration
	grace         time.Duration
	graceSet      bool
	writeTimeout  time.Duration
	onIdle        func(Event)
}

func defaultCommon() common {
	return common{
		logger:        slog.New(slog.DiscardHandler),
		idleThreshold: DefaultIdleThreshold,
		grace:         DefaultGraceWindow,
		writeTimeout:  DefaultWriteTimeout,
	}
}

func shared(f func(*common) error) Option {
	return sharedOption{
		server:  func(c *serverConfig) error { return f(&c.common) },
		session: func(c *sessionConfig) error { return f(&c.common) },
	}
}

// WithLogger sets the logger (Server and Session). The default discards
// everything. Tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return shared(func(c *common) error {
		if l == nil {
			return &ValidationError{Field: "WithLogger", Rule: "logger must not be nil"}
		}
		c.logger = l
		return nil
	})
}

// WithIdleThreshold sets the idle threshold (Server and Session; default
// DefaultIdleThreshold). OnIdle fires at 1×, 2×, 3×… the threshold after the
// last user activity.
func WithIdleThreshold(d time.Duration) Option {
	return shared(func(c *common) error {
		if err := checkDuration("WithIdleThreshold", d); err != nil {
			return err
		}
		c.idleThreshold = d
		return nil
	})
}

// WithGraceWindow sets how long a session without a connected client
// survives (default DefaultGraceWindow). On the Server, the session expires
// when it passes; on a Session, it bounds the reconnect attempts of one
// outage. Without this option a Session uses the window the server states in
// its welcome frame.
func WithGraceWindow(d time.Duration) Option {
	return shared(func(c *common) error {
		if err := checkDuration("WithGraceWindow", d); err != nil {
			return err
		}
		c.grace, c.graceSet = d, true
		return nil
	})
}

// WithWriteTimeout bounds every write (Server and Session; default
// DefaultWriteTimeout). It is also how long a closing connection may take to
// finish the close handshake.
func WithWriteTimeout(d time.Duration) Option {
	return shared(func(c *common) error {
		if err := checkDuration("WithWriteTimeout", d); err != nil {
			return err
		}
		c.writeTimeout = d
		return nil
	})
}

// OnIdle sets the idle callback (Server and Session). It fires at 1×, 2×, 3×…
// the idle threshold after the last user activity with Event.Times = 1, 2,
// 3…; activity starts the count again. On the Server, activity is an
// activity frame from the client and idle time keeps counting while the
// client is disconnected; on a Session, activity is a call to Touch.
func OnIdle(f func(Event)) Option {
	return shared(func(c *common) error {
		if f == nil {
			return &ValidationError{Field: "OnIdle", Rule: "callback must not be nil"}
		}
		c.onIdle = f
		return nil
	})
}

func checkDuration(field string, d time.Duration) error {
	if d <= 0 || d > maxDuration {
		return &ValidationError{Field: field, Rule: "must be positive and at most " + maxDuration.String() + ", got " + d.String()}
	}
	return nil
}

type serverConfig struct {
	common
	pingInterval   time.Duration
	pingTimeout    time.Duration
	maxMessageSize int64
	origins        []string // lower-case scheme://host[:port]; nil = same host
	anyOrigin      bool
	authorize      func(r *http.Request, sessionID string) error
	onConnect      func(Event)
	onDisconnect   func(Event)
	onResume       func(Event)
	onExpire       func(Event)
	onStream       func(Event)
}

func newServerConfig(opts []ServerOption) (serverConfig, error) {
	c := serverConfig{
		common:         defaultCommon(),
		pingInterval:   DefaultPingInterval,
		pingTimeout:    DefaultPingTimeout,
		maxMessageSize: DefaultMaxMessageSize,
	}
	for _, o := range opts {
		if o == nil {
			return c, &ValidationError{Field: "ServerOption", Rule: "must not be nil"}
		}
		if err := o.applyServer(&c); err != nil {
			return c, err
		}
	}
	if c.pingTimeout <= c.pingInterval {
		return c, &ValidationError{Field: "WithPingTimeout", Rule: "must be longer than the ping interval (" + c.pingInterval.String() + "), got " + c.pingTimeout.String()}
	}
	return c, nil
}

// WithPingInterval sets how often the Server pings each client (default
// DefaultPingInterval).
func WithPingInterval(d time.Duration) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if err := checkDuration("WithPingInterval", d); err != nil {
			return err
		}
		c.pingInterval = d
		return nil
	})
}

// WithPingTimeout sets how long a client may stay silent before its
// connection is considered dead (default DefaultPingTimeout). Any frame
// resets it. It must be longer than the ping interval; keep it well inside
// the grace window.
func WithPingTimeout(d time.Duration) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if err := checkDuration("WithPingTimeout", d); err != nil {
			return err
		}
		c.pingTimeout = d
		return nil
	})
}

// WithMaxMessageSize sets the largest frame a client may send, in bytes
// (default DefaultMaxMessageSize; 256 to 1 MiB). A larger frame closes the
// connection with CloseMessageTooBig and a reason that gives the limit; no
// more of it than the limit is held in memory.
func WithMaxMessageSize(n int) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if n < 256 || n > 1<<20 {
			return &ValidationError{Field: "WithMaxMessageSize", Rule: "must be between 256 and 1048576 bytes, got " + strconv.Itoa(n)}
		}
		c.maxMessageSize = int64(n)
		return nil
	})
}

// WithAllowedOrigins lists the browser origins allowed to connect, as
// "scheme://host[:port]" (e.g. "https://app.example.com"), or "*" for any.
// Without it, a browser must come from the same host as the request. A
// request without an Origin header (not a browser) is always allowed;
// authenticate it with the token and WithAuthorize.
func WithAllowedOrigins(origins ...string) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if len(origins) == 0 {
			return &ValidationError{Field: "WithAllowedOrigins", Rule: "needs at least one origin"}
		}
		c.origins, c.anyOrigin = []string{}, false
		for _, o := range origins {
			if o == "*" {
				c.anyOrigin = true
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				return &ValidationError{Field: "WithAllowedOrigins", Rule: "each origin must be \"*\" or scheme://host[:port] with scheme http or https, got " + quoteShort(o)}
			}
			c.origins = append(c.origins, strings.ToLower(u.Scheme+"://"+u.Host))
		}
		return nil
	})
}

// WithAuthorize sets a hook that decides whether the request r (the HTTP
// upgrade request: cookies and headers are visible) may connect to the
// session. It runs after the token checks out and before the session is
// joined; an error refuses the connection with CloseUnauthorized. The error
// is logged, not sent to the client.
func WithAuthorize(f func(r *http.Request, sessionID string) error) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if f == nil {
			return &ValidationError{Field: "WithAuthorize", Rule: "hook must not be nil"}
		}
		c.authorize = f
		return nil
	})
}

// OnConnect sets the callback for a session's first connection after Open.
func OnConnect(f func(Event)) ServerOption {
	return callbackOption("OnConnect", f, func(c *serverConfig) *func(Event) { return &c.onConnect })
}

// OnDisconnect sets the callback for a connected session losing its
// connection; Event.Reason says why. The grace window starts: OnResume or
// OnExpire follows, exactly once, unless the session is released first.
func OnDisconnect(f func(Event)) ServerOption {
	return callbackOption("OnDisconnect", f, func(c *serverConfig) *func(Event) { return &c.onDisconnect })
}

// OnResume sets the callback for a client coming back within the grace
// window, or replacing the connection of a connected session.
func OnResume(f func(Event)) ServerOption {
	return callbackOption("OnResume", f, func(c *serverConfig) *func(Event) { return &c.onResume })
}

// OnExpire sets the callback for a session whose grace window passed with no
// client connected (after a disconnect, or after Open with no connection).
// The session no longer exists when it runs.
func OnExpire(f func(Event)) ServerOption {
	return callbackOption("OnExpire", f, func(c *serverConfig) *func(Event) { return &c.onExpire })
}

func callbackOption(name string, f func(Event), field func(*serverConfig) *func(Event)) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if f == nil {
			return &ValidationError{Field: name, Rule: "callback must not be nil"}
		}
		*field(c) = f
		return nil
	})
}

type sessionConfig struct {
	common
	dialer           websocket.Dialer
	activityInterval time.Duration
	backOff          func() backoff.BackOff
	onStateChange    func(from, to State)
	onNotice         func(Notice)
}

func newSessionConfig(opts []SessionOption) (sessionConfig, error) {
	c := sessionConfig{
		common: defaultCommon(),
		dialer: websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
		},
		activityInterval: DefaultActivityInterval,
	}
	for _, o := range opts {
		if o == nil {
			return c, &ValidationError{Field: "SessionOption", Rule: "must not be nil"}
		}
		if err := o.applySession(&c); err != nil {
			return c, err
		}
	}
	c.dialer.Subprotocols = []string{SubprotocolV2, Subprotocol}
	if c.dialer.HandshakeTimeout <= 0 {
		c.dialer.HandshakeTimeout = 10 * time.Second
	}
	return c, nil
}

// WithDialer sets the WebSocket dialer (a copy is kept; its Subprotocols are
// replaced by SubprotocolV2 and Subprotocol). Tests pass one whose NetDialContext dials an
// in-memory listener.
func WithDialer(d *websocket.Dialer) SessionOption {
	return sessionOption(func(c *sessionConfig) error {
		if d == nil {
			return &ValidationError{Field: "WithDialer", Rule: "dialer must not be nil"}
		}
		c.dialer = *d
		return nil
	})
}

// WithActivityInterval sets how often at most the Session reports user
// activity (default DefaultActivityInterval). Touch calls are coalesced: the
// first one is sent at once, later ones within the interval become one frame
// at its end.
func WithActivityInterval(d time.Duration) SessionOption {
	return sessionOption(func(c *sessionConfig) error {
		if err := checkDuration("WithActivityInterval", d); err != nil {
			return err
		}
		c.activityInterval = d
		return nil
	})
}

// WithBackOff sets the reconnect policy: newBackOff is called once per outage
// for a fresh BackOff (BackOff values are not safe for reuse across
// goroutines). Attempts stop at backoff.Stop or when the grace window has
// passed, whichever comes first. The default is an exponential backoff from
// 500 ms up to 10 s with ±50 % jitter and MaxElapsedTime = the grace window.
func WithBackOff(newBackOff func() backoff.BackOff) SessionOption {
	return sessionOption(func(c *sessionConfig) error {
		if newBackOff == nil {
			return &ValidationError{Field: "WithBackOff", Rule: "factory must not be nil"}
		}
		c.backOff = newBackOff
		return nil
	})
}

// OnStateChange sets the callback for Session state changes.
func OnStateChange(f func(from, to State)) SessionOption {
	return sessionOption(func(c *sessionConfig) error {
		if f == nil {
			return &ValidationError{Field: "OnStateChange", Rule: "callback must not be nil"}
		}
		c.onStateChange = f
		return nil
	})
}

// OnNotice sets the callback for notices from the server: queue, ready,
// custom, idle, and released (delivered once, just before the Session
// closes).
func OnNotice(f func(Notice)) SessionOption {
	return sessionOption(func(c *sessionConfig) error {
		if f == nil {
			return &ValidationError{Field: "OnNotice", Rule: "callback must not be nil"}
		}
		c.onNotice = f
		return nil
	})
}

func (c *sessionConfig) newBackOff(grace time.Duration) backoff.BackOff {
	if c.backOff != nil {
		return c.backOff()
	}
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(10*time.Second),
		backoff.WithMaxElapsedTime(grace),
	)
}
