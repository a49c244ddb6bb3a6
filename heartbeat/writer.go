package heartbeat

import (
	"errors"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// Writes. gorilla/websocket allows one writer at a time per connection, and a
// stuck client must not hold up anyone else, so no write happens on the
// scheduler's goroutine or under a lock. Instead a connection with something
// to send (frames, a ping, a close frame) is queued here and a small pool of
// writer goroutines, at most maxWriters, started on demand and gone when the
// queue is empty, drains it. A connection is in the queue or being written
// by one writer at most once at a time, which is the single-writer rule. Each
// batch has a write deadline (WithWriteTimeout); a failed or timed-out write
// hard-closes that connection only. Write buffers come from a pool shared by
// all connections (Upgrader.WriteBufferPool), so an idle connection holds
// none.

const maxWriters = 32

type writerPool struct {
	queue   []*conn
	workers int
}

// kick queues c if it has output and is not already queued or being
// written. Caller holds Server.mu.
func (s *Server) kick(c *conn) {
	if c.queued || c.writing || c.state == connClosed || !c.hasOutput() {
		return
	}
	c.queued = true
	s.writers.queue = append(s.writers.queue, c)
	if s.writers.workers < maxWriters {
		s.writers.workers++
		s.goLocked(s.writeLoop)
	}
}

func (s *Server) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.writers.queue) == 0 {
			s.writers.workers--
			s.writers.queue = nil
			s.mu.Unlock()
			return
		}
		c := s.writers.queue[0]
		s.writers.queue[0] = nil
		s.writers.queue = s.writers.queue[1:]
		c.queued = false
		b := c.takeOutput()
		s.mu.Unlock()

		err := c.write(b, s.cfg.writeTimeout)

		s.mu.Lock()
		c.writing = false
		if err != nil {
			s.cfg.logger.Debug("heartbeat: write failed", "session", c.sessionID(), "err", err)
			s.detachLocked(c, writeFailure(err))
			s.abortLocked(c)
		} else {
			s.kick(c)
		}
		s.mu.Unlock()
		if err != nil {
			c.ws.Close()
		}
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
	c.writing = true
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
