package browsertest

import (
	"net"
	"sync"
	"testing"
)

// netCut is a TCP proxy in front of the demo server that the browser goes
// through, so that a test can take "the network" down. CDP's offline
// emulation alone changes navigator.onLine and fails new requests, but
// leaves established WebSockets flowing (pings are still answered), so a
// real outage needs the proxy: while it is down it forwards nothing (a
// stall: the server's ping timeout finds it) and refuses nothing; when it
// comes back it resets the connections it stalled, as a lost NAT mapping
// would, and forwards again.
type netCut struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool // client side → stalled
	wg    sync.WaitGroup
}

func newNetCut(t *testing.T, target string) *netCut {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &netCut{l: l, target: target, conns: make(map[net.Conn]bool)}
	n.wg.Add(1)
	go n.serve()
	t.Cleanup(n.close)
	return n
}

func (n *netCut) addr() string { return n.l.Addr().String() }

func (n *netCut) serve() {
	defer n.wg.Done()
	for {
		c, err := n.l.Accept()
		if err != nil {
			return
		}
		n.mu.Lock()
		n.conns[c] = n.down
		n.mu.Unlock()
		n.wg.Add(1)
		go n.pipe(c)
	}
}

func (n *netCut) pipe(c net.Conn) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
		c.Close()
	}()
	s, err := net.Dial("tcp", n.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			k, err := src.Read(buf)
			if k > 0 && !n.stalled(c) {
				if _, werr := dst.Write(buf[:k]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(s, c)
	go cp(c, s)
	<-done
	<-done
}

func (n *netCut) stalled(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down || n.conns[c]
}

// setDown takes the network down (nothing gets through) or brings it back
// (stalled connections are reset).
func (n *netCut) setDown(down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down = down
	for c, stalled := range n.conns {
		if down {
			n.conns[c] = true
		} else if stalled {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST
			}
			c.Close()
		}
	}
}

func (n *netCut) close() {
	n.l.Close()
	n.mu.Lock()
	for c := range n.conns {
		c.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
}
