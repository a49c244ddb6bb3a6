package cartest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// Defaults of the model. Each can be changed with an option.
const (
	// DefaultProjectId is the project a server without WithProject has.
	DefaultProjectId = "cap-cartest1" //nolint:revive // the API's spelling
	// DefaultPackId is the pack a server without WithPack has, bound to
	// every project.
	DefaultPackId = "pack-cartest1" //nolint:revive
	// DefaultPackSize is the number of concurrencies of the default pack.
	DefaultPackSize = 3
	// DefaultReconnectWait is how long a session keeps its concurrency
	// after its client went away (or before its first client connects):
	// 90 s, as the international CAR documentation says.
	DefaultReconnectWait = 90 * time.Second
	// MinReconnectWait and MaxReconnectWait bound Project.ReconnectWait,
	// as the console bounds a project's ReconnectTimeout.
	MinReconnectWait = 40 * time.Second
	MaxReconnectWait = time.Hour
	// DefaultLockTime is how long ApplyConcurrent's lock waits for
	// CreateSession. CAR does not document it; 30 s is longer than the
	// 20 s the SDK documents as ApplyConcurrent's own server timeout.
	DefaultLockTime = 30 * time.Second
	// DefaultCleanupDelay is how long a concurrency is cleaned up after
	// its session ended, before it is idle again. CAR does not document
	// it; it is counted as Running meanwhile.
	DefaultCleanupDelay = 10 * time.Second
	// DefaultStreamPath is the path of the client stream WebSocket.
	DefaultStreamPath = "/stream"
	// MaxPackSize bounds Pack.Size.
	MaxPackSize = 100_000
)

// Project is a CAR project: the application users are served, and how long
// their concurrency waits for a reconnect.
type Project struct {
	// ProjectId names the project, e.g. "cap-abcdefgh". Required.
	ProjectId string //nolint:revive // the API's spelling
	// ReconnectWait is the project's ReconnectTimeout: 0 means
	// DefaultReconnectWait; otherwise from 40 s to 1 h.
	ReconnectWait time.Duration
}

// Pack is a concurrency pack: Size concurrencies, each serving one user at
// a time, bound to the projects named. A pack bound to several projects is
// shared by them; a pack bound to none counts in the account's total only.
type Pack struct {
	// PackId names the pack; its concurrencies are PackId-1, PackId-2…
	// Letters, digits, '-', '_' and '.' only. Required.
	PackId string //nolint:revive
	// Size is the number of concurrencies, from 1 to MaxPackSize.
	Size int
	// Projects are the ProjectIds the pack serves, each declared with
	// WithProject (or DefaultProjectId when there is no WithProject).
	Projects []string
}

// Option configures a Server.
type Option func(*config) error

type config struct {
	host         apiserver.HostConfig // the shell's options: listener, credentials, clock, rates, logger, limits
	streamPath   string
	projects     []Project
	packs        []Pack
	lockTime     time.Duration
	cleanupDelay time.Duration
}

func newConfig(opts []Option) (*config, error) {
	cfg := &config{
		streamPath:   DefaultStreamPath,
		lockTime:     DefaultLockTime,
		cleanupDelay: DefaultCleanupDelay,
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("cartest: nil Option")
		}
		if err := opt(cfg); err != nil {
			return nil, fmt.Errorf("cartest: %w", err)
		}
	}
	if len(cfg.projects) == 0 {
		cfg.projects = []Project{{ProjectId: DefaultProjectId}}
	}
	seen := make(map[string]bool)
	for i, p := range cfg.projects {
		if seen[p.ProjectId] {
			return nil, fmt.Errorf("cartest: project %s is declared twice", p.ProjectId)
		}
		seen[p.ProjectId] = true
		if p.ReconnectWait == 0 {
			cfg.projects[i].ReconnectWait = DefaultReconnectWait
		}
	}
	if len(cfg.packs) == 0 {
		all := make([]string, len(cfg.projects))
		for i, p := range cfg.projects {
			all[i] = p.ProjectId
		}
		cfg.packs = []Pack{{PackId: DefaultPackId, Size: DefaultPackSize, Projects: all}}
	}
	packs := make(map[string]bool)
	for _, p := range cfg.packs {
		if packs[p.PackId] {
			return nil, fmt.Errorf("cartest: pack %s is declared twice", p.PackId)
		}
		packs[p.PackId] = true
		bound := make(map[string]bool)
		for _, id := range p.Projects {
			if !seen[id] {
				return nil, fmt.Errorf("cartest: pack %s is bound to project %q, which no WithProject declares", p.PackId, id)
			}
			if bound[id] {
				return nil, fmt.Errorf("cartest: pack %s names project %s twice", p.PackId, id)
			}
			bound[id] = true
		}
	}
	return cfg, nil
}

// WithListener serves on l instead of a new listener on 127.0.0.1:0. When
// l has a method DialContext(ctx, network, addr string) (net.Conn, error),
// as internal/memnet's listener does, Server.Client and Server.DialStream
// connect through it, so the server works inside a testing/synctest bubble.
// The server closes l when it closes.
func WithListener(l net.Listener) Option {
	return func(c *config) error { return c.host.SetListener(l) }
}

// WithStreamPath sets the path of the client stream WebSocket (default
// "/stream"). A server mounted under a prefix, as apiserver.Mux mounts it
// under /car/, sets the full path, e.g. "/car/stream": the ServerSession
// carries that path.
func WithStreamPath(path string) Option {
	return func(c *config) error {
		if !strings.HasPrefix(path, "/") || path == "/" || strings.ContainsAny(path, "?# ") {
			return fmt.Errorf("WithStreamPath(%q): the path must start with '/', must not be '/' and must have no query, fragment or space", path)
		}
		c.streamPath = path
		return nil
	}
}

// WithCredentials lets in a permanent key pair. Without a credential option
// the server makes a random pair. With several, every one is accepted and
// the first one given is the one Credentials and Client use.
func WithCredentials(secretID, secretKey string) Option {
	return WithTemporaryCredentials(secretID, secretKey, "")
}

// WithTemporaryCredentials lets in a temporary key pair: its requests must
// carry token in X-TC-Token (AuthFailure.TokenFailure otherwise).
func WithTemporaryCredentials(secretID, secretKey, token string) Option {
	return func(c *config) error { return c.host.AddCredential(secretID, secretKey, token) }
}

// WithProject declares a project. Without it the server has one project,
// DefaultProjectId.
func WithProject(p Project) Option {
	return func(c *config) error {
		if p.ProjectId == "" {
			return errors.New("WithProject: Project.ProjectId is required")
		}
		if p.ReconnectWait != 0 && (p.ReconnectWait < MinReconnectWait || p.ReconnectWait > MaxReconnectWait) {
			return fmt.Errorf("project %s: ReconnectWait %v is outside %v–%v, the range of CAR's ReconnectTimeout", p.ProjectId, p.ReconnectWait, MinReconnectWait, MaxReconnectWait)
		}
		c.projects = append(c.projects, p)
		return nil
	}
}

// WithPack declares a concurrency pack. Without it the server has one pack,
// DefaultPackId of DefaultPackSize concurrencies, bound to every project.
// Concurrencies are handed out in the order packs are declared.
func WithPack(p Pack) Option {
	return func(c *config) error {
		if p.PackId == "" {
			return errors.New("WithPack: Pack.PackId is required")
		}
		for _, r := range p.PackId {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
				return fmt.Errorf("pack %q: PackId may hold only letters, digits, '-', '_' and '.'", p.PackId)
			}
		}
		if p.Size < 1 || p.Size > MaxPackSize {
			return fmt.Errorf("pack %s: Size %d is outside 1–%d", p.PackId, p.Size, MaxPackSize)
		}
		p.Projects = append([]string(nil), p.Projects...)
		c.packs = append(c.packs, p)
		return nil
	}
}

// WithLockTime sets how long ApplyConcurrent's lock waits for
// CreateSession (default DefaultLockTime, 30 s); it must be positive.
func WithLockTime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithLockTime(%v): the lock time must be positive", d)
		}
		c.lockTime = d
		return nil
	}
}

// WithCleanupDelay sets how long a concurrency is cleaned up after its
// session ended before it is idle again (default DefaultCleanupDelay,
// 10 s); 0 releases it at once.
func WithCleanupDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithCleanupDelay(%v): the delay must not be negative", d)
		}
		c.cleanupDelay = d
		return nil
	}
}

// WithManualClock makes the model clock stand at start until Server.Advance
// moves it. The default clock runs in real time (inside a synctest bubble,
// the bubble's time).
func WithManualClock(start time.Time) Option {
	return func(c *config) error { return c.host.SetManualClock(start) }
}

// WithRateLimit sets the limit of one action, in requests per second of
// host time; 0 removes it. The defaults are CAR's: 100/s for
// ApplyConcurrent, CreateSession and DestroySession, 20/s for the others.
func WithRateLimit(action string, perSecond int) Option {
	return func(c *config) error {
		if !isAction(action) {
			return fmt.Errorf("WithRateLimit: CAR has no action %q", action)
		}
		return c.host.SetRateLimit(action, perSecond)
	}
}

// WithoutRateLimits removes every rate limit, for load tests. A later
// WithRateLimit sets one again.
func WithoutRateLimits() Option {
	return func(c *config) error {
		c.host.RemoveRateLimits()
		return nil
	}
}

// WithLogger makes the server log its calls and events at debug level.
// The default is silent. Secrets and session tokens are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { return c.host.SetLogger(l) }
}

// Limits bound what clients can make the server spend: the http.Server's
// timeouts, a cap on connections, and the bytes of large request bodies
// read at once. A zero field takes its default (apiserver.DefaultLimits:
// read header 10 s, read 1 min, write 5 min, idle 1 min, 4,096
// connections, 64 MB of large bodies waiting at most 10 s); a negative one
// turns that limit off. The client streams are hijacked connections: no
// timeout applies to them (the stream has its own heartbeat), but each
// counts under MaxConns while it is open.
type Limits = apiserver.Limits

// WithLimits sets the server's limits (see Limits).
func WithLimits(l Limits) Option {
	return func(c *config) error { return c.host.SetLimits(l) }
}
