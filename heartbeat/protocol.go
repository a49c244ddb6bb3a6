package heartbeat

import (
	"encoding/json"
	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Subprotocol is version 1 of the WebSocket subprotocol, offered in the
// Sec-WebSocket-Protocol header. A connection that negotiates neither it
// nor [SubprotocolV2] is closed with [CloseUnsupportedVersion].
const Subprotocol = "tcc.heartbeat.v1"

// ProtocolVersion is the protocol version a client states in the "v" field
// of its hello frame.
const ProtocolVersion = 1

// SubprotocolV2 is version 2 of the protocol: version 1 plus the client's
// stream frame (see [OnStream]). A Server accepts both and prefers
// version 2: a client that offers both and is given SubprotocolV2 knows the
// server understands stream frames. Its hello states "v":2.
const SubprotocolV2 = "tcc.heartbeat.v2"

// ProtocolVersionV2 is the hello's "v" on a SubprotocolV2 connection.
const ProtocolVersionV2 = 2

// WebSocket close codes used by the protocol. Private codes are in the
// 4000–4999 range that RFC 6455 reserves for applications; the close reason
// text says more.
const (
	// CloseNormal (1000) is sent by a client that closes on purpose.
	CloseNormal = websocket.CloseNormalClosure
	// CloseGoingAway (1001) is sent to every client when the Server shuts down.
	CloseGoingAway = websocket.CloseGoingAway
	// CloseMessageTooBig (1009) is sent when a client frame exceeds the
	// maximum message size. The WebSocket layer sends it without reason text.
	CloseMessageTooBig = websocket.CloseMessageTooBig

	// CloseProtocolError: a frame that is not valid JSON, has an unknown
	// type, is binary, comes out of order (no hello first, a second hello),
	// or no hello arrived in time.
	CloseProtocolError = 4000
	// CloseUnsupportedVersion: the client did not offer [Subprotocol] or its
	// hello carries a version other than [ProtocolVersion].
	CloseUnsupportedVersion = 4001
	// CloseUnauthorized: the token is malformed, forged, already used or
	// superseded, or the authorization hook refused the connection.
	CloseUnauthorized = 4002
	// CloseExpired: the token is genuine but its session no longer exists
	// (the grace window passed, or the session was released).
	CloseExpired = 4003
	// CloseReplaced: a newer connection for the same session took over.
	CloseReplaced = 4004
	// CloseReleased: the application released the session; the reason text
	// is the one given to [Server.Release].
	CloseReleased = 4005
	// ClosePingTimeout: nothing arrived from the client within the ping
	// timeout. Sent best effort: the client is probably gone.
	ClosePingTimeout = 4006
)

// Close codes for misbehaving clients.
const (
	// CloseInvalidPayload (1007, RFC 6455) is sent when a text frame is not
	// valid UTF-8.
	CloseInvalidPayload = websocket.CloseInvalidFramePayloadData
	// CloseRateLimited: the client sent frames faster than the Server's
	// limit ([WithFrameRateLimit]); the reason text gives the limit. The
	// session's resume token is revoked: only a fresh join token (a new
	// [Server.Open]) brings the user back. Do not reconnect with the same
	// token.
	CloseRateLimited = 4007
)

// Frame types. Client frames: hello, activity. Server frames: welcome and the
// notice kinds.
const (
	frameHello    = "hello"
	frameActivity = "activity"
	frameWelcome  = "welcome"
	frameStream   = "stream" // version 2 only
)

// Limits of the protocol.
const (
	// MaxSessionIDLen is the longest session id, in bytes.
	MaxSessionIDLen = 128
	// MaxNoticeNameLen is the longest custom notice name, in bytes.
	MaxNoticeNameLen = 64
	// MaxNoticeDataSize is the largest Notice.Data, in bytes.
	MaxNoticeDataSize = 32 << 10
	// MaxReleaseReasonLen is the longest release reason, in bytes. The
	// released frame carries it whole; the close frame carries its first
	// 123 bytes (the most a close frame can hold).
	MaxReleaseReasonLen = 512

	maxCloseReasonLen = 123      // RFC 6455: 125-byte control payload minus the code
	clientReadLimit   = 64 << 10 // a server frame is at most a notice with MaxNoticeDataSize of data
	helloTimeout      = 10 * time.Second
)

// activityFrame is the activity frame in its canonical form.
const activityFrame = `{"type":"activity"}`

// clientFrame is a decoded frame sent by a client. Token is a secret: the
// type never appears in logs or errors.
type clientFrame struct {
	Type    string `json:"type"`
	V       int    `json:"v"`
	Session string `json:"session"`
	Token   string `json:"token"`
	State   string `json:"state"` // stream
	Code    int64  `json:"code"`  // stream
}

// frameError is a protocol violation: the close code and the reason text to
// send to the peer.
type frameError struct {
	code   int
	reason string
}

func (e *frameError) Error() string { return e.reason }

// decodeClientFrame parses one WebSocket data message from a client. It checks
// the shape of the frame, not its meaning (version, token and order are the
// caller's business). Errors are *frameError and never quote the token.
func decodeClientFrame(messageType int, data []byte) (clientFrame, error) {
	var f clientFrame
	if messageType != websocket.TextMessage {
		return f, &frameError{CloseProtocolError, "binary frames are not part of " + Subprotocol}
	}
	// The frame a connected client sends most, exactly as browsers'
	// JSON.stringify and the Go client write it, is recognised without
	// encoding/json: its decoder's stack frames (~2.7 KB) would double the
	// reader goroutine's stack from 4 to 8 KiB for good, +4 KB per session
	// (measured by internal/benchmark/hbscale at 15,000 sessions).
	if string(data) == activityFrame {
		return clientFrame{Type: frameActivity}, nil
	}
	if !utf8.Valid(data) { // encoding/json would fold it into U+FFFD
		return f, &frameError{CloseInvalidPayload, "text frame is not valid UTF-8"}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return clientFrame{}, &frameError{CloseProtocolError, "frame is not a valid JSON object"}
	}
	switch f.Type {
	case frameHello:
		switch {
		case f.V == 0:
			return f, &frameError{CloseProtocolError, `hello: field "v" is required`}
		case f.Session == "":
			return f, &frameError{CloseProtocolError, `hello: field "session" is required`}
		case f.Token == "":
			return f, &frameError{CloseProtocolError, `hello: field "token" is required`}
		}
	case frameActivity:
	case frameStream:
		if err := checkStreamFrame(f); err != nil {
			return f, err
		}
	case "":
		return f, &frameError{CloseProtocolError, `field "type" is required`}
	default:
		return f, &frameError{CloseProtocolError, "unknown frame type " + quoteShort(f.Type)}
	}
	return f, nil
}

// helloFrame is the first frame a client sends.
type helloFrame = wire.Hello

// welcomeFrame answers an accepted hello. Durations are milliseconds.
type welcomeFrame = wire.Welcome

// noticeFrame carries a Notice on the wire.
type noticeFrame struct {
	Type     string          `json:"type"`
	Position *int            `json:"position,omitempty"`
	Name     string          `json:"name,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Times    int             `json:"times,omitempty"`
	Reason   *string         `json:"reason,omitempty"`
}

// encode marshals a frame. The frame types above cannot fail to marshal
// (Data is validated JSON), so a failure is a bug.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("heartbeat: encoding a frame: " + err.Error())
	}
	return b
}

func encodeNotice(n Notice) []byte {
	f := noticeFrame{Type: string(n.Kind), Name: n.Name, Data: n.Data, Times: n.Times}
	switch n.Kind {
	case NoticeQueue:
		f.Position = &n.Position
	case NoticeReleased:
		f.Reason = &n.Reason
	}
	return encode(f)
}

// validateSessionID checks an application-chosen session id.
func validateSessionID(field, id string) error {
	if rule := wire.SessionIDRule(id, MaxSessionIDLen); rule != "" {
		return &ValidationError{Field: field, Rule: rule}
	}
	return nil
}

// checkText rejects invalid UTF-8 and control characters.
func checkText(field, s string) error {
	if rule := wire.TextRule(s); rule != "" {
		return &ValidationError{Field: field, Rule: rule}
	}
	return nil
}

// closeMessage formats a close frame, cutting the reason to what a close
// frame can carry without splitting a UTF-8 sequence.
func closeMessage(code int, reason string) []byte {
	return websocket.FormatCloseMessage(code, wire.TruncateUTF8(reason, maxCloseReasonLen))
}

// quoteShort quotes peer-supplied text for a close reason or log line,
// keeping it short.
func quoteShort(s string) string { return wire.QuoteShort(s) }
