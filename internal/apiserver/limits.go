package apiserver

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound what clients can make a server spend. A zero field takes
// its default (DefaultLimits); a negative one turns that limit off.
type Limits struct {
	// ReadHeaderTimeout bounds the time to read a request's headers.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes caps the size of a request's headers
	// (http.Server.MaxHeaderBytes); a request over it is answered 431.
	// The SDKs send about 1 KB, a temporary credential's token included.
	MaxHeaderBytes int
	// ReadTimeout bounds the time to read a whole request, body included,
	// from the moment the connection is accepted or the previous request
	// ended (http.Server.ReadTimeout). At the default, a 10 MB body must
	// arrive at 175 KB/s or more.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request's headers
	// to the end of the answer, so it must exceed the longest answer the
	// server is asked to delay (injected latency, a synchronous function).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request.
	IdleTimeout time.Duration
	// MaxConns caps the connections open at once. Every accepted
	// connection counts until it is closed, hijacked ones (the CAR client
	// stream) included. At the cap, the connection idle the longest (a
	// keep-alive connection between requests, or one that has not sent
	// its first request yet) is closed to make room; when no connection is
	// idle, new ones wait in the listen backlog until one closes.
	MaxConns int
	// BodyBytesInFlight caps the bytes of large request bodies (over
	// SmallBody) being read at once, counted by their Content-Length (a
	// body without one counts as MaxRequestBytes). A large body waits, in
	// arrival order, for room; a body that has not got it after BodyWait
	// is refused with RequestLimitExceeded without being read. Small
	// bodies never wait: their memory is bounded by MaxConns.
	BodyBytesInFlight int64
	// BodyWait is how long a large body waits for room under
	// BodyBytesInFlight.
	BodyWait time.Duration
}

// SmallBody is the largest body that is read without a place under
// Limits.BodyBytesInFlight: every API call of the SDKs is far smaller.
const SmallBody = 16 << 10

// DefaultLimits are the limits a zero Limits field takes. Memory for
// request bodies stays under BodyBytesInFlight + MaxConns × SmallBody
// (64 MB + 64 MB) whatever clients send.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	MaxHeaderBytes:    64 << 10,
	ReadTimeout:       time.Minute,
	WriteTimeout:      5 * time.Minute,
	IdleTimeout:       time.Minute,
	MaxConns:          4096,
	BodyBytesInFlight: 64 << 20,
	BodyWait:          10 * time.Second,
}

// WithDefaults returns l with each zero field set from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	l.ReadHeaderTimeout = pick(l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	l.ReadTimeout = pick(l.ReadTimeout, d.ReadTimeout)
	l.WriteTimeout = pick(l.WriteTimeout, d.WriteTimeout)
	l.IdleTimeout = pick(l.IdleTimeout, d.IdleTimeout)
	l.BodyWait = pick(l.BodyWait, d.BodyWait)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxConns == 0 {
		l.MaxConns = d.MaxConns
	}
	if l.BodyBytesInFlight == 0 {
		l.BodyBytesInFlight = d.BodyBytesInFlight
	}
	return l
}

// Validate reports a limit that cannot work.
func (l Limits) Validate() error {
	if l.BodyBytesInFlight > 0 && l.BodyBytesInFlight < MaxRequestBytes {
		return errors.New("Limits.BodyBytesInFlight must be at least MaxRequestBytes (10 MB), or a body of the largest size could never be read")
	}
	return nil
}

func positive(d time.Duration) time.Duration {
	if d < 0 {
		return 0 // off: http.Server's zero
	}
	return d
}

// HTTPServer returns an http.Server for h with l's timeouts, logging its
// own errors to logger at debug level. Serve it on [Limits.Listener]'s
// listener: the http.Server's ConnState is what lets the listener find
// idle connections, so keep it.
func (l Limits) HTTPServer(h http.Handler, logger *slog.Logger, ln *Listener) *http.Server {
	l = l.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: positive(l.ReadHeaderTimeout),
		ReadTimeout:       positive(l.ReadTimeout),
		WriteTimeout:      positive(l.WriteTimeout),
		IdleTimeout:       positive(l.IdleTimeout),
		MaxHeaderBytes:    max(l.MaxHeaderBytes, 0), // 0: http.DefaultMaxHeaderBytes (1 MB)
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	if ln != nil {
		hs.ConnState = ln.connState
	}
	return hs
}

// Listener caps the connections of an inner listener (Limits.MaxConns).
// It keeps the inner listener's DialContext, if any, reachable through
// Inner.
type Listener struct {
	net.Listener
	max int

	mu     sync.Mutex
	open   int
	conns  map[*limitedConn]struct{} // the open connections, counted against max
	freed  chan struct{}             // signalled (non-blocking) when a connection closes
	closed chan struct{}
	once   sync.Once
	// idleSeq numbers the moments connections go idle: the connection
	// whose idle number is the lowest has waited the longest. A
	// connection's own number (limitedConn.idle) is 0 while it is active,
	// so that following the http.Server's states takes no lock.
	idleSeq atomic.Uint64
}

// Listener wraps inner to enforce MaxConns; with MaxConns off it still
// wraps, counting nothing.
func (l Limits) Listener(inner net.Listener) *Listener {
	l = l.WithDefaults()
	return &Listener{
		Listener: inner, max: l.MaxConns,
		conns: make(map[*limitedConn]struct{}),
		freed: make(chan struct{}, 1), closed: make(chan struct{}),
	}
}

// Inner returns the wrapped listener.
func (ln *Listener) Inner() net.Listener { return ln.Listener }

// Open returns how many accepted connections are open.
func (ln *Listener) Open() int {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.open
}

// Accept accepts the next connection, then makes room for it under the
// cap: it closes the longest-idle connection when there is no place, or
// waits for one to close when none is idle. The connection waiting is the
// only one over the cap, and it is not read meanwhile.
func (ln *Listener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitedConn{Conn: c, ln: ln}
	if ln.max <= 0 {
		return lc, nil
	}
	for {
		ln.mu.Lock()
		if ln.open < ln.max {
			ln.open++
			ln.conns[lc] = struct{}{}
			lc.idle.Store(ln.idleSeq.Add(1)) // no request yet: evictable
			ln.mu.Unlock()
			return lc, nil
		}
		oldest := ln.claimOldestIdle()
		ln.mu.Unlock()
		if oldest != nil {
			oldest.Close() // frees its place
			continue
		}
		select {
		case <-ln.freed:
		case <-ln.closed:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// Close closes the inner listener and wakes a waiting Accept.
func (ln *Listener) Close() error {
	ln.once.Do(func() { close(ln.closed) })
	return ln.Listener.Close()
}

// claimOldestIdle returns the open connection idle the longest, taken
// out of the idle ones (so that no other Accept picks it), or nil; ln.mu
// is held. One that turns active meanwhile is not taken.
func (ln *Listener) claimOldestIdle() *limitedConn {
	for {
		var oldest *limitedConn
		var since uint64
		for c := range ln.conns {
			if n := c.idle.Load(); n != 0 && (oldest == nil || n < since) {
				oldest, since = c, n
			}
		}
		if oldest == nil || oldest.idle.CompareAndSwap(since, 0) {
			return oldest
		}
	}
}

func (ln *Listener) release(c *limitedConn) {
	ln.mu.Lock()
	delete(ln.conns, c)
	ln.open--
	ln.mu.Unlock()
	select {
	case ln.freed <- struct{}{}:
	default:
	}
}

// connState follows the http.Server's view of each connection: idle ones
// may be evicted, active and hijacked ones may not.
func (ln *Listener) connState(c net.Conn, state http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok || ln.max <= 0 {
		return
	}
	if state == http.StateIdle {
		lc.idle.Store(ln.idleSeq.Add(1))
	} else {
		lc.idle.Store(0)
	}
}

type limitedConn struct {
	net.Conn
	ln     *Listener
	idle   atomic.Uint64 // since when it is idle (Listener.idleSeq); 0: active
	mu     sync.Mutex
	closed bool

	// The read deadline reaches the inner connection when a Read starts,
	// or at once while one is in progress: only the deadline in force
	// during a Read has any effect, and net/http sets one several times
	// per request with no Read between (cleared when the next request
	// arrives, then the header timeout, then the whole request's), each a
	// change of a runtime timer; only the last of a row is applied.
	dmu         sync.Mutex
	reading     int       // Reads in progress
	readWant    time.Time // the read deadline last set
	readPending bool      // readWant is not applied to the inner connection yet
}

// SetReadDeadline sets the deadline of future Reads and of a Read in
// progress, as net.Conn's does.
func (c *limitedConn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.reading > 0 {
		c.readPending = false
		return c.Conn.SetReadDeadline(t)
	}
	c.readWant, c.readPending = t, true
	return nil
}

// SetDeadline sets both deadlines, the read one as SetReadDeadline.
func (c *limitedConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

// Read applies the read deadline last set, then reads.
func (c *limitedConn) Read(p []byte) (int, error) {
	c.dmu.Lock()
	if c.readPending {
		c.readPending = false
		c.Conn.SetReadDeadline(c.readWant) // on a closed connection the Read fails too
	}
	c.reading++
	c.dmu.Unlock()
	n, err := c.Conn.Read(p)
	c.dmu.Lock()
	c.reading--
	c.dmu.Unlock()
	return n, err
}

// Close closes the connection and frees its place, once.
func (c *limitedConn) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	err := c.Conn.Close()
	if first && c.ln.max > 0 {
		c.ln.release(c)
	}
	return err
}
