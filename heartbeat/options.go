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

// Defaults. A silent client is detected DefaultPingTimeout (30 s) after its
// last frame; a healthy one, a browser in a background tab included (the
// browser answers pings itself, timers throttled or not), is never silent
// for more than a ping interval plus its round trip, so it may miss two
// pongs in a row before it is dropped. The grace a disconnected session
// gets counts from the client's last frame: DefaultReconnectWindow after a
// lost connection, DefaultReloadGrace after the page closed its socket.
const (
	DefaultPingInterval    = 10 * time.Second
	DefaultPingTimeout     = 30 * time.Second
	DefaultIdleThreshold   = 300 * time.Second // TCGSDK idleThreshold
	DefaultReconnectWindow = 60 * time.Second  // TCGSDK reconnects its stream for 10 × 6 s
	DefaultReloadGrace     = 10 * time.Second
	// DefaultGraceWindow is CAR's own reconnect wait (90 s). It is not
	// the Server's default (that is DefaultReconnectWindow); it is the
	// longest window that still releases before CAR does.
	DefaultGraceWindow      = 90 * time.Second
	DefaultMaxMessageSize   = 4 << 10
	DefaultWriteTimeout     = 10 * time.Second
	DefaultActivityInterval = 5 * time.Second

	// DefaultFrameRate and DefaultFrameBurst are the Server's limit on
	// client frames (WithFrameRateLimit): 20 frames per second, with bursts
	// of 100. A browser client sends at most about one activity frame per
	// second plus one pong per ping interval.
	DefaultFrameRate  = 20
	DefaultFrameBurst = 100
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
		grace:         DefaultReconnectWindow,
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

// WithGraceWindow sets the reconnect window (default
// DefaultReconnectWindow). On the Server it is WithReconnectWindow: how long
// after its client's last frame a session whose connection was lost
// survives. On a Session, it bounds the reconnect attempts of one outage,
// counted from the last frame exchanged. Without this option a Session uses
// the window the server states in its welcome frame.
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

	reloadGrace    time.Duration
	reloadGraceSet bool
	tokenKeys      *keyRing // nil: a random key of the Server's own
	store          Store    // WithStore; nil: sessions in the Server's memory

	frameRate, frameBurst int           // WithFrameRateLimit
	frameEvery            time.Duration // 1 s / frameRate
	frameTolerance        time.Duration // frameBurst × frameEvery
	onStream              func(Event)
}

func newServerConfig(opts []ServerOption) (serverConfig, error) {
	c := serverConfig{
		common:         defaultCommon(),
		pingInterval:   DefaultPingInterval,
		pingTimeout:    DefaultPingTimeout,
		maxMessageSize: DefaultMaxMessageSize,
		frameRate:      DefaultFrameRate,
		frameBurst:     DefaultFrameBurst,
	}
	for _, o := range opts {
		if o == nil {
			return c, &ValidationError{Field: "ServerOption", Rule: "must not be nil"}
		}
		if err := o.applyServer(&c); err != nil {
			return c, err
		}
	}
	c.frameEvery = time.Second / time.Duration(c.frameRate)
	c.frameTolerance = time.Duration(c.frameBurst) * c.frameEvery
	if !c.reloadGraceSet {
		c.reloadGrace = min(DefaultReloadGrace, c.grace)
	} else if c.reloadGrace > c.grace {
		return c, &ValidationError{Field: "WithReloadGrace", Rule: "must not exceed the reconnect window (" + c.grace.String() + "), got " + c.reloadGrace.String()}
	}
	if c.pingTimeout <= c.pingInterval {
		return c, &ValidationError{Field: "WithPingTimeout", Rule: "must be longer than the ping interval (" + c.pingInterval.String() + "), got " + c.pingTimeout.String()}
	}
	return c, nil
}

// WithReconnectWindow sets how long a session whose client lost its
// connection survives, counted from the client's last frame (default
// DefaultReconnectWindow). It applies after a lost connection, a ping
// timeout, a failed write, or a close frame with a code other than 1000,
// 1001 or none; its expiry is OnExpire. The welcome frame's "grace" states
// it, and a Go Session bounds its reconnect attempts with it. It is the
// Server side of WithGraceWindow.
func WithReconnectWindow(d time.Duration) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if err := checkDuration("WithReconnectWindow", d); err != nil {
			return err
		}
		c.grace, c.graceSet = d, true
		return nil
	})
}

// WithReloadGrace sets how long a session survives after its page closed
// the WebSocket on purpose (close code 1000 or 1001, or a close frame
// without a code: tab closed, navigation, reload), counted from the
// client's last frame (default DefaultReloadGrace, or the reconnect window
// if that is shorter). Long enough for a reload or a quick reopen to
// resume; then the session expires. It also applies to a client closed for
// what it sent (bad frame, frame too big, invalid UTF-8, rate limit), which
// is told not to come back with the same token. It must not exceed the
// reconnect window.
func WithReloadGrace(d time.Duration) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if err := checkDuration("WithReloadGrace", d); err != nil {
			return err
		}
		c.reloadGrace, c.reloadGraceSet = d, true
		return nil
	})
}

// WithTokenKeys sets the keys that sign tokens: tokens are minted with
// current and accepted if any of current and older signed them, so every
// replica given the same keys accepts every replica's tokens, and a rotation
// (the new key current, the old one among older until the tokens it signed
// are used up) breaks no connected session. Each key must be at least
// MinTokenKeyLen (32) random bytes, and there are at most MaxTokenKeys keys
// in all. The keys are copied; they are secrets and never logged or put in
// an error. Without this option the Server uses a random key of its own,
// and its tokens work only on it. See also Server.SetTokenKeys.
func WithTokenKeys(current []byte, older ...[]byte) ServerOption {
	return serverOption(func(c *serverConfig) error {
		r, err := newKeyRing("WithTokenKeys", current, older)
		if err != nil {
			return err
		}
		c.tokenKeys = r
		return nil
	})
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

// WithFrameRateLimit limits the frames a client may send, data and control
// frames alike (default DefaultFrameRate per second with bursts of
// DefaultFrameBurst): at most perSecond on average, and burst at once. A
// client over the limit is closed with CloseRateLimited and a reason that
// gives the limit, its session disconnects (OnDisconnect with
// ReasonRateLimited, then the reload grace) and its resume token is
// revoked. perSecond and burst must be between 1 and 10000.
func WithFrameRateLimit(perSecond, burst int) ServerOption {
	return serverOption(func(c *serverConfig) error {
		if perSecond < 1 || perSecond > 10000 {
			return &ValidationError{Field: "WithFrameRateLimit", Rule: "perSecond must be between 1 and 10000, got " + strconv.Itoa(perSecond)}
		}
		if burst < 1 || burst > 10000 {
			return &ValidationError{Field: "WithFrameRateLimit", Rule: "burst must be between 1 and 10000, got " + strconv.Itoa(burst)}
		}
		c.frameRate, c.frameBurst = perSecond, burst
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
