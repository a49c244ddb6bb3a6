package hbclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
	"github.com/tcconcurrency/sdk-go/internal/retry"
)

// errPingTimeout is the cause of an outage found by the Client's watchdog.
var errPingTimeout = errors.New("heartbeat: nothing received from the server within the ping timeout")

// loop is the state of a Client's background goroutine. Only that goroutine
// touches it.
type loop struct {
	s           *Client
	cc          *clientConn   // nil while reconnecting
	token       string        // resume token from the latest welcome: a secret
	pingTimeout time.Duration // from the welcome
	grace       time.Duration
	lastContact time.Duration // last frame received or activity sent; the window counts from it

	released      bool
	releaseReason string

	streamSent bool                   // lastStream went out on the current connection
	lastStream heartbeat.StreamReport // the last stream report sent

	activityArmed bool // the activity interval is running
	idleBase      time.Duration
	idleTimes     int

	idle     *time.Timer // next local idle threshold
	activity *time.Timer // end of the activity interval
	watchdog *time.Timer // liveness: lastRecv + pingTimeout
}

// outcome is how a phase of the loop ended.
type outcome struct {
	next State // StateConnected, StateReconnecting, StateExpired or StateClosed
	err  error
}

func newLoop(s *Client) *loop {
	return &loop{
		s:        s,
		grace:    cmp.Or(s.cfg.resumeWindow, heartbeat.DefaultReconnectWindow),
		idle:     time.NewTimer(s.cfg.idleThreshold),
		activity: stoppedTimer(),
		watchdog: stoppedTimer(),
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// adopt makes cc the current connection, taking the server's settings from
// its welcome.
func (l *loop) adopt(cc *clientConn, welcome serverFrame) {
	l.cc = cc
	l.streamSent = false
	l.s.mu.Lock()
	l.s.version = cc.version
	l.s.mu.Unlock()
	l.token = welcome.Token
	l.pingTimeout = heartbeat.DefaultPingTimeout
	if welcome.PingTimeout > 0 {
		l.pingTimeout = time.Duration(welcome.PingTimeout) * time.Millisecond
	}
	if l.s.cfg.resumeWindow == 0 && welcome.Grace > 0 {
		l.grace = time.Duration(welcome.Grace) * time.Millisecond
	}
}

func (s *Client) run(l *loop) {
	defer s.wg.Done()
	defer close(s.done)
	defer func() {
		l.idle.Stop()
		l.activity.Stop()
		l.watchdog.Stop()
	}()
	for {
		o := l.connected()
		if o.next == StateReconnecting {
			s.cfg.logger.Debug("heartbeat: connection lost; resuming", "session", s.id, "err", o.err)
			s.setState(StateReconnecting, nil)
			o = l.reconnect(o.err)
			if o.next == StateConnected {
				s.setState(StateConnected, nil)
				continue
			}
		}
		s.setState(o.next, o.err)
		return
	}
}

// connected serves the current connection until it ends.
func (l *loop) connected() outcome {
	s, cc := l.s, l.cc
	go cc.read(s.now)
	defer l.dropConn()
	l.watchdog.Reset(l.pingTimeout)
	if s.touchPending.Load() { // activity during the outage
		if err := l.sendActivity(); err != nil {
			return outcome{StateReconnecting, err}
		}
	}
	if err := l.sendStream(); err != nil { // the latest stream report, again on each connection
		return outcome{StateReconnecting, err}
	}
	for {
		var err error
		select {
		case f := <-cc.frames:
			l.handle(f)
		case <-cc.done:
			return l.classify(cc.err)
		case <-s.touchC:
			if !l.activityArmed {
				err = l.sendActivity() // leading edge
			}
		case <-l.activity.C:
			l.activityArmed = false
			err = l.sendActivity() // trailing edge, if anything is pending
		case <-s.streamC:
			err = l.sendStream()
		case <-l.idle.C:
			l.checkIdle()
		case <-l.watchdog.C:
			silent := s.now() - time.Duration(cc.lastRecv.Load())
			if silent >= l.pingTimeout {
				return outcome{StateReconnecting, errPingTimeout}
			}
			l.watchdog.Reset(l.pingTimeout - silent)
		case <-s.ctx.Done():
			l.closeHandshake()
			return outcome{next: StateClosed}
		}
		if err != nil {
			return outcome{StateReconnecting, err}
		}
	}
}

// sendActivity reports pending activity and starts the activity interval.
func (l *loop) sendActivity() error {
	if !l.s.touchPending.Swap(false) {
		return nil
	}
	ws := l.cc.ws
	if err := ws.SetWriteDeadline(time.Now().Add(l.s.cfg.writeTimeout)); err != nil {
		return err
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(activityFrame)); err != nil {
		return err
	}
	l.lastContact = max(l.lastContact, l.s.now())
	l.activity.Reset(l.s.cfg.activityInterval)
	l.activityArmed = true
	return nil
}

// checkIdle fires local idle callbacks for every threshold crossed since the
// last Touch and arms the timer for the next one.
func (l *loop) checkIdle() {
	s := l.s
	now := s.now()
	touch := time.Duration(s.lastTouch.Load())
	if touch != l.idleBase {
		l.idleBase, l.idleTimes = touch, 0
	}
	threshold := s.cfg.idleThreshold
	for n := int((now - touch) / threshold); l.idleTimes < n; {
		l.idleTimes++
		if cb := s.cfg.onIdle; cb != nil {
			ev := heartbeat.Event{SessionID: s.id, At: s.epoch.Add(touch + time.Duration(l.idleTimes)*threshold), Times: l.idleTimes}
			s.post(func() { cb(ev) })
		}
	}
	l.idle.Reset(touch + time.Duration(l.idleTimes+1)*threshold - now)
}

// handle processes a frame from the server.
func (l *loop) handle(f serverFrame) {
	s := l.s
	switch heartbeat.NoticeKind(f.Type) {
	case heartbeat.NoticeReleased:
		// Reported once the close frame follows (see classify).
		l.released, l.releaseReason = true, f.Reason
	case heartbeat.NoticeQueue, heartbeat.NoticeReady, heartbeat.NoticeCustom, heartbeat.NoticeIdle:
		if cb := s.cfg.onNotice; cb != nil {
			n := f.notice()
			s.post(func() { cb(n) })
		}
	default:
		s.cfg.logger.Debug("heartbeat: ignoring server frame", "session", s.id, "type", wire.QuoteShort(f.Type))
	}
}

// classify decides what a broken connection means.
func (l *loop) classify(err error) outcome {
	var ce *websocket.CloseError
	isClose := errors.As(err, &ce)
	if l.released || (isClose && ce.Code == heartbeat.CloseReleased) {
		reason := l.releaseReason
		if !l.released {
			reason = ce.Text
		}
		if cb := l.s.cfg.onNotice; cb != nil {
			l.s.post(func() { cb(heartbeat.Notice{Kind: heartbeat.NoticeReleased, Reason: reason}) })
		}
		return outcome{StateClosed, &heartbeat.ReleasedError{Reason: reason}}
	}
	if isClose {
		cerr := &heartbeat.CloseError{Code: ce.Code, Reason: ce.Text}
		switch ce.Code {
		case heartbeat.CloseExpired:
			return outcome{StateExpired, cerr}
		case heartbeat.CloseReplaced, heartbeat.CloseUnauthorized, heartbeat.CloseProtocolError, heartbeat.CloseUnsupportedVersion, heartbeat.CloseRateLimited,
			websocket.CloseProtocolError, websocket.CloseUnsupportedData, websocket.CloseInvalidFramePayloadData,
			websocket.ClosePolicyViolation, websocket.CloseMessageTooBig:
			return outcome{StateClosed, cerr}
		case websocket.CloseAbnormalClosure:
		default:
			err = cerr
		}
	}
	return outcome{StateReconnecting, err}
}

// dropConn lets go of the current connection and waits for its reader.
func (l *loop) dropConn() {
	cc := l.cc
	close(cc.stop)
	cc.ws.Close()
	<-cc.done
	l.lastContact = max(l.lastContact, time.Duration(cc.lastRecv.Load()))
	l.cc = nil
	l.watchdog.Stop()
	l.activity.Stop()
	l.activityArmed = false
}

// closeHandshake sends a normal close frame and waits, at most the write
// timeout, for the server's close frame.
func (l *loop) closeHandshake() {
	cc, timeout := l.cc, l.s.cfg.writeTimeout
	msg := websocket.FormatCloseMessage(heartbeat.CloseNormal, "client closed")
	if err := cc.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout)); err != nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-cc.frames:
		case <-cc.done:
			return
		case <-t.C:
			return
		}
	}
}

// reconnect resumes the session with backoff: the wait before attempt n of
// this outage is the reconnect delay of n (WithReconnectDelay), so every
// outage starts again from the first wait. Attempts end when the next wait
// would end past the grace window. The window counts from the last frame
// exchanged, as the server counts it from the last frame it received.
func (l *loop) reconnect(cause error) outcome {
	s := l.s
	windowEnd := l.lastContact + l.grace
	lastErr := cause
	for attempt := 1; ; attempt++ {
		d := max(s.cfg.reconnectDelay(attempt), 0)
		if s.now()+d >= windowEnd {
			return outcome{StateExpired, fmt.Errorf("%w: not resumed within the grace window of %v: %w", heartbeat.ErrExpired, l.grace, lastErr)}
		}
		if !l.wait(d) {
			return outcome{next: StateClosed}
		}
		ctx, cancel := context.WithDeadline(s.ctx, s.epoch.Add(windowEnd))
		cc, welcome, err := s.dial(ctx, l.token)
		cancel()
		switch {
		case err == nil:
			l.adopt(cc, welcome)
			s.cfg.logger.Debug("heartbeat: resumed", "session", s.id, "attempt", attempt)
			return outcome{next: StateConnected}
		case s.ctx.Err() != nil:
			return outcome{next: StateClosed}
		case refused(err):
			return outcome{StateExpired, fmt.Errorf("%w: resume refused: %w", heartbeat.ErrExpired, err)}
		}
		s.cfg.logger.Debug("heartbeat: resume attempt failed", "session", s.id, "attempt", attempt, "err", err)
		lastErr = err
	}
}

// wait sleeps d while keeping local idle callbacks going. It reports false if
// the Client was closed.
func (l *loop) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-l.s.touchC: // remembered by touchPending; reported after the resume
		case <-l.s.streamC: // remembered by Client.stream; reported after the resume
		case <-l.idle.C:
			l.checkIdle()
		case <-l.s.ctx.Done():
			return false
		}
	}
}

// refused reports whether a failed resume is final: the server answered and
// said no, as opposed to being unreachable or busy.
func refused(err error) bool {
	var ce *heartbeat.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case heartbeat.CloseGoingAway, heartbeat.ClosePingTimeout, websocket.CloseInternalServerErr,
			websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
			return false
		}
		return true
	}
	var he *heartbeat.HandshakeError
	if errors.As(err, &he) {
		// The SDK's one classification of HTTP statuses: only throttling
		// (429) and transient failures (408, 5xx but 501) are worth
		// another attempt.
		return !retry.ClassifyStatus(he.StatusCode).RetryAttempt(true)
	}
	return false
}
