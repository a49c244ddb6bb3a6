package hbclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
)

// Client is one session's client side of the heartbeat, for Go clients,
// bots and tests. Connect returns a connected Client whose background loop
// answers pings, reports user activity (Touch), fires local idle callbacks,
// and on a dropped connection resumes with backoff within the resume
// window. Its methods are safe for concurrent use.
type Client struct {
	id     string
	url    string
	cfg    config
	epoch  time.Time
	ctx    context.Context // cancelled by Close; bounds every dial
	cancel context.CancelFunc
	done   chan struct{}  // closed when the loop has stopped
	wg     sync.WaitGroup // the loop and the callback goroutine

	lastTouch    atomic.Int64 // time.Duration since epoch of the last Touch
	touchPending atomic.Bool  // a Touch not yet reported to the server
	touchC       chan struct{}
	streamC      chan struct{} // a stream report to send

	mu    sync.Mutex
	state State
	err   error
	mb    wire.Mailbox
	// The latest ReportStream, and the protocol version of the latest
	// connection.
	stream    heartbeat.StreamReport
	hasStream bool
	version   int
}

// Connect dials serverURL (ws:// or wss://), sends the hello for sessionID with
// token (from Server.Open on the backend) and returns once the server has
// welcomed it. It makes one attempt, bounded by ctx and the dialer's
// HandshakeTimeout. A refusal is a typed error: *heartbeat.HandshakeError (e.g. 403
// for a disallowed Origin) or *heartbeat.CloseError (e.g. heartbeat.CloseUnauthorized for a bad
// or used token; errors.Is(err, heartbeat.ErrUnauthorized) holds). No callback runs
// for a failed Connect.
func Connect(ctx context.Context, serverURL, sessionID, token string, opts ...Option) (*Client, error) {
	if err := validateURL(serverURL); err != nil {
		return nil, err
	}
	if rule := wire.SessionIDRule(sessionID, heartbeat.MaxSessionIDLen); rule != "" {
		return nil, &heartbeat.ValidationError{Field: "session id", Rule: rule}
	}
	if token == "" {
		return nil, &heartbeat.ValidationError{Field: "token", Rule: "must not be empty"}
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Client{
		id:      sessionID,
		url:     serverURL,
		cfg:     cfg,
		epoch:   time.Now(),
		done:    make(chan struct{}),
		touchC:  make(chan struct{}, 1),
		streamC: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	cc, welcome, err := s.dial(ctx, token)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("heartbeat: connect session %q: %w", sessionID, err)
	}
	l := newLoop(s)
	l.adopt(cc, welcome)
	s.setState(StateConnected, nil)
	s.wg.Add(1)
	go s.run(l)
	return s, nil
}

func validateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return &heartbeat.ValidationError{Field: "url", Rule: "must be an absolute ws:// or wss:// URL"}
	}
	return nil
}

// ID returns the session id.
func (s *Client) ID() string { return s.id }

// State returns the current state.
func (s *Client) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Err returns why the Client ended: nil while it runs or if Close ended it;
// a *heartbeat.ReleasedError after Server.Release; an error matching heartbeat.ErrExpired once
// Expired; a *heartbeat.CloseError when the server replaced (ErrReplaced) or refused
// the connection.
func (s *Client) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Done is closed when the Client has stopped: Expired, Closed, or Close was
// called.
func (s *Client) Done() <-chan struct{} { return s.done }

// Touch records user input. It is cheap, never blocks and is safe from any
// goroutine: the Client reports activity to the server at most once per
// activity interval, and restarts its local idle count.
func (s *Client) Touch() {
	s.lastTouch.Store(int64(s.now()))
	if s.touchPending.CompareAndSwap(false, true) {
		select {
		case s.touchC <- struct{}{}:
		default:
		}
	}
}

// Close ends the Client: it sends a normal close frame (heartbeat.CloseNormal), waits
// for the server's answer (at most the write timeout), and waits for the
// Client's goroutines, including callbacks already queued, to finish.
// Nothing is left running afterwards. Close is idempotent and always returns
// nil. Calling it from one of the Client's own callbacks would wait for
// itself: use Done there, or close from another goroutine.
func (s *Client) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// String describes the Client without revealing its token.
func (s *Client) String() string {
	return fmt.Sprintf("hbclient.Client(%q, %v)", s.id, s.State())
}

// GoString is String, so %#v reveals no token either.
func (s *Client) GoString() string { return s.String() }

func (s *Client) now() time.Duration { return time.Since(s.epoch) }

// setState moves to state to (Expired and Closed are final) and queues
// OnStateChange. err, if not nil, becomes Err.
func (s *Client) setState(to State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.state
	if from == to || from == StateExpired || from == StateClosed {
		return
	}
	s.state = to
	if err != nil {
		s.err = err
	}
	s.cfg.logger.Debug("heartbeat: session state", "session", s.id, "from", from.String(), "to", to.String())
	if cb := s.cfg.onStateChange; cb != nil {
		s.postLocked(func() { cb(from, to) })
	}
}

// post queues a callback on the Client's mailbox.
func (s *Client) post(fn func()) {
	s.mu.Lock()
	s.postLocked(fn)
	s.mu.Unlock()
}

func (s *Client) postLocked(fn func()) {
	if s.mb.Post(fn) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.mb.Drain(&s.mu)
		}()
	}
}

// clientConn is one connection of a Client.
type clientConn struct {
	version  int // heartbeat.ProtocolVersion or heartbeat.ProtocolVersionV2
	ws       *websocket.Conn
	frames   chan serverFrame // reader → loop
	stop     chan struct{}    // closed by the loop when it abandons the connection
	done     chan struct{}    // closed when the reader has exited
	err      error            // why the reader exited; read after done
	lastRecv atomic.Int64     // time.Duration since Client.epoch of the last frame
}

// dial connects and performs the hello. It returns the welcome frame.
func (s *Client) dial(ctx context.Context, token string) (*clientConn, serverFrame, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.dialer.HandshakeTimeout)
	defer cancel()
	ws, resp, err := s.cfg.dialer.DialContext(ctx, s.url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			return nil, serverFrame{}, &heartbeat.HandshakeError{StatusCode: resp.StatusCode}
		}
		return nil, serverFrame{}, err
	}
	version := negotiatedVersion(ws.Subprotocol())
	if version == 0 {
		ws.Close()
		return nil, serverFrame{}, &heartbeat.HandshakeError{StatusCode: http.StatusSwitchingProtocols, Detail: "server did not select subprotocol " + heartbeat.SubprotocolV2 + " or " + heartbeat.Subprotocol}
	}
	cc := &clientConn{
		version: version,
		ws:      ws,
		frames:  make(chan serverFrame),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	cc.lastRecv.Store(int64(s.now()))
	ws.SetReadLimit(clientReadLimit)
	ws.SetPingHandler(func(data string) error {
		cc.lastRecv.Store(int64(s.now()))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.cfg.writeTimeout))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})
	ws.SetPongHandler(func(string) error { cc.lastRecv.Store(int64(s.now())); return nil })

	// Bound the hello exchange by ctx without read deadlines (a timed-out
	// read would break the connection for good anyway): cut the network
	// connection when ctx ends.
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		ws.NetConn().Close()
		close(cut)
	})
	welcome, err := cc.hello(s.id, token, s.cfg.writeTimeout)
	if !stop() {
		<-cut // leave no goroutine behind
		return nil, serverFrame{}, fmt.Errorf("heartbeat: hello: %w", context.Cause(ctx))
	}
	if err != nil {
		ws.Close()
		return nil, serverFrame{}, err
	}
	return cc, welcome, nil
}

func (cc *clientConn) hello(id, token string, writeTimeout time.Duration) (serverFrame, error) {
	if err := cc.ws.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return serverFrame{}, err
	}
	msg := encode(wire.Hello{Type: frameHello, V: cc.version, Session: id, Token: token})
	if err := cc.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return serverFrame{}, err
	}
	_, data, err := cc.ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
			return serverFrame{}, &heartbeat.CloseError{Code: ce.Code, Reason: ce.Text}
		}
		return serverFrame{}, err
	}
	f, err := decodeServerFrame(data)
	if err != nil {
		return serverFrame{}, err
	}
	if f.Type != frameWelcome || f.Token == "" {
		return serverFrame{}, fmt.Errorf("heartbeat: expected a welcome frame with a token, got %s", wire.QuoteShort(f.Type))
	}
	return f, nil
}

// read runs the connection's reader goroutine: it hands frames to the loop
// until the connection fails or the loop lets go.
func (cc *clientConn) read(now func() time.Duration) {
	defer close(cc.done)
	for {
		_, data, err := cc.ws.ReadMessage()
		if err != nil {
			cc.err = err
			return
		}
		cc.lastRecv.Store(int64(now()))
		f, err := decodeServerFrame(data)
		if err != nil {
			cc.err = err
			return
		}
		select {
		case cc.frames <- f:
		case <-cc.stop:
			cc.err = net.ErrClosed
			return
		}
	}
}
