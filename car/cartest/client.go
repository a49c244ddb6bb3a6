package cartest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrClosedByClient is Stream.Err after the client's own Close or Drop.
var ErrClosedByClient = errors.New("cartest: stream closed by the client")

// ErrStreamRefused is wrapped by DialStream's error when the server refused
// the stream: the ServerSession is not current (a newer CreateSession
// replaced it, or its session was destroyed or reclaimed), or malformed.
var ErrStreamRefused = errors.New("cartest: stream refused")

// CloseError is Stream.Err when the server closed the stream: Code is one of
// CloseServerClosed, CloseRepeatedConnection, CloseHeartbeatTimeout (or
// 1008 for a stream refused after its handshake), Reason the close frame's
// text.
type CloseError struct {
	Code   int
	Reason string
}

// Error says the server closed the stream, with the code and the reason.
func (e *CloseError) Error() string {
	return fmt.Sprintf("cartest: stream closed by the server: %d %s", e.Code, e.Reason)
}

// DisconnectCode returns the TCGSDK onDisconnect code of the close (0 server
// closed, 1 user repeated connection, 2 heartbeat timeout), or -1 for a code
// that has none.
func (e *CloseError) DisconnectCode() int {
	if e.Code >= CloseServerClosed && e.Code <= CloseHeartbeatTimeout {
		return e.Code - CloseServerClosed
	}
	return -1
}

// Stream is the test client's side of a client stream: what TCGSDK's
// connection is to the real service. Its goroutine ends when the stream
// ends, however it ends.
type Stream struct {
	ws            *websocket.Conn
	concurrencyID string
	userID        string
	done          chan struct{}
	serverDone    <-chan struct{} // for a stream of Server.DialStream
	once          sync.Once

	mu  sync.Mutex
	err error
}

// DialStream opens a client stream with a ServerSession of a reference
// server, e.g. one running in another process; a nil dialer means
// websocket.DefaultDialer. It returns once the server has the client
// connected. Prefer Server.DialStream in the server's own process: its
// Drop waits for the server to notice.
func DialStream(ctx context.Context, dialer *websocket.Dialer, serverSession string) (*Stream, error) {
	if dialer == nil {
		dialer = websocket.DefaultDialer
	}
	st, _, err := dialStream(ctx, dialer, serverSession)
	return st, err
}

// DialStream opens a client stream with a ServerSession this server issued,
// dialing through the WithListener listener when it can dial. It returns
// once the model has the client connected, and the stream's Close and Drop
// return once the model has it disconnected.
func (s *Server) DialStream(ctx context.Context, serverSession string) (*Stream, error) {
	st, id, err := dialStream(ctx, &websocket.Dialer{NetDialContext: s.host.Dial}, serverSession)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if ss := s.streams[id]; ss != nil {
		st.serverDone = ss.done
	}
	s.mu.Unlock()
	return st, nil
}

func dialStream(ctx context.Context, dialer *websocket.Dialer, serverSession string) (*Stream, string, error) {
	ss, err := ParseServerSession(serverSession)
	if err != nil {
		return nil, "", err
	}
	u, _ := url.Parse(ss.StreamURL)
	u.RawQuery = url.Values{"concurrency": {ss.ConcurrencyId}, "token": {ss.Token}}.Encode()
	ws, resp, err := dialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, "", fmt.Errorf("%w (HTTP %d): %s", ErrStreamRefused, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil, "", fmt.Errorf("cartest: dialing the client stream: %w", err)
	}
	id := resp.Header.Get(streamHeader)

	// The first message says the server has the client connected.
	ws.SetReadLimit(maxServerMessage)
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	_, data, err := ws.ReadMessage()
	if !stop() {
		ws.Close()
		return nil, "", fmt.Errorf("cartest: opening the client stream: %w", ctx.Err())
	}
	if err != nil {
		ws.Close()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return nil, "", fmt.Errorf("%w: %w", ErrStreamRefused, &CloseError{Code: ce.Code, Reason: ce.Text})
		}
		return nil, "", fmt.Errorf("cartest: opening the client stream: %w", err)
	}
	f, err := decodeFrame(data)
	if err == nil && (f.Type != frameConnected || f.ConcurrencyId != ss.ConcurrencyId) {
		err = fmt.Errorf("the first message must be connected to %s, got %s to %s", ss.ConcurrencyId, f.Type, f.ConcurrencyId)
	}
	if err != nil {
		ws.Close()
		return nil, "", fmt.Errorf("cartest: opening the client stream: %w", err)
	}
	st := &Stream{ws: ws, concurrencyID: f.ConcurrencyId, userID: f.UserId, done: make(chan struct{})}
	go st.read()
	return st, id, nil
}

// maxServerMessage bounds a message from the server.
const maxServerMessage = 64 << 10

// read consumes the server's messages until the stream ends.
func (st *Stream) read() {
	defer close(st.done)
	for {
		_, data, err := st.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				st.setErr(&CloseError{Code: ce.Code, Reason: ce.Text})
			} else {
				st.setErr(fmt.Errorf("cartest: client stream lost: %w", err))
			}
			st.ws.Close()
			return
		}
		decodeFrame(data) // later messages carry nothing the client needs
	}
}

func (st *Stream) setErr(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.mu.Unlock()
}

// ConcurrencyId returns the concurrency the stream is connected to.
func (st *Stream) ConcurrencyId() string { return st.concurrencyID } //nolint:revive // the API's spelling

// UserId returns the user the server has on the stream.
func (st *Stream) UserId() string { return st.userID } //nolint:revive

// Done is closed when the stream has ended, however it ended.
func (st *Stream) Done() <-chan struct{} { return st.done }

// Err reports why the stream ended: nil while it is open; a *CloseError
// when the server closed it; ErrClosedByClient after Close or Drop;
// otherwise the connection error.
func (st *Stream) Err() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

// Close closes the stream the way a page does that TCGSDK.destroy()s: with
// a close frame. It waits for the server's answer, so the server has the
// client disconnected when Close returns. Closing an ended stream does
// nothing.
func (st *Stream) Close() {
	st.once.Do(func() {
		st.setErr(ErrClosedByClient)
		err := st.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, "client closed"), time.Now().Add(controlTimeout))
		if err == nil {
			st.wait(st.done)
		}
		st.ws.Close()
		<-st.done
		st.wait(st.serverDone)
	})
}

// Drop ends the stream abruptly, without a close frame, as a lost network
// does. For a stream of Server.DialStream it returns once the server has
// noticed.
func (st *Stream) Drop() {
	st.once.Do(func() {
		st.setErr(ErrClosedByClient)
		st.ws.NetConn().Close()
		<-st.done
		st.wait(st.serverDone)
	})
}

// wait waits for ch (if not nil) for at most controlTimeout.
func (st *Stream) wait(ch <-chan struct{}) {
	if ch == nil {
		return
	}
	t := time.NewTimer(controlTimeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}
