package cartest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
)

// ServerSessionVersion is the version of the ServerSession format.
const ServerSessionVersion = 1

// maxServerSession bounds the ServerSession text ParseServerSession reads.
const maxServerSession = 4096

// ServerSession is what a ServerSession of the reference server carries,
// as the standard base64 of this JSON object:
//
//	{"v":1,"url":"ws://127.0.0.1:41234/stream","token":"…","concurrency":"pack-cartest1-1"}
//
// A client opens the stream by dialing url with the query parameters
// concurrency and token: ws://127.0.0.1:41234/stream?concurrency=…&token=….
// The token is a secret of the session: it prints redacted.
type ServerSession struct {
	Version       int    `json:"v"`
	StreamURL     string `json:"url"`
	Token         string `json:"token"`
	ConcurrencyId string `json:"concurrency"` //nolint:revive // the API's spelling
}

// Encode returns the ServerSession text CreateSession answers.
func (ss ServerSession) Encode() string {
	b, _ := json.Marshal(ss)
	return base64.StdEncoding.EncodeToString(b)
}

func (ss ServerSession) redacted() string {
	return fmt.Sprintf("ServerSession{Version: %d, StreamURL: %s, Token: [redacted], ConcurrencyId: %s}", ss.Version, ss.StreamURL, ss.ConcurrencyId)
}

// String returns the form without the token.
func (ss ServerSession) String() string { return ss.redacted() }

// Format prints the form without the token for every verb.
func (ss ServerSession) Format(f fmt.State, _ rune) { io.WriteString(f, ss.redacted()) }

// LogValue makes slog print the form without the token.
func (ss ServerSession) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("version", ss.Version), slog.String("stream_url", ss.StreamURL),
		slog.String("token", "[redacted]"), slog.String("concurrency", ss.ConcurrencyId))
}

// ParseServerSession decodes a ServerSession of the reference server. An
// error names the field and the rule it breaks.
func ParseServerSession(s string) (ServerSession, error) {
	if s == "" {
		return ServerSession{}, errors.New("cartest: ServerSession is empty")
	}
	if len(s) > maxServerSession {
		return ServerSession{}, fmt.Errorf("cartest: ServerSession is longer than %d bytes", maxServerSession)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ServerSession{}, fmt.Errorf("cartest: ServerSession is not standard base64: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var ss ServerSession
	if err := dec.Decode(&ss); err != nil {
		return ServerSession{}, fmt.Errorf("cartest: ServerSession is not the JSON object of the reference server: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ServerSession{}, errors.New("cartest: ServerSession must hold exactly one JSON object")
	}
	switch {
	case ss.Version != ServerSessionVersion:
		return ServerSession{}, fmt.Errorf("cartest: ServerSession field v (version) must be %d, got %d", ServerSessionVersion, ss.Version)
	case ss.Token == "":
		return ServerSession{}, errors.New("cartest: ServerSession field token is required")
	case ss.ConcurrencyId == "":
		return ServerSession{}, errors.New("cartest: ServerSession field concurrency is required")
	}
	u, err := url.Parse(ss.StreamURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return ServerSession{}, fmt.Errorf("cartest: ServerSession field url must be a ws:// or wss:// URL with a host and no user, query or fragment, got %q", clip(ss.StreamURL))
	}
	return ss, nil
}

// sessionEncoder makes the ServerSession texts CreateSession answers,
// byte for byte those of ServerSession.Encode, without encoding the whole
// object each time: the JSON up to the token, which depends only on the
// request's Host, is kept for the latest Host. Tokens are hex and
// concurrency ids letters, digits, '-', '_' and '.', so neither needs
// escaping. Guarded by Server.mu.
type sessionEncoder struct {
	host   string
	prefix []byte // {"v":1,"url":"ws://…","token":"
}

func (e *sessionEncoder) encode(host, path, token, concurrencyID string) string {
	if e.prefix == nil || host != e.host {
		u, _ := json.Marshal((&url.URL{Scheme: "ws", Host: host, Path: path}).String())
		e.host = host
		e.prefix = append(append([]byte(`{"v":`+strconv.Itoa(ServerSessionVersion)+`,"url":`), u...), `,"token":"`...)
	}
	var buf [256]byte
	b := append(buf[:0], e.prefix...)
	b = append(b, token...)
	b = append(b, `","concurrency":"`...)
	b = append(b, concurrencyID...)
	b = append(b, `"}`...)
	return base64.StdEncoding.EncodeToString(b)
}
