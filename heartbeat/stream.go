package heartbeat

import (
	"math"
	"strconv"
	"time"
)

// StreamState is what a client reports about the application's media
// stream (for CAR, the TCGSDK cloud stream), in a stream frame.
type StreamState string

// Stream states. The browser client's TCGSDK glue maps TCGSDK's callbacks to
// them (see the package doc, "Stream frames").
const (
	// StreamConnected: the stream is up (TCGSDK onConnectSuccess).
	StreamConnected StreamState = "connected"
	// StreamDisconnected: the stream dropped; Code says how (TCGSDK
	// onDisconnect 1 repeated connection, 2 heartbeat timeout, -1 needs
	// reconnect, 0 server closed). A hint: TCGSDK may reconnect by itself,
	// and its own docs call codes 1 and 2 unreliable.
	StreamDisconnected StreamState = "disconnected"
	// StreamReconnecting: the stream SDK is retrying (TCGSDK onConnectFail
	// -2, or -1 "retry later").
	StreamReconnecting StreamState = "reconnecting"
	// StreamLost: the stream is gone for good and will not come back
	// without a new session (TCGSDK onConnectFail -3 retries exhausted or
	// > 0 proxy error, onDisconnect -2 create offer failed).
	StreamLost StreamState = "lost"
)

// StreamReport is one stream frame: the state and the stream SDK's code.
type StreamReport struct {
	State StreamState
	// Code is the stream SDK's code, as it reported it (0 if none).
	Code int
}

// Stream frames are rate limited per connection: a burst of
// streamBurst, then one per streamRefill. Reports over the limit are
// dropped, except a lost one unless the last report delivered was lost.
const (
	streamBurst  = 10
	streamRefill = time.Second
)

func validStreamState(s StreamState) bool {
	switch s {
	case StreamConnected, StreamDisconnected, StreamReconnecting, StreamLost:
		return true
	}
	return false
}

// checkStreamFrame checks the fields of a decoded stream frame.
func checkStreamFrame(f clientFrame) error {
	switch {
	case f.State == "":
		return &frameError{CloseProtocolError, `stream: field "state" is required`}
	case !validStreamState(StreamState(f.State)):
		return &frameError{CloseProtocolError, "stream: unknown state " + quoteShort(f.State) + "; want connected, disconnected, reconnecting or lost"}
	case f.Code < math.MinInt32 || f.Code > math.MaxInt32:
		return &frameError{CloseProtocolError, `stream: field "code" must be a 32-bit integer, got ` + strconv.FormatInt(f.Code, 10)}
	}
	return nil
}

// OnStream sets the callback for stream frames: the client's report of the
// application's media stream, in Event.Stream. Only clients that
// negotiated [SubprotocolV2] send them. Reports of one connection that
// repeat the previous one are not delivered again; a client that sends more
// than 10 in a burst, then one per second, has the extra ones dropped
// (except a [StreamLost] that follows another state). The reports are hints
// from the client: the heartbeat itself stays the truth about presence.
func OnStream(f func(Event)) ServerOption {
	return callbackOption("OnStream", f, func(c *serverConfig) *func(Event) { return &c.onStream })
}

// streamLimiter is a connection's stream-frame budget. Only the
// connection's reader touches it.
type streamLimiter struct {
	tokens    float64
	at        time.Duration // when tokens was last refilled
	started   bool          // tokens and at are set
	last      StreamReport  // last report delivered on this connection
	delivered bool
}

// allow reports whether r is delivered, updating the budget.
func (l *streamLimiter) allow(now time.Duration, r StreamReport) bool {
	if l.delivered && r == l.last {
		return false
	}
	if !l.started {
		l.tokens, l.started = streamBurst, true
	} else {
		l.tokens = min(streamBurst, l.tokens+float64(now-l.at)/float64(streamRefill))
	}
	l.at = now
	switch {
	case l.tokens >= 1:
		l.tokens--
	case r.State == StreamLost && l.last.State != StreamLost:
	default:
		return false
	}
	l.last, l.delivered = r, true
	return true
}

// stream handles a stream frame on the connection's reader goroutine.
func (c *conn) stream(f clientFrame) {
	s := c.srv
	if c.version < ProtocolVersionV2 {
		c.protocolError(CloseProtocolError, "stream frames need subprotocol "+SubprotocolV2)
		return
	}
	r := StreamReport{State: StreamState(f.State), Code: int(f.Code)}
	now := s.now()
	if c.streams == nil {
		c.streams = new(streamLimiter)
	}
	if !c.streams.allow(now, r) {
		s.cfg.logger.Debug("heartbeat: stream report dropped (repeated or over the rate limit)", "session", c.sessionID(), "state", string(r.State), "code", r.Code)
		return
	}
	if s.cfg.onStream == nil {
		return
	}
	s.mu.Lock()
	if ss := c.sess; ss.conn == c && !ss.ended {
		s.postLocked(ss.id, s.cfg.onStream, Event{SessionID: ss.id, At: s.epoch.Add(now), Stream: r})
	}
	s.mu.Unlock()
}

// negotiatedVersion maps the selected subprotocol to its version; 0 if none.
func negotiatedVersion(subprotocol string) int {
	switch subprotocol {
	case Subprotocol:
		return ProtocolVersion
	case SubprotocolV2:
		return ProtocolVersionV2
	}
	return 0
}
