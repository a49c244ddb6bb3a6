// Package rawclient is the heartbeat client of the load generators: a bare
// WebSocket that says hello and is then driven by the benchmark (pongs
// answered or withheld, frames read or not), which the real client
// (heartbeat/hbclient) is rightly not built to do.
package rawclient

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Hello sends the hello of session id with token on ws and reads the
// server's welcome, each within timeout. It clears the deadlines after, so
// the connection never times out by itself.
func Hello(ws *websocket.Conn, id, token string, timeout time.Duration) error {
	hello, err := json.Marshal(struct {
		Type    string `json:"type"`
		V       int    `json:"v"`
		Session string `json:"session"`
		Token   string `json:"token"`
	}{"hello", heartbeat.ProtocolVersion, id, token})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	if err := ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	if err := ws.SetReadDeadline(deadline); err != nil {
		return err
	}
	_, r, err := ws.NextReader()
	if err != nil {
		return fmt.Errorf("welcome: %w", err)
	}
	var welcome struct {
		Type string `json:"type"`
	}
	if err := json.NewDecoder(io.LimitReader(r, 4096)).Decode(&welcome); err != nil {
		return fmt.Errorf("welcome: %w", err)
	}
	if welcome.Type != "welcome" {
		return fmt.Errorf("first server frame is %q, not welcome", welcome.Type)
	}
	if err := ws.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	return ws.SetWriteDeadline(time.Time{})
}
