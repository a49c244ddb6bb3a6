package heartbeat

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

type connState uint8

const (
	connHello   connState = iota // upgraded, waiting for the hello
	connOpen                     // attached to a session
	connClosing                  // close frame queued or sent; waiting for the peer
	connClosed                   // reader gone, network connection closed
)

// conn is the server side of one WebSocket connection. Its reader goroutine
// is its one long-lived goroutine; a writer goroutine exists only while it
// has output (writer.go).
type conn struct {
	srv *Server
	ws  *websocket.Conn

	// sess is set once, under Server.mu, when the hello is accepted, before
	// the long-lived reader starts; the reader may read it without the lock.
	sess *serverSession

	lastSeen atomic.Int64 // time.Duration since Server.epoch of the last frame
	closing  atomic.Bool  // the reader ignores frames once set
	wstate   atomic.Int32 // writer state: wIdle, wBusy, wMore (writer.go)

	// Reader goroutine only (finish reads peerCode on that goroutine too).
	tat      time.Duration  // frame rate limit: theoretical arrival time (GCRA)
	peerCode int            // close code of the client's close frame, if any
	version  int            // ProtocolVersion or ProtocolVersionV2, from the subprotocol; set by accept
	streams  *streamLimiter // made by the first stream frame; the reader's alone

	// Guarded by Server.mu.
	timer    timerEntry
	state    connState
	nextPing time.Duration
	closeAt  time.Duration // hello deadline (connHello), close deadline (connClosing)
	out      [][]byte      // frames to send before the session's pending notices
	closeMsg []byte        // close frame to send after out
	pingDue  bool
}

func (c *conn) entry() *timerEntry { return &c.timer }

func (c *conn) seen() { c.lastSeen.Store(int64(c.srv.now())) }

func (c *conn) sessionID() string {
	if c.sess == nil {
		return ""
	}
	return c.sess.id
}

// accept registers a freshly upgraded connection.
func (s *Server) accept(ws *websocket.Conn) *conn {
	c := &conn{srv: s, ws: ws, timer: timerEntry{index: -1}, version: negotiatedVersion(ws.Subprotocol())}
	c.seen()
	// The connection checks the size limit itself, to close with a reason
	// (readMessage); the library's limit is a backstop against giant
	// frames, which it cuts off at once with CloseMessageTooBig and no text.
	ws.SetReadLimit(s.cfg.maxMessageSize * readLimitBackstop)
	ws.SetPongHandler(func(string) error { return c.arrived() })
	ws.SetPingHandler(func(data string) error {
		if err := c.arrived(); err != nil {
			return err
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.cfg.writeTimeout))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	c.closeAt = s.now() + helloTimeout
	s.schedule(c, c.closeAt)
	switch {
	case s.closed:
		s.closeLocked(c, CloseGoingAway, "server shutting down")
	case c.version == 0:
		s.closeLocked(c, CloseUnsupportedVersion, "client must offer subprotocol "+SubprotocolV2+" or "+Subprotocol)
	}
	return c
}

// handshake reads the hello and joins the session. It reports whether the
// connection is now attached; if not, it is closing (or broken) and the
// caller drains it with readLoop.
func (c *conn) handshake(r *http.Request) bool {
	s := c.srv
	if c.closing.Load() {
		return false
	}
	mt, data, err := c.readMessage()
	if err != nil && !errors.Is(err, errMessageTooBig) {
		return false
	}
	if c.arrived() != nil || c.closing.Load() {
		return false
	}
	if err != nil {
		return c.refuse(CloseMessageTooBig, c.tooBigText())
	}
	f, err := decodeClientFrame(mt, data)
	var fe *frameError
	switch {
	case errors.As(err, &fe):
		return c.refuse(fe.code, fe.reason)
	case f.Type != frameHello:
		return c.refuse(CloseProtocolError, "first frame must be hello, got "+quoteShort(f.Type))
	case f.V != c.version:
		return c.refuse(CloseUnsupportedVersion, "unsupported protocol version "+strconv.Itoa(f.V)+"; this connection speaks "+strconv.Itoa(c.version))
	}
	if err := validateSessionID("hello session", f.Session); err != nil {
		return c.refuse(CloseProtocolError, err.Error())
	}
	used, ok := s.tokens.verify(f.Session, f.Token)
	if !ok {
		s.cfg.logger.Debug("heartbeat: hello refused: invalid token", "session", f.Session)
		return c.refuse(CloseUnauthorized, "invalid token")
	}
	if s.cfg.authorize != nil {
		if err := s.cfg.authorize(r, f.Session); err != nil {
			s.cfg.logger.Info("heartbeat: hello refused by the authorization hook", "session", f.Session, "err", err)
			return c.refuse(CloseUnauthorized, "not authorized")
		}
	}
	return s.join(c, f.Session, used)
}

// refuse closes a connection whose hello was refused.
func (c *conn) refuse(code int, reason string) bool {
	c.srv.mu.Lock()
	c.srv.closeLocked(c, code, reason)
	c.srv.mu.Unlock()
	return false
}

// readLoop reads frames until the connection fails or the close handshake
// ends, then cleans up. Frames of a closing connection are discarded.
func (c *conn) readLoop() {
	var reason Reason
	defer func() { c.finish(reason) }()
	for {
		mt, data, err := c.readMessage()
		if err != nil && !errors.Is(err, errMessageTooBig) {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				c.peerCode = ce.Code
				c.lastSeen.Store(int64(c.srv.now())) // the close frame is the last sign of life
			}
			reason = readFailure(err)
			return
		}
		if c.arrived() != nil {
			reason = ReasonRateLimited
			return
		}
		if c.closing.Load() {
			continue
		}
		if err != nil {
			c.closeForFrame(ReasonMessageTooBig, CloseMessageTooBig, c.tooBigText())
			continue
		}
		f, err := decodeClientFrame(mt, data)
		var fe *frameError
		switch {
		case errors.As(err, &fe):
			c.protocolError(fe.code, fe.reason)
		case f.Type == frameHello:
			c.protocolError(CloseProtocolError, "duplicate hello")
		case f.Type == frameActivity:
			c.sess.lastActivity.Store(int64(c.srv.now()))
		case f.Type == frameStream:
			c.stream(f)
		}
	}
}

// errRateLimited ends the reader of a connection that went on sending over
// the rate limit after it was told to close.
var errRateLimited = errors.New("heartbeat: client over the frame rate limit")

// arrived accounts for a frame from the client, data or control: it is a
// sign of life, and it is charged against the frame rate limit (a GCRA,
// which is a token bucket kept in one number). The first frame over the
// limit closes the connection with CloseRateLimited; the close handshake
// gets a fresh budget, and a client that exhausts it too gets
// errRateLimited, which ends the reader and cuts the connection, so a flood
// costs at most two bursts of frames. Reader goroutine only.
func (c *conn) arrived() error {
	s := c.srv
	now := s.now()
	c.lastSeen.Store(int64(now))
	tat := max(c.tat, now) + s.cfg.frameEvery
	if tat-now <= s.cfg.frameTolerance {
		c.tat = tat
		return nil
	}
	if c.closing.Load() {
		return errRateLimited
	}
	c.tat = now
	text := "rate limit: at most " + strconv.Itoa(s.cfg.frameRate) + " frames per second, bursts of " + strconv.Itoa(s.cfg.frameBurst)
	s.cfg.logger.Info("heartbeat: client over the frame rate limit; closing", "session", c.sessionID())
	s.mu.Lock()
	if ss := c.sess; ss != nil && ss.conn == c {
		ss.hasResume = false // only a fresh Open brings the user back
	}
	s.detachLocked(c, ReasonRateLimited)
	s.closeLocked(c, CloseRateLimited, text)
	s.mu.Unlock()
	return nil
}

// readLimitBackstop times the size limit is where the WebSocket library
// cuts a connection off without reading further.
const readLimitBackstop = 16

// errMessageTooBig: a data message exceeded the size limit.
var errMessageTooBig = errors.New("message too big")

// readMessage reads the next data message (control frames are handled on the
// way, each counting as a sign of life). A message over the size limit is
// errMessageTooBig; no more of it than the limit is kept, and the rest is
// discarded by the next read.
func (c *conn) readMessage() (int, []byte, error) {
	mt, r, err := c.ws.NextReader()
	if err != nil {
		return 0, nil, err
	}
	limit := c.srv.cfg.maxMessageSize
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(data)) > limit {
		return mt, nil, errMessageTooBig
	}
	return mt, data, err
}

func (c *conn) tooBigText() string {
	return "message too big: the limit is " + strconv.FormatInt(c.srv.cfg.maxMessageSize, 10) + " bytes"
}

// readFailure maps a read error to the Reason reported by OnDisconnect.
func readFailure(err error) Reason {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure:
		return ReasonClientClosed
	case errors.Is(err, websocket.ErrReadLimit):
		return ReasonMessageTooBig
	case errors.Is(err, errRateLimited):
		return ReasonRateLimited
	case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ReasonConnectionLost
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return ReasonConnectionLost
	}
	return ReasonProtocolError // gorilla's framing errors (bad opcode, RSV bits, …)
}

// protocolError closes an attached connection that sent a bad frame.
func (c *conn) protocolError(code int, reason string) {
	c.closeForFrame(ReasonProtocolError, code, reason)
}

// closeForFrame closes an attached connection because of a frame it sent:
// the session sees why (OnDisconnect), the client gets code and text.
func (c *conn) closeForFrame(why Reason, code int, text string) {
	s := c.srv
	s.cfg.logger.Debug("heartbeat: bad frame", "session", c.sessionID(), "reason", text)
	s.mu.Lock()
	s.detachLocked(c, why)
	s.closeLocked(c, code, text)
	s.mu.Unlock()
}

// finish runs when the reader exits.
func (c *conn) finish(reason Reason) {
	s := c.srv
	s.mu.Lock()
	s.detachLocked(c, reason)
	s.unschedule(c)
	c.state = connClosed
	c.closing.Store(true)
	c.out, c.closeMsg, c.pingDue = nil, nil, false
	s.mu.Unlock()
	c.ws.Close()
}

// closeLocked starts the close handshake: the close frame goes out after
// anything already queued in c.out, and the connection is cut if the peer
// has not answered within the write timeout. Caller holds Server.mu.
func (s *Server) closeLocked(c *conn, code int, reason string) {
	if c.state >= connClosing {
		return
	}
	c.state = connClosing
	c.closing.Store(true)
	c.pingDue = false
	c.closeMsg = closeMessage(code, reason)
	c.closeAt = s.now() + s.cfg.writeTimeout
	s.schedule(c, c.closeAt)
	s.kick(c)
}

// detachLocked ends c's part in its session: the session becomes
// disconnected, OnDisconnect is queued and the grace window starts. It does
// nothing if c is not the session's current connection. Caller holds
// Server.mu.
func (s *Server) detachLocked(c *conn, reason Reason) {
	ss := c.sess
	if ss == nil || ss.conn != c {
		return
	}
	now := s.now()
	last := time.Duration(c.lastSeen.Load())
	ss.conn = nil
	ss.lastSeen = last
	ss.state, ss.since = SessionDisconnected, now
	ev := Event{SessionID: ss.id, At: s.epoch.Add(now), Reason: reason, LastSeen: s.epoch.Add(last)}
	if reason == ReasonClientClosed {
		ev.CloseCode = c.peerCode
	}
	if reason != ReasonReplaced { // replaced: the newer connection takes over at once
		grace := s.cfg.graceFor(reason, c.peerCode)
		ss.expiresAt = max(now, last+grace)
		s.detachSharedLocked(ss, now, last, grace, reason == ReasonRateLimited)
		ev.ExpiresAt = s.epoch.Add(ss.expiresAt)
	}
	s.cfg.logger.Debug("heartbeat: session disconnected", "session", ss.id, "reason", string(reason))
	s.postLocked(ss.id, s.cfg.onDisconnect, ev)
}

// graceFor is how long after its last frame a session whose connection
// ended for reason survives: the reload grace when the page closed on
// purpose (1000, 1001, or a close frame without a code) or the client was
// closed for what it sent and told not to come back with that token;
// otherwise (connection lost, ping timeout, failed write, any other close
// code) the reconnect window.
func (c *serverConfig) graceFor(reason Reason, code int) time.Duration {
	switch reason {
	case ReasonClientClosed:
		switch code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
			return c.reloadGrace
		}
	case ReasonProtocolError, ReasonMessageTooBig, ReasonRateLimited:
		return c.reloadGrace
	}
	return c.grace
}

// expire handles the connection's deadlines. Caller holds Server.mu.
func (c *conn) expire(now time.Duration, fx *effects) {
	s := c.srv
	switch c.state {
	case connHello:
		if now < c.closeAt {
			s.schedule(c, c.closeAt)
			return
		}
		s.closeLocked(c, CloseProtocolError, "no hello within "+helloTimeout.String())
	case connOpen:
		dead := time.Duration(c.lastSeen.Load()) + s.cfg.pingTimeout
		if now >= dead {
			s.detachLocked(c, ReasonPingTimeout)
			s.closeLocked(c, ClosePingTimeout, "ping timeout")
			return
		}
		if now >= c.nextPing {
			c.pingDue = true
			c.nextPing = now + s.cfg.pingInterval
			s.kick(c)
		}
		s.schedule(c, min(c.nextPing, dead))
	case connClosing:
		if now < c.closeAt {
			s.schedule(c, c.closeAt)
			return
		}
		fx.hardClose = append(fx.hardClose, c.ws)
	}
}
