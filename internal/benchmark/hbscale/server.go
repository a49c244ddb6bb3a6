package main

// The server role: the heartbeat.Server under test and a small control API
// for the orchestrator, on one loopback listener, in a process of its own.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Paths on the server process's listener.
const (
	heartbeatPath = "/hb"     // the heartbeat.Server
	controlPrefix = "/bench/" // the control API
)

// serverConfig is the configuration of the server under test. The
// orchestrator passes it to the child process as flags.
type serverConfig struct {
	pingInterval  time.Duration
	pingTimeout   time.Duration
	idleThreshold time.Duration
	grace         time.Duration
}

func (c *serverConfig) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.pingInterval, "ping-interval", 2*time.Second, "heartbeat ping interval")
	fs.DurationVar(&c.pingTimeout, "ping-timeout", 5*time.Second, "heartbeat ping timeout")
	fs.DurationVar(&c.idleThreshold, "idle-threshold", 12*time.Second, "heartbeat idle threshold")
	fs.DurationVar(&c.grace, "grace", 60*time.Second, "heartbeat grace window")
}

// args renders c as the flags of the child process.
func (c serverConfig) args() []string {
	return []string{
		"-serve",
		"-ping-interval=" + c.pingInterval.String(),
		"-ping-timeout=" + c.pingTimeout.String(),
		"-idle-threshold=" + c.idleThreshold.String(),
		"-grace=" + c.grace.String(),
	}
}

func (c serverConfig) options() []heartbeat.ServerOption {
	return []heartbeat.ServerOption{
		heartbeat.WithPingInterval(c.pingInterval),
		heartbeat.WithPingTimeout(c.pingTimeout),
		heartbeat.WithIdleThreshold(c.idleThreshold),
		heartbeat.WithReconnectWindow(c.grace),
	}
}

// Control API payloads, shared by both roles.

// openResponse answers POST /bench/open?n=N: the sessions are ids[i] with
// join token tokens[i].
type openResponse struct {
	IDs    []string `json:"ids"`
	Tokens []string `json:"tokens"`
}

// memSnapshot answers GET /bench/mem, taken after runtime.GC (twice, so that
// sync.Pools are emptied) and debug.FreeOSMemory.
type memSnapshot struct {
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	HeapInuse  uint64 `json:"heap_inuse_bytes"`
	StackInuse uint64 `json:"stack_inuse_bytes"`
	Sys        uint64 `json:"sys_bytes"`
	// RSSGC is VmRSS after the GCs, before FreeOSMemory; RSS after it.
	RSSGC      uint64 `json:"rss_after_gc_bytes"`
	RSS        uint64 `json:"rss_bytes"`
	Goroutines int    `json:"goroutines"`
	Sessions   int    `json:"sessions"`
}

// cpuSnapshot answers GET /bench/cpu.
type cpuSnapshot struct {
	UserNs     int64 `json:"user_ns"`
	SysNs      int64 `json:"sys_ns"`
	Goroutines int   `json:"goroutines"`
}

func (c cpuSnapshot) total() time.Duration { return time.Duration(c.UserNs + c.SysNs) }

// serverInfo answers GET /bench/info.
type serverInfo struct {
	PID        int    `json:"pid"`
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	FDLimit    uint64 `json:"fd_limit"`
}

func processInfo() (serverInfo, error) {
	limit, err := childproc.FDLimit()
	return serverInfo{PID: os.Getpid(), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), FDLimit: limit}, err
}

// counts answers GET /bench/counts.
type counts struct {
	Connects    int64 `json:"connects"`
	Idle1       int   `json:"idle_first"` // OnIdle with Times == 1
	Disconnects int   `json:"disconnects"`
}

// idleRecord is one OnIdle callback.
type idleRecord struct {
	ID    string `json:"id"`
	Times int    `json:"times"`
	// ErrorNs is time.Now() in the callback minus Event.At, the moment the
	// threshold was crossed (monotonic clock).
	ErrorNs int64 `json:"error_ns"`
}

// disconnectRecord is one OnDisconnect callback. Times are wall clock, Unix
// nanoseconds, comparable with the orchestrator's (same machine).
type disconnectRecord struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	// CallbackUnixNs is time.Now() in the callback; DetectedUnixNs is
	// Event.At, when the Server noticed; LastSeenUnixNs is the last frame of
	// the connection, from Server.Session in the callback (0 if unknown).
	CallbackUnixNs int64 `json:"callback_unix_ns"`
	DetectedUnixNs int64 `json:"detected_unix_ns"`
	LastSeenUnixNs int64 `json:"last_seen_unix_ns"`
}

// eventsResponse answers GET /bench/events.
type eventsResponse struct {
	Idle        []idleRecord       `json:"idle"`
	Disconnects []disconnectRecord `json:"disconnects"`
}

// recorder collects the callbacks of the Server in memory.
type recorder struct {
	srv      *heartbeat.Server // set before the first connection
	connects atomic.Int64

	mu          sync.Mutex
	idle        []idleRecord
	idle1       int
	disconnects []disconnectRecord
}

func (r *recorder) onConnect(heartbeat.Event) { r.connects.Add(1) }

func (r *recorder) onIdle(ev heartbeat.Event) {
	late := time.Since(ev.At)
	r.mu.Lock()
	r.idle = append(r.idle, idleRecord{ID: ev.SessionID, Times: ev.Times, ErrorNs: int64(late)})
	if ev.Times == 1 {
		r.idle1++
	}
	r.mu.Unlock()
}

func (r *recorder) onDisconnect(ev heartbeat.Event) {
	now := time.Now()
	rec := disconnectRecord{
		ID:             ev.SessionID,
		Reason:         string(ev.Reason),
		CallbackUnixNs: now.UnixNano(),
		DetectedUnixNs: ev.At.UnixNano(),
	}
	if info, ok := r.srv.Session(ev.SessionID); ok && !info.LastSeen.IsZero() {
		rec.LastSeenUnixNs = info.LastSeen.UnixNano()
	}
	r.mu.Lock()
	r.disconnects = append(r.disconnects, rec)
	r.mu.Unlock()
}

func (r *recorder) counts() counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return counts{Connects: r.connects.Load(), Idle1: r.idle1, Disconnects: len(r.disconnects)}
}

func (r *recorder) events() eventsResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return eventsResponse{
		Idle:        append([]idleRecord(nil), r.idle...),
		Disconnects: append([]disconnectRecord(nil), r.disconnects...),
	}
}

// serve runs the server role: it prints "listening <addr>" on stdout and
// serves until stdin reaches EOF (the orchestrator closed it or died) or ctx
// ends.
func serve(ctx context.Context, cfg serverConfig, stdin io.Reader, stdout io.Writer) error {
	rec := &recorder{}
	opts := append(cfg.options(),
		heartbeat.OnConnect(rec.onConnect),
		heartbeat.OnIdle(rec.onIdle),
		heartbeat.OnDisconnect(rec.onDisconnect),
	)
	srv, err := heartbeat.NewServer(opts...)
	if err != nil {
		return fmt.Errorf("new server: %w", err)
	}
	rec.srv = srv

	ctl := &control{srv: srv, rec: rec}
	mux := http.NewServeMux()
	mux.Handle(heartbeatPath, srv)
	mux.Handle(controlPrefix, ctl.handler())
	err = childproc.Serve(ctx, mux, stdin, stdout)
	if perr := ctl.stopProfile(); perr != nil && err == nil {
		err = fmt.Errorf("CPU profile: %w", perr)
	}
	return err
}

// control is the control API of the server process.
type control struct {
	srv *heartbeat.Server
	rec *recorder

	mu      sync.Mutex
	profile *os.File // CPU profile being written, if any
}

func (c *control) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+controlPrefix+"open", c.open)
	mux.HandleFunc("GET "+controlPrefix+"mem", func(w http.ResponseWriter, _ *http.Request) {
		snap, err := c.mem()
		childproc.Reply(w, snap, err)
	})
	mux.HandleFunc("GET "+controlPrefix+"cpu", func(w http.ResponseWriter, _ *http.Request) {
		snap, err := cpuNow()
		childproc.Reply(w, snap, err)
	})
	mux.HandleFunc("GET "+controlPrefix+"info", func(w http.ResponseWriter, _ *http.Request) {
		info, err := processInfo()
		childproc.Reply(w, info, err)
	})
	mux.HandleFunc("GET "+controlPrefix+"counts", func(w http.ResponseWriter, _ *http.Request) {
		childproc.Reply(w, c.rec.counts(), nil)
	})
	mux.HandleFunc("GET "+controlPrefix+"events", func(w http.ResponseWriter, _ *http.Request) {
		childproc.Reply(w, c.rec.events(), nil)
	})
	mux.HandleFunc("POST "+controlPrefix+"profile/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		childproc.Reply(w, struct{}{}, c.startProfile(r.URL.Query().Get("file")))
	})
	mux.HandleFunc("POST "+controlPrefix+"profile/cpu/stop", func(w http.ResponseWriter, _ *http.Request) {
		childproc.Reply(w, struct{}{}, c.stopProfile())
	})
	mux.HandleFunc("POST "+controlPrefix+"profile/heap", func(w http.ResponseWriter, r *http.Request) {
		childproc.Reply(w, struct{}{}, writeHeapProfile(r.URL.Query().Get("file")))
	})
	return mux
}

// open opens n sessions with ids "s<i>".
func (c *control) open(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n <= 0 {
		http.Error(w, "n must be a positive integer", http.StatusBadRequest)
		return
	}
	resp := openResponse{IDs: make([]string, n), Tokens: make([]string, n)}
	for i := range n {
		id := "s" + strconv.Itoa(i)
		tok, err := c.srv.Open(r.Context(), id)
		if err != nil {
			http.Error(w, fmt.Sprintf("open %s: %v", id, err), http.StatusInternalServerError)
			return
		}
		resp.IDs[i], resp.Tokens[i] = id, tok
	}
	childproc.Reply(w, resp, nil)
}

func (c *control) mem() (memSnapshot, error) {
	runtime.GC()
	runtime.GC()
	rssGC, err := childproc.RSS()
	if err != nil {
		return memSnapshot{}, err
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := childproc.RSS()
	if err != nil {
		return memSnapshot{}, err
	}
	return memSnapshot{
		HeapAlloc:  ms.HeapAlloc,
		HeapInuse:  ms.HeapInuse,
		StackInuse: ms.StackInuse,
		Sys:        ms.Sys,
		RSSGC:      rssGC,
		RSS:        rss,
		Goroutines: runtime.NumGoroutine(),
		Sessions:   c.srv.Len(),
	}, nil
}

func (c *control) startProfile(file string) error {
	if file == "" {
		return errors.New("file is required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.profile != nil {
		return errors.New("a CPU profile is already running")
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	c.profile = f
	return nil
}

func (c *control) stopProfile() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.profile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := c.profile.Close()
	c.profile = nil
	return err
}

func writeHeapProfile(file string) error {
	if file == "" {
		return errors.New("file is required")
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuNow reports the process's CPU time so far.
func cpuNow() (cpuSnapshot, error) {
	user, sys, err := childproc.CPUTime()
	return cpuSnapshot{UserNs: int64(user), SysNs: int64(sys), Goroutines: runtime.NumGoroutine()}, err
}
