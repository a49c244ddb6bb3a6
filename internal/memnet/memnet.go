// Package memnet is an in-process network for tests that run inside a
// testing/synctest bubble.
//
// Real sockets are not durably blocking, so a bubble whose goroutines wait on
// loopback I/O never advances its fake clock. A [Listener] hands out
// [net.Pipe] connections instead: an HTTP server serves on it as on any
// listener, and clients reach it through [Listener.DialContext], which fits
// http.Transport.DialContext and websocket.Dialer.NetDialContext.
package memnet

import (
	"context"
	"errors"
	"net"
	"sync"
)

// Listener is a net.Listener whose connections are in-memory pipes.
type Listener struct {
	name    string
	conns   chan net.Conn
	closed  chan struct{}
	closeMu sync.Once
}

// Listen returns a listener named name (shown by Addr).
func Listen(name string) *Listener {
	return &Listener{name: name, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept waits for the next connection dialled through DialContext.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept and makes further dials fail. Connections already
// accepted stay open.
func (l *Listener) Close() error {
	l.closeMu.Do(func() { close(l.closed) })
	return nil
}

// Addr reports the listener's name as a network address.
func (l *Listener) Addr() net.Addr { return addr(l.name) }

// DialContext connects to the listener. The network and address are ignored:
// there is one destination.
func (l *Listener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, errors.New("memnet: dial " + l.name + ": listener closed")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type addr string

func (a addr) Network() string { return "memnet" }
func (a addr) String() string  { return string(a) }
