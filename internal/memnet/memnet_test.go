package memnet_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// TestBubble proves the property the package exists for: an HTTP server and a
// WebSocket on a memnet listener let a synctest bubble's clock advance.
func TestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := memnet.Listen("test")
		up := websocket.Upgrader{}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ws" {
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				time.Sleep(90 * time.Second)
				c.WriteMessage(websocket.TextMessage, msg)
				return
			}
			io.WriteString(w, "ok")
		})}
		go srv.Serve(l)
		defer srv.Close()

		tr := &http.Transport{DialContext: l.DialContext}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://test/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}

		d := websocket.Dialer{NetDialContext: l.DialContext}
		c, _, err := d.DialContext(context.Background(), "ws://test/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.WriteMessage(websocket.TextMessage, []byte("hi"))
		_, msg, err := c.ReadMessage()
		if err != nil || string(msg) != "hi" {
			t.Fatalf("echo %q %v", msg, err)
		}
		if got := time.Since(start); got != 90*time.Second {
			t.Fatalf("fake clock advanced %v, want 90s", got)
		}
	})
}

func TestDialAfterClose(t *testing.T) {
	l := memnet.Listen("x")
	l.Close()
	if _, err := l.DialContext(context.Background(), "", ""); err == nil {
		t.Fatal("dial after Close succeeded")
	}
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
