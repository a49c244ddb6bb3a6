package heartbeat

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
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
	DefaultGraceWindow    = 90 * time.Second
	DefaultMaxMessageSize = 4 << 10
	DefaultWriteTimeout   = 10 * time.Second

	// DefaultFrameRate and DefaultFrameBurst are the Server's limit on
	// client frames (WithFrameRateLimit): 20 frames per second, with bursts
	// of 100. A browser client sends at most about one activity frame per
	// second plus one pong per ping interval.
	DefaultFrameRate  = 20
	DefaultFrameBurst = 100
)

// ServerOption configures a Server (see NewServer). String returns the name
// of the function that made it ("OnIdle", "WithReconnectWindow"), so that
// code which builds a Server for its caller, as car.SessionManager does, can
// refuse a setting it makes itself instead of silently replacing it. The Go
// client's options are package hbclient's Option: neither side takes the
// other's.
type ServerOption interface {
	applyServer(*serverConfig) error
	String() string
}

// option is the one implementation of ServerOption.
type option struct {
	name  string
	apply func(*serverConfig) error
}

func (o option) applyServer(c *serverConfig) error { return o.apply(c) }
func (o option) String() string                    { return o.name }

// serverOption makes the ServerOption called name.
func serverOption(name string, apply func(*serverConfig) error) ServerOption {
	return option{name: name, apply: apply}
}

// WithLogger sets the logger. The default discards everything. Tokens are
// never logged.
func WithLogger(l *slog.Logger) ServerOption {
	return serverOption("WithLogger", func(c *serverConfig) error {
		if l == nil {
			return &ValidationError{Field: "WithLogger", Rule: "logger must not be nil"}
		}
		c.logger = l
		return nil
	})
}

// WithIdleThreshold sets the idle threshold (default DefaultIdleThreshold).
// OnIdle fires at 1×, 2×, 3×… the threshold after the client's last
// activity frame.
func WithIdleThreshold(d time.Duration) ServerOption {
	return serverOption("WithIdleThreshold", func(c *serverConfig) error {
		if err := checkDuration("WithIdleThreshold", d); err != nil {
			return err
		}
		c.idleThreshold = d
		return nil
	})
}

// WithWriteTimeout bounds every write to a client (default
// DefaultWriteTimeout); a client that stops reading is disconnected with
// ReasonWriteTimeout. It is also how long a closing connection may take to
// finish the close handshake.
func WithWriteTimeout(d time.Duration) ServerOption {
	return serverOption("WithWriteTimeout", func(c *serverConfig) error {
		if err := checkDuration("WithWriteTimeout", d); err != nil {
			return err
		}
		c.writeTimeout = d
		return nil
	})
}

// OnIdle sets the idle callback. It fires at 1×, 2×, 3×… the idle threshold
// after the client's last activity frame with Event.Times = 1, 2, 3…; an
// activity frame starts the count again, and idle time keeps counting while
// the client is disconnected.
func OnIdle(f func(Event)) ServerOption {
	return callbackOption("OnIdle", f, func(c *serverConfig) *func(Event) { return &c.onIdle })
}

func checkDuration(field string, d time.Duration) error {
	if rule := wire.DurationRule(d); rule != "" {
		return &ValidationError{Field: field, Rule: rule}
	}
	return nil
}

type serverConfig struct {
	logger         *slog.Logger
	idleThreshold  time.Duration
	grace          time.Duration // WithReconnectWindow
	writeTimeout   time.Duration
	onIdle         func(Event)
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
		logger:         slog.New(slog.DiscardHandler),
		idleThreshold:  DefaultIdleThreshold,
		grace:          DefaultReconnectWindow,
		writeTimeout:   DefaultWriteTimeout,
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
// it, and a Go client (package hbclient) bounds its reconnect attempts with
// it unless told otherwise (hbclient.WithResumeWindow).
//
// Keep the window well above the ping interval ([WithPingInterval]): the
// window counts from the last frame, and on an idle connection the last
// frame is the last ping's, up to one interval old when the connection
// drops; with a window shorter than that, such a client finds its window
// already spent and gives up at once.
func WithReconnectWindow(d time.Duration) ServerOption {
	return serverOption("WithReconnectWindow", func(c *serverConfig) error {
		if err := checkDuration("WithReconnectWindow", d); err != nil {
			return err
		}
		c.grace = d
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
	return serverOption("WithReloadGrace", func(c *serverConfig) error {
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
// (Server.SetTokenKeys, in the three phases of the package documentation's
// "Rotating the token key": the new key older everywhere, then current
// everywhere, then the old one dropped once no client holds its tokens)
// breaks no connected session. Each key must be at least
// MinTokenKeyLen (32) random bytes, and there are at most MaxTokenKeys keys
// in all. The keys are copied; they are secrets and never logged or put in
// an error. Without this option the Server uses a random key of its own,
// and its tokens work only on it. See also Server.SetTokenKeys.
func WithTokenKeys(current []byte, older ...[]byte) ServerOption {
	return serverOption("WithTokenKeys", func(c *serverConfig) error {
		r, err := newKeyRing("WithTokenKeys", current, older)
		if err != nil {
			return err
		}
		c.tokenKeys = r
		return nil
	})
}

// WithPingInterval sets how often the Server pings each client (default
// DefaultPingInterval). On an idle connection the pings are the frames the
// reconnect window counts from: keep the interval well below that window
// (see [WithReconnectWindow]).
func WithPingInterval(d time.Duration) ServerOption {
	return serverOption("WithPingInterval", func(c *serverConfig) error {
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
	return serverOption("WithPingTimeout", func(c *serverConfig) error {
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
	return serverOption("WithMaxMessageSize", func(c *serverConfig) error {
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
	return serverOption("WithFrameRateLimit", func(c *serverConfig) error {
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
	return serverOption("WithAllowedOrigins", func(c *serverConfig) error {
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
	return serverOption("WithAuthorize", func(c *serverConfig) error {
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
	return serverOption(name, func(c *serverConfig) error {
		if f == nil {
			return &ValidationError{Field: name, Rule: "callback must not be nil"}
		}
		*field(c) = f
		return nil
	})
}
