package heartbeat

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// Writes. gorilla/websocket allows one writer at a time per connection, and a
// stuck client must not hold up anyone else, so no write happens on the
// scheduler's goroutine, under a lock, or on a goroutine another connection
// needs. A connection with something to send (frames, a ping, a close frame)
// gets its own writer goroutine, started on demand and gone as soon as its
// output is drained: an idle connection has none, and a client that stops
// reading holds only its own writer (and one pooled write buffer) until its
// write deadline (WithWriteTimeout) cuts it. Everyone else's frames go out at
// once. A connection has at most one writer at a time, which is the
// single-writer rule; pings and close frames go through the same writer, so
// they never wait on a shared goroutine either. Output per connection is
// bounded by construction: pings coalesce into one flag, notices replace
// each other by kind (at most 16 undelivered per session), idle notices come
// one per idle threshold, and a connection whose write does not finish
// within the write timeout is cut. Write buffers come from a pool shared by
// all connections (Upgrader.WriteBufferPool), so an idle connection holds
// none.

// Writer states (conn.wstate). Only kick, under Server.mu, starts a writer
// (wIdle → wBusy) or flags more output for a running one (wBusy → wMore);
// a writer that finds nothing more to send leaves with one compare-and-swap
// (wBusy → wIdle), without taking Server.mu: with thousands of writes due
// at once (pings, idle notices) the writers then never queue on the lock
// that the scheduler and the callbacks need.
const (
	wIdle int32 = iota
	wBusy
	wMore
)

// kick starts c's writer with its first batch if c has output and no
// writer, or tells the running writer that more output is waiting. Caller
// holds Server.mu.
func (s *Server) kick(c *conn) {
	if c.state == connClosed || !c.hasOutput() {
		return
	}
	for {
		switch c.wstate.Load() {
		case wIdle:
			c.wstate.Store(wBusy)
			s.writers.Add(1)
			go c.writeLoop(c.takeOutput())
			return
		case wBusy:
			if c.wstate.CompareAndSwap(wBusy, wMore) {
				return
			}
			// The writer just left: start another.
		default:
			return
		}
	}
}

// writeLoop is c's writer: it sends b, then whatever output came meanwhile,
// until there is none left.
func (c *conn) writeLoop(b batch) {
	s := c.srv
	defer s.writers.Done()
	for {
		err := c.write(b, s.cfg.writeTimeout)
		if err == nil && c.wstate.CompareAndSwap(wBusy, wIdle) {
			return
		}
		s.mu.Lock()
		if errors.Is(err, websocket.ErrCloseSent) {
			// A close frame went out first: the reader's close handler
			// answered the peer's close, or this side is closing. The
			// reader reports how the connection ended (the peer's close
			// code decides the grace: a closed page gets the reload
			// grace), so this write's failure is no lost connection.
			// Nothing more can be sent.
			c.out, c.closeMsg, c.pingDue = nil, nil, false
			c.wstate.Store(wIdle)
			s.mu.Unlock()
			return
		}
		if err != nil {
			s.cfg.logger.Debug("heartbeat: write failed", "session", c.sessionID(), "err", err)
			s.detachLocked(c, writeFailure(err))
			s.abortLocked(c)
			c.wstate.Store(wIdle)
			s.mu.Unlock()
			c.ws.Close()
			return
		}
		if c.state == connClosed || !c.hasOutput() {
			c.wstate.Store(wIdle)
			s.mu.Unlock()
			return
		}
		c.wstate.Store(wBusy)
		b = c.takeOutput()
		s.mu.Unlock()
	}
}

// writeFailure maps a write error to the Reason reported by OnDisconnect.
func writeFailure(err error) Reason {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonWriteTimeout
	}
	return ReasonConnectionLost
}

// abortLocked gives up on c after a failed write: nothing more is sent and
// the caller hard-closes it, which ends its reader. Caller holds Server.mu.
func (s *Server) abortLocked(c *conn) {
	if c.state < connClosing {
		c.state = connClosing
		c.closing.Store(true)
	}
	c.out, c.closeMsg, c.pingDue = nil, nil, false
	s.unschedule(c)
}

// batch is what one writer sends to one connection in one go.
type batch struct {
	frames [][]byte
	ping   bool
	close  []byte
}

// takeOutput moves c's pending output into a batch. Caller holds Server.mu.
func (c *conn) takeOutput() batch {
	b := batch{frames: c.out, ping: c.pingDue, close: c.closeMsg}
	c.out, c.pingDue, c.closeMsg = nil, false, nil
	if ss := c.sess; c.state == connOpen && ss != nil && ss.conn == c {
		for _, p := range ss.pending {
			b.frames = append(b.frames, p.frame)
		}
		ss.pending = nil
	}
	return b
}

// hasOutput reports whether c has something to send. Caller holds Server.mu.
func (c *conn) hasOutput() bool {
	if len(c.out) > 0 || c.pingDue || c.closeMsg != nil {
		return true
	}
	ss := c.sess
	return c.state == connOpen && ss != nil && ss.conn == c && len(ss.pending) > 0
}

func (c *conn) write(b batch, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if len(b.frames) > 0 {
		if err := c.ws.SetWriteDeadline(deadline); err != nil {
			return err
		}
		for _, f := range b.frames {
			if err := c.ws.WriteMessage(websocket.TextMessage, f); err != nil {
				return err
			}
		}
	}
	if b.ping {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
			return err
		}
	}
	if b.close != nil {
		err := c.ws.WriteControl(websocket.CloseMessage, b.close, deadline)
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
	}
	return nil
}
