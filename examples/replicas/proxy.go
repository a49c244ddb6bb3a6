package main

import (
	"errors"
	"io"
	"net"
	"sync"
)

// proxy is a round-robin TCP load balancer, as in front of a backend's
// replicas: each new connection goes to the next backend in turn, skipping
// those that refuse it. No stickiness: a reconnect lands wherever the
// rotation is.
type proxy struct {
	ln       net.Listener
	mu       sync.Mutex
	backends []string
	next     int
	wg       sync.WaitGroup
	conns    map[net.Conn]struct{}
	onPick   func(client net.Conn, backend int)
}

func newProxy(backends []string, onPick func(net.Conn, int)) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}, onPick: onPick}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

// dial connects to the next backend that answers.
func (p *proxy) dial() (net.Conn, int, error) {
	p.mu.Lock()
	n := len(p.backends)
	start := p.next
	p.next = (p.next + 1) % n
	backends := append([]string(nil), p.backends...)
	p.mu.Unlock()
	for k := range n {
		i := (start + k) % n
		if c, err := net.Dial("tcp", backends[i]); err == nil {
			if k > 0 {
				p.mu.Lock()
				p.next = (i + 1) % n
				p.mu.Unlock()
			}
			return c, i, nil
		}
	}
	return nil, 0, errors.New("proxy: no backend answers")
}

func (p *proxy) forward(c net.Conn) {
	b, i, err := p.dial()
	if err != nil {
		c.Close()
		return
	}
	if p.onPick != nil {
		p.onPick(c, i)
	}
	if !p.track(c, b) {
		return
	}
	defer p.untrack(c, b)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); closeWrite(b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// Close stops the proxy and cuts its connections.
func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
