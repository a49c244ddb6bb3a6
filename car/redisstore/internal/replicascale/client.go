package replicascale

// The client role: lean heartbeat clients, one gorilla/websocket connection
// and one goroutine each, speaking tcc.heartbeat.v1 as a browser does.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/heartbeat"

	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"

	"github.com/tcconcurrency/sdk-go/internal/benchmark/rawclient"
)

const (
	clientBufferSize = 256
	clientTimeout    = 20 * time.Second
)

var activityFrame = []byte(`{"type":"activity"}`)

// clientConfig is what a client process is started with.
type clientConfig struct {
	Sources       []string `json:"sources"`        // source IPs, filled in order
	PerSource     int      `json:"per_source"`     // connections per source IP, at most
	DialParallel  int      `json:"dial_parallel"`  // dials at a time
	MaxSessions   int      `json:"max_sessions"`   // this process's share
	ActivityFrame bool     `json:"activity_frame"` // send one activity frame after the welcome
}

// dialItem is one session to connect.
type dialItem struct {
	ID    string `json:"id"`
	Token string `json:"token"`
	URL   string `json:"url"`
}

// dialResult answers POST /ctl/dial: per item, when its activity frame was
// sent (Unix ns, taken before the write), in order.
type dialResult struct {
	ActivityNs []int64 `json:"activity_ns"`
}

// silenceResult answers POST /ctl/silence: per id, when it sent its last
// frame (its last pong, or its activity frame; Unix ns, taken before the
// write).
type silenceResult struct {
	LastFrameNs []int64 `json:"last_frame_ns"`
}

// clientCounts answers GET /ctl/counts.
type clientCounts struct {
	Connected int   `json:"connected"`
	Pongs     int64 `json:"pongs"`
	Ended     int64 `json:"ended"` // readers that ended without being silenced
	FDLimit   int64 `json:"fd_limit"`
}

type conn struct {
	id          string
	ws          *websocket.Conn
	done        chan struct{}
	silenced    atomic.Bool
	lastFrameNs atomic.Int64
}

type clientProc struct {
	cfg     clientConfig
	pool    sync.Pool // shared write buffers
	dialers []*websocket.Dialer

	mu    sync.Mutex
	conns map[string]*conn
	used  int // connections dialled so far (source IP slots)

	pongs atomic.Int64
	ended atomic.Int64
}

func runClient(ctx context.Context, cfg clientConfig, stdin io.Reader, stdout io.Writer) error {
	if cfg.PerSource <= 0 || len(cfg.Sources)*cfg.PerSource < cfg.MaxSessions {
		return fmt.Errorf("%d source addresses of %d connections cannot hold %d sessions", len(cfg.Sources), cfg.PerSource, cfg.MaxSessions)
	}
	c := &clientProc{cfg: cfg, conns: make(map[string]*conn, cfg.MaxSessions)}
	for _, s := range cfg.Sources {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("source address %q", s)
		}
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: clientTimeout}
		c.dialers = append(c.dialers, &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: clientTimeout,
			ReadBufferSize:   clientBufferSize,
			WriteBufferSize:  clientBufferSize,
			WriteBufferPool:  &c.pool,
			Subprotocols:     []string{heartbeat.Subprotocol},
		})
	}
	defer c.closeAll()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+controlPrefix+"dial", func(w http.ResponseWriter, r *http.Request) {
		var items []dialItem
		if err := childproc.DecodeBody(r, &items); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := c.dialAll(r.Context(), items)
		childproc.Reply(w, res, err)
	})
	mux.HandleFunc("POST "+controlPrefix+"silence", func(w http.ResponseWriter, r *http.Request) {
		var ids []string
		if err := childproc.DecodeBody(r, &ids); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := c.silence(ids)
		childproc.Reply(w, res, err)
	})
	mux.HandleFunc("GET "+controlPrefix+"counts", func(w http.ResponseWriter, _ *http.Request) {
		lim, err := childproc.FDLimit()
		c.mu.Lock()
		n := len(c.conns)
		c.mu.Unlock()
		childproc.Reply(w, clientCounts{Connected: n, Pongs: c.pongs.Load(), Ended: c.ended.Load(), FDLimit: int64(lim)}, err)
	})
	return childproc.Serve(ctx, mux, stdin, stdout)
}

// dialAll connects items, DialParallel at a time.
func (c *clientProc) dialAll(ctx context.Context, items []dialItem) (dialResult, error) {
	res := dialResult{ActivityNs: make([]int64, len(items))}
	c.mu.Lock()
	first := c.used
	c.used += len(items)
	c.mu.Unlock()
	if first+len(items) > len(c.dialers)*c.cfg.PerSource {
		return res, fmt.Errorf("more sessions than this process's %d source addresses hold", len(c.dialers))
	}
	errs := make([]error, len(items))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(1, c.cfg.DialParallel), len(items)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) {
					return
				}
				d := c.dialers[(first+i)/c.cfg.PerSource]
				cn, err := c.dial(ctx, d, items[i])
				if err != nil {
					errs[i] = fmt.Errorf("session %s: %w", items[i].ID, err)
					continue
				}
				res.ActivityNs[i] = cn.lastFrameNs.Load()
				c.mu.Lock()
				c.conns[cn.id] = cn
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

func (c *clientProc) dial(ctx context.Context, d *websocket.Dialer, it dialItem) (*conn, error) {
	ws, resp, err := d.DialContext(ctx, it.URL, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	cn := &conn{id: it.ID, ws: ws, done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error { return c.onPing(cn, data) })
	if err := rawclient.Hello(cn.ws, cn.id, it.Token, clientTimeout); err != nil {
		ws.Close()
		return nil, err
	}
	// A frame's time is taken before it is written: the replica cannot
	// have it earlier, so the figures measured from it are never flattered.
	cn.lastFrameNs.Store(time.Now().UnixNano())
	if c.cfg.ActivityFrame {
		if err := ws.WriteMessage(websocket.TextMessage, activityFrame); err != nil {
			ws.Close()
			return nil, fmt.Errorf("activity frame: %w", err)
		}
	}
	go c.read(cn)
	return cn, nil
}

// onPing answers a ping unless the connection was silenced. gorilla calls
// it from the reader.
func (c *clientProc) onPing(cn *conn, data string) error {
	if cn.silenced.Load() {
		return nil
	}
	sent := time.Now().UnixNano()
	if err := cn.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(clientTimeout)); err != nil {
		return nil // a broken connection ends the reader by itself
	}
	cn.lastFrameNs.Store(sent)
	c.pongs.Add(1)
	return nil
}

// read discards the server's frames until the connection fails or is
// silenced.
func (c *clientProc) read(cn *conn) {
	defer close(cn.done)
	for {
		_, r, err := cn.ws.NextReader()
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			if !cn.silenced.Load() {
				c.ended.Add(1)
			}
			return
		}
	}
}

// silence makes each client vanish without closing anything: it stops
// reading, so it sends no pong or other frame again, and its TCP
// connection stays open (the kernel still acknowledges what the replica
// sends), as a frozen laptop's. It returns each one's last frame.
func (c *clientProc) silence(ids []string) (silenceResult, error) {
	res := silenceResult{LastFrameNs: make([]int64, len(ids))}
	cs := make([]*conn, len(ids))
	c.mu.Lock()
	for i, id := range ids {
		cs[i] = c.conns[id]
	}
	c.mu.Unlock()
	for i, cn := range cs {
		if cn == nil {
			return res, fmt.Errorf("no connection %s here", ids[i])
		}
		cn.silenced.Store(true)
		// A read deadline in the past wakes the reader, which then exits;
		// the connection is not closed.
		_ = cn.ws.NetConn().SetReadDeadline(time.Unix(1, 0))
	}
	for i, cn := range cs {
		<-cn.done
		res.LastFrameNs[i] = cn.lastFrameNs.Load()
	}
	return res, nil
}

// closeAll closes every connection with an RST (no TIME_WAIT left for the
// next run) and waits for the readers.
func (c *clientProc) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cn := range c.conns {
		if tcp, ok := cn.ws.NetConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		cn.ws.Close()
	}
	for _, cn := range c.conns {
		<-cn.done
	}
}
