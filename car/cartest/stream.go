package cartest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket close codes the server sends when it ends a client stream: 4000
// plus the code TCGSDK's onDisconnect reports for the same event. The
// close frame's reason text says it in words.
const (
	// CloseServerClosed (TCGSDK 0, "server closed"): DestroySession, or
	// the reference server closed.
	CloseServerClosed = 4000
	// CloseRepeatedConnection (TCGSDK 1, "user repeated connection"): a
	// newer CreateSession for the user, or a newer stream of the same
	// session, took the concurrency over.
	CloseRepeatedConnection = 4001
	// CloseHeartbeatTimeout (TCGSDK 2, "heartbeat timeout"): the server
	// gave up on the client (Server.ExpireHeartbeat).
	CloseHeartbeatTimeout = 4002
)

const (
	reasonDestroyed    = "server closed: the session was destroyed"
	reasonServerClosed = "server closed: the reference server closed"
	reasonRepeated     = "user repeated connection"
	reasonHeartbeat    = "heartbeat timeout"
)

const (
	// controlTimeout bounds the write of a close frame.
	controlTimeout = 5 * time.Second
	// maxClientMessage bounds what a client may send; the stream carries
	// nothing from the client, so anything is read and discarded.
	maxClientMessage = 64 << 10
	// streamHeader is the handshake response header that names the
	// server's side of a stream, so an in-process client can wait for the
	// server to have handled its end.
	streamHeader = "X-Cartest-Stream"
)

// frame is a message the server sends on a client stream. The first one
// is {"Type":"connected",…}: the model has the client connected. Clients
// ignore types they do not know.
type frame struct {
	Type          string `json:"Type"`
	ConcurrencyId string `json:"ConcurrencyId,omitempty"` //nolint:revive // the API's spelling
	UserId        string `json:"UserId,omitempty"`        //nolint:revive
}

const frameConnected = "connected"

// decodeFrame reads one server message; an error names the rule.
func decodeFrame(data []byte) (frame, error) {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, fmt.Errorf("a stream message must be a JSON object: %w", err)
	}
	if f.Type == "" {
		return frame{}, errors.New("a stream message must have a Type")
	}
	if f.Type == frameConnected && f.ConcurrencyId == "" {
		return frame{}, errors.New("a connected message must have a ConcurrencyId")
	}
	return f, nil
}

// serverStream is the server's side of one client stream.
type serverStream struct {
	id        string
	ws        *websocket.Conn
	conc      *conc // guarded by Server.mu
	closeOnce sync.Once
	done      chan struct{} // closed once the server has handled the stream's end
}

// close ends the stream from the server's side with a close frame; the
// caller has already updated the model.
func (st *serverStream) close(code int, reason string) {
	st.closeOnce.Do(func() {
		st.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(controlTimeout))
		st.ws.Close()
	})
}

// serveStream accepts a client stream: it checks the ServerSession's
// concurrency and token, upgrades to a WebSocket, connects the stream in
// the model, tells the client, and then reads until the stream ends.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	concurrencyID, token := q.Get("concurrency"), q.Get("token")
	switch {
	case concurrencyID == "":
		http.Error(w, "cartest: the query parameter `concurrency` is required (from the ServerSession)", http.StatusBadRequest)
		return
	case token == "":
		http.Error(w, "cartest: the query parameter `token` is required (from the ServerSession)", http.StatusBadRequest)
		return
	case !websocket.IsWebSocketUpgrade(r):
		http.Error(w, "cartest: the client stream is a WebSocket: send a GET with Upgrade: websocket", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.model.settle(s.clock.Now())
	_, why := s.model.admit(concurrencyID, token)
	s.mu.Unlock()
	if why != "" {
		http.Error(w, "cartest: "+why, http.StatusForbidden)
		return
	}

	st := &serverStream{id: newToken(), done: make(chan struct{})}
	defer close(st.done)
	// Any origin: the reference server serves test pages of any origin.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := upgrader.Upgrade(w, r, http.Header{streamHeader: {st.id}})
	if err != nil {
		return // the upgrader has answered
	}
	st.ws = ws
	ws.SetReadLimit(maxClientMessage)
	// A client's close frame is answered after the model has seen it.
	ws.SetCloseHandler(func(int, string) error { return nil })

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.close(CloseServerClosed, reasonServerClosed)
		return
	}
	now := s.clock.Now()
	s.model.settle(now)
	c, why := s.model.admit(concurrencyID, token)
	if c == nil {
		s.mu.Unlock()
		st.close(websocket.ClosePolicyViolation, why)
		return
	}
	orders := s.model.connect(now, c, st)
	welcome := frame{Type: frameConnected, ConcurrencyId: c.id, UserId: c.user}
	s.streams[st.id] = st
	s.mu.Unlock()
	for _, o := range orders {
		o.stream.close(o.code, o.reason)
	}

	detail, echo := s.readStream(st, welcome)

	s.mu.Lock()
	delete(s.streams, st.id)
	if !s.closed {
		now := s.clock.Now()
		s.model.settle(now)
		s.model.disconnect(now, st, detail)
	}
	s.mu.Unlock()
	st.closeOnce.Do(func() {
		if echo != nil {
			ws.WriteControl(websocket.CloseMessage, echo, time.Now().Add(controlTimeout))
		}
		ws.Close()
	})
}

// readStream sends the welcome and reads until the stream ends. It says
// how it ended and, for a client's close frame, the answer to send.
func (s *Server) readStream(st *serverStream, welcome frame) (detail string, echo []byte) {
	b, _ := json.Marshal(welcome)
	st.ws.SetWriteDeadline(time.Now().Add(controlTimeout))
	if err := st.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return "the connection was lost before the client was told it connected", nil
	}
	for {
		if _, _, err := st.ws.NextReader(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
				return fmt.Sprintf("the client closed the stream (code %d)", ce.Code), websocket.FormatCloseMessage(ce.Code, "")
			}
			return "the connection was lost without a close frame", nil
		}
	}
}
