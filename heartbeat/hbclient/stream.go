package hbclient

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
)

// ErrStreamUnsupported is returned by Client.ReportStream when the server
// speaks protocol v1, which has no stream frames.
var ErrStreamUnsupported = errors.New("heartbeat: the server does not take stream frames (protocol v1)")

// ReportStream tells the server the state of the application's media
// stream (a stream frame, protocol v2; the server's OnStream gets it). It
// does not wait: the latest report goes out on the current connection, or
// on the next one after a drop; a report equal to the last one sent on a
// connection is not sent again. It fails with a *heartbeat.ValidationError for an
// unknown state or a code beyond 32 bits, with ErrStreamUnsupported when
// the server negotiated v1, and once the Client has ended.
func (s *Client) ReportStream(r heartbeat.StreamReport) error {
	switch r.State {
	case heartbeat.StreamConnected, heartbeat.StreamDisconnected, heartbeat.StreamReconnecting, heartbeat.StreamLost:
	default:
		return &heartbeat.ValidationError{Field: "StreamReport.State", Rule: "must be connected, disconnected, reconnecting or lost, got " + wire.QuoteShort(string(r.State))}
	}
	if int64(r.Code) < math.MinInt32 || int64(r.Code) > math.MaxInt32 {
		return &heartbeat.ValidationError{Field: "StreamReport.Code", Rule: "must be a 32-bit integer, got " + strconv.Itoa(r.Code)}
	}
	s.mu.Lock()
	switch {
	case s.state == StateExpired || s.state == StateClosed:
		s.mu.Unlock()
		return errors.New("heartbeat: ReportStream: the session has ended")
	case s.version == heartbeat.ProtocolVersion:
		s.mu.Unlock()
		return ErrStreamUnsupported
	}
	s.stream, s.hasStream = r, true
	s.mu.Unlock()
	select {
	case s.streamC <- struct{}{}:
	default:
	}
	return nil
}

// sendStream writes the latest stream report if the connection takes
// stream frames and it was not sent on it yet.
func (l *loop) sendStream() error {
	s := l.s
	s.mu.Lock()
	r, ok := s.stream, s.hasStream
	s.mu.Unlock()
	if !ok || l.cc.version < heartbeat.ProtocolVersionV2 || (l.streamSent && r == l.lastStream) {
		return nil
	}
	ws := l.cc.ws
	if err := ws.SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout)); err != nil {
		return err
	}
	if err := ws.WriteMessage(websocket.TextMessage, encode(streamFrame{Type: frameStream, State: string(r.State), Code: r.Code})); err != nil {
		return err
	}
	l.streamSent, l.lastStream = true, r
	return nil
}
