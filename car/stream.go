package car

import (
	"errors"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// StreamLostAction is what the manager does when a client reports that its
// CAR stream is lost for good (TCGSDK gave up reconnecting: onConnectFail
// -3, a proxy error, or a failed offer).
type StreamLostAction int

const (
	// StreamLostRelease releases the concurrency (reason "stream lost"):
	// the page may Start again. The default.
	StreamLostRelease StreamLostAction = iota
	// StreamLostRestart runs ApplyConcurrent and CreateSession again for
	// the user and sends a new "ready" notice with the new ServerSession.
	StreamLostRestart
)

// StreamEvent is a stream event a client reported (see heartbeat's stream
// frame), for OnStreamEvent.
type StreamEvent struct {
	UserId string //nolint:revive // the API's spelling
	// State is "connected", "disconnected" (a hint, with TCGSDK's code),
	// "reconnecting" or "lost".
	State heartbeat.StreamState
	// Code is TCGSDK's code (onDisconnect, onConnectFail); 0 if none.
	Code int
	At   time.Time
}

// WithStreamLost sets what the manager does when a client reports its CAR
// stream lost for good (default StreamLostRelease). The heartbeat stays the
// truth about presence: TCGSDK's "disconnected" codes 1 and 2 are hints its
// own docs call unreliable, and they change nothing.
func WithStreamLost(a StreamLostAction) ManagerOption {
	return func(c *managerConfig) error {
		if a != StreamLostRelease && a != StreamLostRestart {
			return errors.New("WithStreamLost: must be StreamLostRelease or StreamLostRestart")
		}
		c.streamLost = a
		return nil
	}
}

// OnStreamEvent sets a callback for the stream events clients report. It
// runs on the heartbeat's goroutine for the session, with no lock held.
func OnStreamEvent(f func(StreamEvent)) ManagerOption {
	return func(c *managerConfig) error {
		if f == nil {
			return errors.New("OnStreamEvent: callback must not be nil")
		}
		c.onStreamEvent = f
		return nil
	}
}

func (m *SessionManager) streamOptions() []heartbeat.ServerOption {
	return []heartbeat.ServerOption{heartbeat.OnStream(m.onStream)}
}

// onStream reacts to a client's stream report.
func (m *SessionManager) onStream(ev heartbeat.Event) {
	e := m.lookupEntry(ev.SessionID)
	if e == nil {
		return
	}
	if f := m.cfg.onStreamEvent; f != nil {
		f(StreamEvent{UserId: e.userID, State: ev.Stream.State, Code: ev.Stream.Code, At: ev.At})
	}
	if ev.Stream.State != heartbeat.StreamLost {
		return
	}
	m.mu.Lock()
	holding := e.state == LeaseActive || e.state == LeaseDisconnected
	if holding && m.cfg.streamLost == StreamLostRestart && !m.closing {
		e.resume = e.state
		m.beginStartLocked(e)
	}
	m.mu.Unlock()
	if !holding {
		return
	}
	if m.cfg.streamLost == StreamLostRelease {
		m.release(e, ReleaseStreamLost)
		return
	}
	if _, err := m.restart(e); err != nil {
		m.log.Warn("restarting a lost stream failed", "user", e.userID, "error", err)
	}
}

// restart reruns ApplyConcurrent and CreateSession for a lease whose
// stream was lost (e is starting) and sends the new ServerSession.
func (m *SessionManager) restart(e *entry) (string, error) {
	m.mu.Lock()
	starting := e.state == LeaseStarting
	m.mu.Unlock()
	if !starting {
		return "", nil
	}
	err := m.admit(m.runCtx, e, true)
	if rerr := m.recordActive(e); err == nil {
		err = rerr
	}
	m.finishStart(e, err, false)
	if err != nil {
		return "", err
	}
	m.sendReady(e)
	return e.serverSession, nil
}
