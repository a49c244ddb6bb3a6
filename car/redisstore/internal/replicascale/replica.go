package replicascale

// The replica role: a heartbeat.Server on the Redis session store, and the
// control API the benchmark reads it through.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/car/redisstore"
	"github.com/tcconcurrency/sdk-go/heartbeat"

	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"
)

const heartbeatPath = "/hb"

// replicaConfig is what a replica process is started with.
type replicaConfig struct {
	RedisAddr     string        `json:"redis_addr"`
	Project       string        `json:"project"`
	ID            string        `json:"id"`
	TokenKeyHex   string        `json:"token_key_hex"`
	PingInterval  time.Duration `json:"ping_interval"`
	PingTimeout   time.Duration `json:"ping_timeout"`
	IdleThreshold time.Duration `json:"idle_threshold"`
	Grace         time.Duration `json:"grace"`
}

// idleRecord is one OnIdle callback; times are Unix ns.
type idleRecord struct {
	ID         string `json:"id"`
	Times      int    `json:"times"`
	CallbackNs int64  `json:"callback_ns"`
	AtNs       int64  `json:"at_ns"` // Event.At: the crossing, by the replica's account
}

// disconnectRecord is one OnDisconnect callback; times are Unix ns.
type disconnectRecord struct {
	ID         string `json:"id"`
	Reason     string `json:"reason"`
	CallbackNs int64  `json:"callback_ns"`
	LastSeenNs int64  `json:"last_seen_ns"` // Event.LastSeen
}

// replicaCounts answers GET /ctl/counts.
type replicaCounts struct {
	Connects    int64 `json:"connects"`
	IdleFirst   int   `json:"idle_first"`
	Disconnects int   `json:"disconnects"`
	Resumes     int64 `json:"resumes"` // OnResume (e.g. a session the store counted lost, held here again)
	// Logs counts the heartbeat server's and the store's log records of
	// level info and above, by message.
	Logs map[string]int `json:"logs,omitempty"`
}

// logCounter is a slog.Handler that counts records of level info and above
// by message, and keeps nothing else.
type logCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *logCounter) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.n[r.Message]++
	l.mu.Unlock()
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.n)
}

// replicaEvents answers GET /ctl/events.
type replicaEvents struct {
	Idle        []idleRecord       `json:"idle"`
	Disconnects []disconnectRecord `json:"disconnects"`
}

// replicaInfo answers GET /ctl/info.
type replicaInfo struct {
	FDLimit uint64 `json:"fd_limit"`
	CPUNs   int64  `json:"cpu_ns"`
}

// recorder keeps the Server's callbacks in memory.
type recorder struct {
	connects atomic.Int64
	resumes  atomic.Int64

	mu          sync.Mutex
	idle        []idleRecord
	idleFirst   int
	disconnects []disconnectRecord
}

func (r *recorder) onConnect(heartbeat.Event) { r.connects.Add(1) }
func (r *recorder) onResume(heartbeat.Event)  { r.resumes.Add(1) }

func (r *recorder) onIdle(ev heartbeat.Event) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	r.idle = append(r.idle, idleRecord{ID: ev.SessionID, Times: ev.Times, CallbackNs: now, AtNs: ev.At.UnixNano()})
	if ev.Times == 1 {
		r.idleFirst++
	}
	r.mu.Unlock()
}

func (r *recorder) onDisconnect(ev heartbeat.Event) {
	rec := disconnectRecord{ID: ev.SessionID, Reason: string(ev.Reason), CallbackNs: time.Now().UnixNano()}
	if !ev.LastSeen.IsZero() {
		rec.LastSeenNs = ev.LastSeen.UnixNano()
	}
	r.mu.Lock()
	r.disconnects = append(r.disconnects, rec)
	r.mu.Unlock()
}

// runReplica is the replica role.
func runReplica(ctx context.Context, cfg replicaConfig, stdin io.Reader, stdout io.Writer) error {
	key, err := hex.DecodeString(cfg.TokenKeyHex)
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	rc := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
	defer rc.Close()
	logs := &logCounter{n: map[string]int{}}
	st, err := redisstore.New(rc, cfg.Project, redisstore.WithReplicaID(cfg.ID), redisstore.WithLogger(slog.New(logs)))
	if err != nil {
		return fmt.Errorf("redisstore: %w", err)
	}
	defer st.Close()
	rec := &recorder{}
	srv, err := heartbeat.NewServer(
		heartbeat.WithStore(st.Sessions()),
		heartbeat.WithLogger(slog.New(logs)),
		heartbeat.WithTokenKeys(key),
		heartbeat.WithPingInterval(cfg.PingInterval),
		heartbeat.WithPingTimeout(cfg.PingTimeout),
		heartbeat.WithIdleThreshold(cfg.IdleThreshold),
		heartbeat.WithReconnectWindow(cfg.Grace),
		heartbeat.OnConnect(rec.onConnect),
		heartbeat.OnResume(rec.onResume),
		heartbeat.OnIdle(rec.onIdle),
		heartbeat.OnDisconnect(rec.onDisconnect),
	)
	if err != nil {
		return fmt.Errorf("heartbeat server: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(heartbeatPath, srv)
	mux.HandleFunc("POST "+controlPrefix+"open", func(w http.ResponseWriter, r *http.Request) {
		var ids []string
		if err := childproc.DecodeBody(r, &ids); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		toks, err := openAll(r.Context(), srv, ids)
		childproc.Reply(w, toks, err)
	})
	mux.HandleFunc("GET "+controlPrefix+"mem", func(w http.ResponseWriter, _ *http.Request) {
		m, err := readMem()
		childproc.Reply(w, m, err)
	})
	mux.HandleFunc("GET "+controlPrefix+"counts", func(w http.ResponseWriter, _ *http.Request) {
		rec.mu.Lock()
		c := replicaCounts{Connects: rec.connects.Load(), IdleFirst: rec.idleFirst, Disconnects: len(rec.disconnects), Resumes: rec.resumes.Load(), Logs: logs.counts()}
		rec.mu.Unlock()
		childproc.Reply(w, c, nil)
	})
	mux.HandleFunc("GET "+controlPrefix+"events", func(w http.ResponseWriter, _ *http.Request) {
		rec.mu.Lock()
		ev := replicaEvents{Idle: append([]idleRecord(nil), rec.idle...), Disconnects: append([]disconnectRecord(nil), rec.disconnects...)}
		rec.mu.Unlock()
		childproc.Reply(w, ev, nil)
	})
	mux.HandleFunc("GET "+controlPrefix+"info", func(w http.ResponseWriter, _ *http.Request) {
		lim, err := childproc.FDLimit()
		user, sys, err2 := childproc.CPUTime()
		childproc.Reply(w, replicaInfo{FDLimit: lim, CPUNs: int64(user + sys)}, errors.Join(err, err2))
	})
	return childproc.Serve(ctx, mux, stdin, stdout)
}

// openAll opens the sessions ids (each Open is one script in Redis), a few
// at a time, and returns their join tokens in order.
func openAll(ctx context.Context, srv *heartbeat.Server, ids []string) ([]string, error) {
	toks := make([]string, len(ids))
	errs := make([]error, len(ids))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(8, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				toks[i], errs[i] = srv.Open(ctx, ids[i])
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", ids[i], err)
		}
	}
	return toks, nil
}

// readMem reads the process's memory after two GCs and FreeOSMemory.
func readMem() (memSnapshot, error) {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := childproc.RSS()
	return memSnapshot{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys, RSS: rss, Goroutines: runtime.NumGoroutine()}, err
}
