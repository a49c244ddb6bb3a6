package replicascale

// The benchmark itself: it starts the replicas and the clients on one
// redis-server, and measures the phases described in the package doc.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tcconcurrency/sdk-go/heartbeat"

	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"
)

// MaxPerProcess is the most connections one process (a replica or a
// client) holds: this machine allows 20,000 open files per process.
const MaxPerProcess = 15000

const (
	fdMargin  = 512   // files beyond one per connection, per process
	perSource = 10000 // connections from one source address, at most
)

// Config is one run's configuration.
type Config struct {
	Sessions      int
	Replicas      int
	Clients       int // client processes
	PingInterval  time.Duration
	PingTimeout   time.Duration
	IdleThreshold time.Duration
	Grace         time.Duration
	// DialRate is how many sessions per second are opened and connected
	// (0: as fast as they go); Batch is how many go per step.
	DialRate     int
	Batch        int
	DialParallel int // dials at a time in each client process
	Settle       time.Duration
	KillFraction float64
	KillMin      int
	FirstSource  string // first source address of the clients
	Seed         uint64
	Mode         string // "full" or "small", for the report
}

// Full is the size of issue 12: 60,000 sessions over 4 replicas and 4
// client processes, at the heartbeat's default ping interval and timeout.
func Full() Config {
	return Config{
		Sessions: 60000, Replicas: 4, Clients: 4,
		PingInterval: heartbeat.DefaultPingInterval, PingTimeout: heartbeat.DefaultPingTimeout,
		IdleThreshold: 150 * time.Second, Grace: heartbeat.DefaultReconnectWindow,
		DialRate: 1000, Batch: 500, DialParallel: 16, Settle: 5 * time.Second,
		KillFraction: 0.1, KillMin: 100, FirstSource: "127.0.3.1", Seed: 1, Mode: "full",
	}
}

// Small is the smoke size: every process and phase of the full run, with
// 400 sessions and short timings, in about 15 s of mostly idle waiting
// (light enough to run beside the module's other tests).
func Small() Config {
	return Config{
		Sessions: 400, Replicas: 4, Clients: 4,
		PingInterval: time.Second, PingTimeout: 4 * time.Second,
		IdleThreshold: 6 * time.Second, Grace: 20 * time.Second,
		DialRate: 0, Batch: 200, DialParallel: 8, Settle: 500 * time.Millisecond,
		KillFraction: 0.1, KillMin: 40, FirstSource: "127.0.3.1", Seed: 1, Mode: "small",
	}
}

// Validate checks the configuration against this machine.
func (c Config) Validate() error {
	switch {
	case c.Sessions < c.Replicas || c.Replicas < 1 || c.Clients < 1:
		return fmt.Errorf("need at least one replica and one client process, and a session per replica (sessions %d, replicas %d, clients %d)", c.Sessions, c.Replicas, c.Clients)
	case c.PingInterval <= 0 || c.PingTimeout <= c.PingInterval:
		return fmt.Errorf("ping timeout (%s) must be longer than the ping interval (%s)", c.PingTimeout, c.PingInterval)
	case c.Grace < c.PingTimeout:
		return fmt.Errorf("grace (%s) must be at least the ping timeout (%s)", c.Grace, c.PingTimeout)
	case c.IdleThreshold <= c.Settle:
		return errors.New("idle threshold must be longer than the settle time")
	case c.Batch <= 0 || c.DialParallel <= 0 || c.DialRate < 0:
		return errors.New("batch and dial parallelism must be positive, the dial rate not negative")
	case c.KillFraction < 0 || c.KillFraction > 0.5 || c.KillMin < 1:
		return errors.New("kill fraction must be in [0, 0.5], kill min at least 1")
	}
	perReplica := (c.Sessions + c.Replicas - 1) / c.Replicas
	perClient := (c.Sessions + c.Clients - 1) / c.Clients
	if perReplica > MaxPerProcess || perClient > MaxPerProcess {
		return fmt.Errorf("%d sessions per replica and %d per client process: at most %d per process; add processes", perReplica, perClient, MaxPerProcess)
	}
	lim, err := childproc.FDLimit()
	if err != nil {
		return err
	}
	if need := uint64(max(perReplica, perClient) + fdMargin); lim < need {
		return fmt.Errorf("open file limit (ulimit -n) is %d; a process holding %d connections needs %d", lim, max(perReplica, perClient), need)
	}
	src, err := netip.ParseAddr(c.FirstSource)
	if err != nil || !src.Is4() || !src.IsLoopback() {
		return fmt.Errorf("first source address %q must be an IPv4 loopback address", c.FirstSource)
	}
	return nil
}

// Run runs the benchmark once against the redis-server at redisAddr (it
// must be empty and used by nothing else). Children's stderr goes to
// stderr. It returns the results, or an error and the results so far.
func Run(ctx context.Context, cfg Config, redisAddr string, stderr io.Writer, log *slog.Logger) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, log: log, res: &Results{Config: cfg.record(), Machine: readMachine()}}
	r.res.LoadStart = loadAvg()
	err := r.all(ctx, redisAddr, stderr)
	r.res.LoadEnd = loadAvg()
	r.res.Seconds = time.Since(r.start).Seconds()
	r.res.Complete = err == nil
	if err != nil {
		r.res.Error = err.Error()
	}
	return r.res, err
}

type run struct {
	cfg   Config
	log   *slog.Logger
	res   *Results
	start time.Time

	rdb      *redis.Client
	replicas []*proc
	clients  []*proc
	ids      []string
	activity []int64         // per session, Unix ns of its activity frame
	dropped  map[string]bool // sessions disconnected before the kills
	// disconnectsBefore counts the OnDisconnect callbacks before the
	// kills (a session the store counted lost has one on the replica
	// that swept it, and may have another on its owner).
	disconnectsBefore int
}

func (r *run) all(ctx context.Context, redisAddr string, stderr io.Writer) (err error) {
	r.start = time.Now()
	cfg := r.cfg
	r.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	defer r.rdb.Close()
	if n, err := r.rdb.DBSize(ctx).Result(); err != nil {
		return fmt.Errorf("redis at %s: %w", redisAddr, err)
	} else if n != 0 {
		return fmt.Errorf("redis at %s holds %d keys: the benchmark needs an empty one", redisAddr, n)
	}
	defer func() {
		for _, p := range append(r.replicas, r.clients...) {
			if p != nil {
				err = errors.Join(err, p.stop())
			}
		}
	}()
	if err := r.startProcs(ctx, redisAddr, stderr); err != nil {
		return err
	}
	r.log.Info("processes started", "replicas", len(r.replicas), "clients", len(r.clients))

	// 1. Memory before any session.
	if err := sleepCtx(ctx, cfg.Settle); err != nil {
		return err
	}
	before, err := r.replicaMem(ctx)
	if err != nil {
		return err
	}
	redisBefore, err := r.redisUsed(ctx)
	if err != nil {
		return err
	}

	// 2. Connect.
	if err := r.connect(ctx); err != nil {
		return err
	}
	firstIdle := time.Unix(0, r.activity[0]).Add(cfg.IdleThreshold)

	// 3. Memory with every session connected.
	if err := sleepCtx(ctx, cfg.Settle); err != nil {
		return err
	}
	after, err := r.replicaMem(ctx)
	if err != nil {
		return err
	}
	redisAfter, err := r.redisUsed(ctx)
	if err != nil {
		return err
	}
	r.res.MemoryReadAfterFirstIdle = time.Now().After(firstIdle)
	r.memory(before, after, redisBefore, redisAfter)
	if keys, err := r.rdb.DBSize(ctx).Result(); err == nil {
		r.res.RedisKeys = keys
	}

	// 4. Idle crossings.
	if err := r.idle(ctx); err != nil {
		return err
	}
	// 5. Silent kills.
	if err := r.disconnect(ctx); err != nil {
		return err
	}
	r.res.RedisCPUSeconds, _ = r.redisCPU(ctx)
	if info, err := r.rdb.Info(ctx, "commandstats").Result(); err == nil {
		for line := range strings.SplitSeq(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_evalsha:") || strings.HasPrefix(line, "cmdstat_eval:") {
				r.res.RedisScripts = append(r.res.RedisScripts, strings.TrimSpace(line))
			}
		}
	}
	return nil
}

// redisCPU is INFO cpu's used_cpu_sys + used_cpu_user: redis-server's CPU
// time so far.
func (r *run) redisCPU(ctx context.Context) (float64, error) {
	info, err := r.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	total := 0.0
	for line := range strings.SplitSeq(info, "\n") {
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), k); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, err
				}
				total += f
			}
		}
	}
	return total, nil
}

func (r *run) startProcs(ctx context.Context, redisAddr string, stderr io.Writer) error {
	cfg := r.cfg
	key := make([]byte, heartbeat.MinTokenKeyLen)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	project := "scale" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	r.replicas = make([]*proc, cfg.Replicas)
	r.clients = make([]*proc, cfg.Clients)
	perClient := (cfg.Sessions + cfg.Clients - 1) / cfg.Clients
	nsrc := (perClient + perSource - 1) / perSource
	src := netip.MustParseAddr(cfg.FirstSource)
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range cfg.Replicas {
		rc := replicaConfig{
			RedisAddr: redisAddr, Project: project, ID: "r" + strconv.Itoa(i+1), TokenKeyHex: hex.EncodeToString(key),
			PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout, IdleThreshold: cfg.IdleThreshold, Grace: cfg.Grace,
		}
		wg.Go(func() {
			p, err := startProc(ctx, "replica "+rc.ID, "replica", rc, stderr)
			mu.Lock()
			defer mu.Unlock()
			r.replicas[i] = p
			errs = append(errs, err)
		})
	}
	for i := range cfg.Clients {
		cc := clientConfig{PerSource: perSource, DialParallel: cfg.DialParallel, MaxSessions: perClient, ActivityFrame: true}
		for range nsrc {
			cc.Sources = append(cc.Sources, src.String())
			src = src.Next()
		}
		wg.Go(func() {
			p, err := startProc(ctx, "client "+strconv.Itoa(i+1), "client", cc, stderr)
			mu.Lock()
			defer mu.Unlock()
			r.clients[i] = p
			errs = append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, p := range r.replicas {
		var info replicaInfo
		if err := p.get(ctx, "info", &info); err != nil {
			return err
		}
		if need := uint64((cfg.Sessions+cfg.Replicas-1)/cfg.Replicas + fdMargin); info.FDLimit < need {
			return fmt.Errorf("%s may open %d files, needs %d", p.Name, info.FDLimit, need)
		}
	}
	return nil
}

// connect opens and connects every session, in batches paced at DialRate.
func (r *run) connect(ctx context.Context) error {
	cfg := r.cfg
	n := cfg.Sessions
	r.ids = make([]string, n)
	r.activity = make([]int64, n)
	for i := range n {
		r.ids[i] = "u" + strconv.Itoa(i)
	}
	t0 := time.Now()
	for lo := 0; lo < n; lo += cfg.Batch {
		hi := min(n, lo+cfg.Batch)
		if err := r.batch(ctx, lo, hi); err != nil {
			return err
		}
		if cfg.DialRate > 0 {
			due := t0.Add(time.Duration(float64(hi) / float64(cfg.DialRate) * float64(time.Second)))
			if err := sleepCtx(ctx, time.Until(due)); err != nil {
				return err
			}
		}
		if hi%(10*cfg.Batch) == 0 || hi == n {
			r.log.Info("connecting", "sessions", hi, "of", n, "seconds", fmt.Sprintf("%.1f", time.Since(t0).Seconds()))
		}
	}
	r.res.DialSeconds = time.Since(t0).Seconds()
	err := r.waitReplicas(ctx, 60*time.Second, func(c []replicaCounts) bool {
		var s int64
		for _, x := range c {
			s += x.Connects
		}
		return s >= int64(n)
	})
	if err != nil {
		return fmt.Errorf("waiting for every OnConnect: %w", err)
	}
	r.res.ConnectSeconds = time.Since(t0).Seconds()
	r.log.Info("connected", "sessions", n, "seconds", fmt.Sprintf("%.1f", r.res.ConnectSeconds))
	return nil
}

// batch opens sessions lo…hi−1 (session i on replica (i+1) mod R) and then
// connects them (to replica i mod R, from client process (i div R) mod C).
func (r *run) batch(ctx context.Context, lo, hi int) error {
	R, C := r.cfg.Replicas, r.cfg.Clients
	open := make([][]int, R)
	for i := lo; i < hi; i++ {
		open[(i+1)%R] = append(open[(i+1)%R], i)
	}
	tokens := make([]string, hi-lo)
	if err := parallel(R, func(k int) error {
		ids := make([]string, len(open[k]))
		for j, i := range open[k] {
			ids[j] = r.ids[i]
		}
		var toks []string
		if err := r.replicas[k].call(ctx, "POST", "open", ids, &toks); err != nil {
			return err
		}
		if len(toks) != len(ids) {
			return fmt.Errorf("%s opened %d of %d sessions", r.replicas[k].Name, len(toks), len(ids))
		}
		for j, i := range open[k] {
			tokens[i-lo] = toks[j]
		}
		return nil
	}); err != nil {
		return err
	}
	dial := make([][]int, C)
	for i := lo; i < hi; i++ {
		dial[(i/R)%C] = append(dial[(i/R)%C], i)
	}
	return parallel(C, func(k int) error {
		items := make([]dialItem, len(dial[k]))
		for j, i := range dial[k] {
			items[j] = dialItem{ID: r.ids[i], Token: tokens[i-lo], URL: "ws://" + r.replicas[i%R].Addr + heartbeatPath}
		}
		var res dialResult
		if err := r.clients[k].call(ctx, "POST", "dial", items, &res); err != nil {
			return err
		}
		for j, i := range dial[k] {
			r.activity[i] = res.ActivityNs[j]
		}
		return nil
	})
}

// idle waits for every session's first idle crossing and computes the
// callbacks' error.
func (r *run) idle(ctx context.Context) error {
	cfg := r.cfg
	var last int64
	for _, a := range r.activity {
		last = max(last, a)
	}
	deadline := time.Unix(0, last).Add(cfg.IdleThreshold + max(10*time.Second, cfg.IdleThreshold/4))
	err := r.waitReplicas(ctx, time.Until(deadline), func(c []replicaCounts) bool {
		s := 0
		for _, x := range c {
			s += x.IdleFirst
		}
		return s >= cfg.Sessions
	})
	if err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	evs, err := r.events(ctx)
	if err != nil {
		return err
	}
	index := make(map[string]int, len(r.ids))
	for i, id := range r.ids {
		index[id] = i
	}
	seen := make(map[string]bool, len(r.ids))
	var errMs, serverMs []float64
	for _, ev := range evs {
		for _, x := range ev.Idle {
			i, ok := index[x.ID]
			if !ok || x.Times != 1 || x.CallbackNs < r.activity[i] || seen[x.ID] {
				continue
			}
			seen[x.ID] = true
			expected := r.activity[i] + int64(cfg.IdleThreshold)
			errMs = append(errMs, float64(x.CallbackNs-expected)/1e6)
			serverMs = append(serverMs, float64(x.CallbackNs-x.AtNs)/1e6)
		}
	}
	r.dropped = map[string]bool{}
	r.res.DroppedReasons = map[string]int{}
	for _, ev := range evs {
		r.disconnectsBefore += len(ev.Disconnects)
		for _, x := range ev.Disconnects {
			r.dropped[x.ID] = true
			r.res.DroppedReasons[x.Reason]++
		}
	}
	r.res.DisconnectsBeforeKills = len(r.dropped)
	r.res.DisconnectCallbacksBeforeKills = r.disconnectsBefore
	cc := make([]clientCounts, len(r.clients))
	if err := parallel(len(r.clients), func(i int) error { return r.clients[i].get(ctx, "counts", &cc[i]) }); err != nil {
		return err
	}
	for _, x := range cc {
		r.res.ClientConnectionsEnded += x.Ended
	}
	r.res.IdleErrorMs = newDist(errMs)
	r.res.IdleServerErrorMs = newDist(serverMs)
	r.res.IdleMissing = cfg.Sessions - len(errMs)
	r.log.Info("idle", "callbacks", len(errMs), "missing", r.res.IdleMissing, "p99_ms", fmt.Sprintf("%.1f", r.res.IdleErrorMs.P99),
		"dropped_before", len(r.dropped), "reasons", r.res.DroppedReasons)
	return nil
}

// disconnect silences k sessions at once and measures how long after each
// one's last frame its replica's OnDisconnect came.
func (r *run) disconnect(ctx context.Context) error {
	cfg := r.cfg
	n := cfg.Sessions
	k := min(max(int(math.Ceil(cfg.KillFraction*float64(n))), cfg.KillMin), n/2)
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0))
	// Silence sessions that are still connected.
	var perm []int
	for _, i := range rng.Perm(n) {
		if len(perm) == k {
			break
		}
		if !r.dropped[r.ids[i]] {
			perm = append(perm, i)
		}
	}
	k = len(perm)
	byClient := make([][]string, cfg.Clients)
	for _, i := range perm {
		c := (i / cfg.Replicas) % cfg.Clients
		byClient[c] = append(byClient[c], r.ids[i])
	}
	r.res.Silenced = k
	lastFrame := make(map[string]int64, k)
	var mu sync.Mutex
	if err := parallel(cfg.Clients, func(c int) error {
		var res silenceResult
		if err := r.clients[c].call(ctx, "POST", "silence", byClient[c], &res); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for j, id := range byClient[c] {
			lastFrame[id] = res.LastFrameNs[j]
		}
		return nil
	}); err != nil {
		return err
	}
	// Every silenced client is detected a ping timeout after its last
	// frame; allow as much again.
	deadline := time.Now().Add(2*cfg.PingTimeout + 10*time.Second)
	err := r.waitReplicas(ctx, time.Until(deadline), func(c []replicaCounts) bool {
		s := 0
		for _, x := range c {
			s += x.Disconnects
		}
		return s >= k+r.disconnectsBefore
	})
	if err != nil && !errors.Is(err, errTimeout) {
		return err
	}
	evs, err := r.events(ctx)
	if err != nil {
		return err
	}
	var ms, lateMs []float64
	reasons := map[string]int{}
	for _, ev := range evs {
		for _, x := range ev.Disconnects {
			lf, ok := lastFrame[x.ID]
			if !ok {
				if !r.dropped[x.ID] {
					r.res.UnexpectedDisconnects++ // dropped during the kill phase
				}
				continue
			}
			reasons[x.Reason]++
			ms = append(ms, float64(x.CallbackNs-lf)/1e6)
			if x.LastSeenNs != 0 {
				lateMs = append(lateMs, float64(x.CallbackNs-x.LastSeenNs-int64(cfg.PingTimeout))/1e6)
			}
		}
	}
	r.res.DisconnectMs = newDist(ms)
	r.res.DisconnectLateMs = newDist(lateMs)
	r.res.DisconnectReasons = reasons
	r.res.DisconnectMissing = k - len(ms)
	r.log.Info("disconnect", "silenced", k, "detected", len(ms), "p99_ms", fmt.Sprintf("%.0f", r.res.DisconnectMs.P99))
	c := make([]replicaCounts, len(r.replicas))
	if err := parallel(len(r.replicas), func(i int) error { return r.replicas[i].get(ctx, "counts", &c[i]) }); err != nil {
		return err
	}
	r.res.ReplicaLogs = map[string]int{}
	for _, x := range c {
		r.res.Resumes += x.Resumes
		for m, v := range x.Logs {
			r.res.ReplicaLogs[m] += v
		}
	}
	return nil
}

// memory fills the memory figures.
func (r *run) memory(before, after []memSnapshot, redisBefore, redisAfter int64) {
	n := r.cfg.Sessions
	for i := range before {
		held := n / r.cfg.Replicas
		if i < n%r.cfg.Replicas {
			held++
		}
		b, a := before[i], after[i]
		r.res.Replicas = append(r.res.Replicas, replicaResult{
			Name: r.replicas[i].Name, Sessions: held, Before: b, After: a,
			RSSBytesPerSession:   (float64(a.RSS) - float64(b.RSS)) / float64(held),
			GoBytesPerSession:    (float64(a.HeapInuse+a.StackInuse) - float64(b.HeapInuse+b.StackInuse)) / float64(held),
			GoroutinesPerSession: float64(a.Goroutines-b.Goroutines) / float64(held),
		})
	}
	r.res.RedisUsedBefore, r.res.RedisUsedAfter = redisBefore, redisAfter
	r.res.RedisBytesPerSession = float64(redisAfter-redisBefore) / float64(n)
}

func (r *run) replicaMem(ctx context.Context) ([]memSnapshot, error) {
	out := make([]memSnapshot, len(r.replicas))
	return out, parallel(len(r.replicas), func(i int) error { return r.replicas[i].get(ctx, "mem", &out[i]) })
}

func (r *run) events(ctx context.Context) ([]replicaEvents, error) {
	out := make([]replicaEvents, len(r.replicas))
	return out, parallel(len(r.replicas), func(i int) error { return r.replicas[i].get(ctx, "events", &out[i]) })
}

// redisUsed is INFO memory's used_memory.
func (r *run) redisUsed(ctx context.Context) (int64, error) {
	info, err := r.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redis INFO memory has no used_memory")
}

var errTimeout = errors.New("timed out")

// waitReplicas polls the replicas' counts until done holds, or timeout.
func (r *run) waitReplicas(ctx context.Context, timeout time.Duration, done func([]replicaCounts) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		c := make([]replicaCounts, len(r.replicas))
		if err := parallel(len(r.replicas), func(i int) error { return r.replicas[i].get(ctx, "counts", &c[i]) }); err != nil {
			return err
		}
		if done(c) {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %+v", errTimeout, c)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// parallel runs f(0…n−1) at the same time and joins their errors.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
