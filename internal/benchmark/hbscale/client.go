package main

// The load generator's clients: one lean WebSocket connection per session,
// speaking tcc.heartbeat.v1 like a browser does (hello, then only answering
// pings and, when told, one activity frame).

import (
	"context"
	"errors"
	"fmt"
	"github.com/tcconcurrency/sdk-go/internal/benchmark/rawclient"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

const (
	clientBufferSize = 256 // gorilla read and write buffers of a client
	clientTimeout    = 10 * time.Second
)

var activityFrame = []byte(`{"type":"activity"}`)

// client is one connected session. Its only goroutine is its reader, which
// also answers pings (gorilla calls the ping handler from the reader).
type client struct {
	id    string
	ws    *websocket.Conn
	pongs *atomic.Int64 // shared by all clients of a fleet
	done  chan struct{} // closed when the reader has exited

	silenced   atomic.Bool
	lastPongNs atomic.Int64 // Unix ns after the latest pong was written
	killedNs   int64        // Unix ns of the kill; written before the kill, read after done
}

// fleet is the clients of one (N, run).
type fleet struct {
	clients []*client
	pongs   atomic.Int64 // pongs written by all clients
}

// dialFleet connects one client per session, par at a time, spreading them
// over srcIPs with at most perIP connections from each.
func dialFleet(ctx context.Context, url string, open openResponse, srcIPs []net.IP, perIP, par int) (*fleet, error) {
	f := &fleet{clients: make([]*client, len(open.IDs))}
	pool := &sync.Pool{}
	dialers := make([]*websocket.Dialer, len(srcIPs))
	for i, ip := range srcIPs {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: clientTimeout}
		dialers[i] = &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: clientTimeout,
			ReadBufferSize:   clientBufferSize,
			WriteBufferSize:  clientBufferSize,
			WriteBufferPool:  pool,
			Subprotocols:     []string{heartbeat.Subprotocol},
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for i := range work {
				d := dialers[i/perIP]
				c, err := f.dial(ctx, d, url, open.IDs[i], open.Tokens[i])
				if err != nil {
					cancel(fmt.Errorf("session %s from %s: %w", open.IDs[i], srcIPs[i/perIP], err))
					continue
				}
				f.clients[i] = c
			}
		})
	}
feed:
	for i := range open.IDs {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		f.closeAll()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return f, nil
}

// dial connects one session: upgrade, hello, welcome; then starts the reader.
func (f *fleet) dial(ctx context.Context, d *websocket.Dialer, url, id, token string) (*client, error) {
	ws, resp, err := d.DialContext(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c := &client{id: id, ws: ws, pongs: &f.pongs, done: make(chan struct{})}
	ws.SetPingHandler(c.onPing)
	if err := rawclient.Hello(c.ws, c.id, token, clientTimeout); err != nil {
		ws.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

// onPing answers a ping with a pong unless the client has been silenced.
func (c *client) onPing(data string) error {
	if c.silenced.Load() {
		return nil
	}
	if err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(clientTimeout)); err != nil {
		return nil // a broken connection ends the reader by itself
	}
	c.lastPongNs.Store(time.Now().UnixNano())
	c.pongs.Add(1)
	return nil
}

// read discards server frames (idle notices) until the connection fails or
// the client is silenced.
func (c *client) read() {
	defer close(c.done)
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// activity sends one activity frame. Only the orchestrator's goroutine
// writes data frames, so gorilla's one-writer rule holds (pongs are control
// frames, which may be written concurrently).
func (c *client) activity() error {
	return c.ws.WriteMessage(websocket.TextMessage, activityFrame)
}

// silence makes the client vanish without closing anything: it stops
// reading, so no pong (nor any other frame) is sent again, and the TCP
// connection stays open. The kernel still acknowledges what the server
// sends, as for a laptop whose browser froze.
func (c *client) silence() {
	c.silenced.Store(true)
	c.killedNs = time.Now().UnixNano()
	// A read deadline in the past wakes the reader, which then exits; the
	// connection is not closed.
	_ = c.ws.NetConn().SetReadDeadline(time.Unix(1, 0))
}

// reset closes the TCP connection abruptly: with SO_LINGER 0, close sends an
// RST instead of a FIN.
func (c *client) reset() error {
	tcp, ok := c.ws.NetConn().(*net.TCPConn)
	if !ok {
		return errors.New("not a TCP connection")
	}
	if err := tcp.SetLinger(0); err != nil {
		return err
	}
	c.silenced.Store(true)
	c.killedNs = time.Now().UnixNano()
	return tcp.Close()
}

// killTime waits for the reader of a silenced or reset client and returns
// the kill time in Unix ns: the later of the kill and the client's last pong
// (one may have been under way when the kill came). After it, the client
// sends nothing.
func (c *client) killTime() int64 {
	<-c.done
	return max(c.killedNs, c.lastPongNs.Load())
}

// closeAll closes every connection with an RST (no TIME_WAIT left behind
// for the next run) and waits for the readers.
func (f *fleet) closeAll() {
	for _, c := range f.clients {
		if c == nil {
			continue
		}
		if tcp, ok := c.ws.NetConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		c.ws.Close()
	}
	for _, c := range f.clients {
		if c != nil {
			<-c.done
		}
	}
}
