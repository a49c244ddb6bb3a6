package main

// The orchestrator and load generator: for each (N, run) it starts a fresh
// server process, connects N clients and measures the phases described in
// doc.go.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"
)

const (
	fdMargin       = 256         // file descriptors beyond one per session, per process
	maxPerSourceIP = 10000       // connections from one source address, at most
	phaseMargin    = time.Second // slack between the CPU window and the idle crossings
)

// orchestratorConfig is the configuration of a whole run.
type orchestratorConfig struct {
	server       serverConfig
	sessions     intList
	runs         int
	idleSpread   time.Duration
	settle       time.Duration
	cpuWindow    time.Duration
	killFraction float64
	killMin      int
	dialPar      int
	perIP        int
	firstSrc     string
	out          string
	profileDir   string
	quick        bool
	libDefaults  bool
	stderr       io.Writer // the server process's stderr goes here
}

func (c *orchestratorConfig) register(fs *flag.FlagSet) {
	c.sessions = intList{1000, 5000, 15000}
	fs.Var(&c.sessions, "sessions", "comma-separated session counts N")
	fs.IntVar(&c.runs, "runs", 5, "runs per session count, each with a fresh server process")
	fs.DurationVar(&c.idleSpread, "idle-spread", time.Second, "the clients' activity frames are spread evenly over this long, and so are the idle crossings")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "idle time before the memory snapshot")
	fs.DurationVar(&c.cpuWindow, "cpu-window", 8*time.Second, "CPU measurement window")
	fs.Float64Var(&c.killFraction, "kill-fraction", 0.1, "fraction of the sessions killed each way (silent, reset)")
	fs.IntVar(&c.killMin, "kill-min", 100, "sessions killed each way, at least (at most half of N each)")
	fs.IntVar(&c.dialPar, "dial-parallelism", 64, "connections dialled at a time")
	fs.IntVar(&c.perIP, "per-source-addr", maxPerSourceIP, "connections per source address, at most")
	fs.StringVar(&c.firstSrc, "first-source-addr", "127.0.0.2", "first source address; each run takes the next fresh ones")
	fs.StringVar(&c.out, "out", "results.json", "results file (empty: none)")
	fs.StringVar(&c.profileDir, "profile", "", "write server CPU profiles of each phase and a heap profile to this directory (adds profiling overhead to the figures)")
	fs.BoolVar(&c.quick, "quick", false, "smoke test: N=200, 1 run, short phases (under 30 s); explicit flags still win")
	fs.BoolVar(&c.libDefaults, "library-defaults", false, "ping interval, ping timeout and grace at the heartbeat package's defaults (DefaultPingInterval, DefaultPingTimeout, DefaultReconnectWindow); explicit flags still win")
}

// applyQuick sets the quick mode's values for every flag not given
// explicitly.
func (c *orchestratorConfig) applyQuick(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	quick := map[string]func(){
		"sessions":       func() { c.sessions = intList{200} },
		"runs":           func() { c.runs = 1 },
		"ping-interval":  func() { c.server.pingInterval = time.Second },
		"ping-timeout":   func() { c.server.pingTimeout = 2500 * time.Millisecond },
		"idle-threshold": func() { c.server.idleThreshold = 8 * time.Second }, // room for a slow connect on a loaded machine
		"idle-spread":    func() { c.idleSpread = 250 * time.Millisecond },
		"settle":         func() { c.settle = 500 * time.Millisecond },
		"cpu-window":     func() { c.cpuWindow = 2 * time.Second },
		"kill-min":       func() { c.killMin = 40 },
	}
	for name, apply := range quick {
		if !set[name] {
			apply()
		}
	}
}

// applyLibraryDefaults sets the server's ping interval, ping timeout and
// grace to the heartbeat package's defaults, for each of those flags not
// given explicitly (after -quick, which it overrides for them).
func (c *orchestratorConfig) applyLibraryDefaults(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["ping-interval"] {
		c.server.pingInterval = heartbeat.DefaultPingInterval
	}
	if !set["ping-timeout"] {
		c.server.pingTimeout = heartbeat.DefaultPingTimeout
	}
	if !set["grace"] {
		c.server.grace = heartbeat.DefaultReconnectWindow
	}
}

func (c *orchestratorConfig) validate() error {
	s := c.server
	switch {
	case len(c.sessions) == 0:
		return errors.New("-sessions: need at least one count")
	case c.runs <= 0:
		return errors.New("-runs must be positive")
	case s.pingInterval <= 0 || s.pingTimeout <= s.pingInterval:
		return fmt.Errorf("-ping-timeout (%s) must be longer than -ping-interval (%s)", s.pingTimeout, s.pingInterval)
	case c.idleSpread < 0 || c.settle < 0 || c.cpuWindow <= 0:
		return errors.New("-idle-spread and -settle must not be negative, -cpu-window must be positive")
	case s.idleThreshold < c.idleSpread+c.settle+c.cpuWindow+phaseMargin:
		return fmt.Errorf("-idle-threshold (%s) must be at least -idle-spread + -settle + -cpu-window + %s (%s): the CPU window must end before the idle crossings",
			s.idleThreshold, phaseMargin, c.idleSpread+c.settle+c.cpuWindow+phaseMargin)
	case s.grace < s.pingTimeout+5*time.Second:
		return fmt.Errorf("-grace (%s) must be at least -ping-timeout + 5s", s.grace)
	case c.killFraction < 0 || c.killFraction > 0.5 || c.killMin < 1:
		return errors.New("-kill-fraction must be in [0, 0.5] and -kill-min at least 1")
	case c.dialPar <= 0:
		return errors.New("-dial-parallelism must be positive")
	case c.perIP <= 0 || c.perIP > maxPerSourceIP:
		return fmt.Errorf("-per-source-addr must be in [1, %d]", maxPerSourceIP)
	}
	for _, n := range c.sessions {
		if n < 2 {
			return errors.New("-sessions: each count must be at least 2")
		}
	}
	if ports, err := ephemeralPorts(); err == nil && c.perIP > ports-1000 {
		return fmt.Errorf("-per-source-addr %d leaves fewer than 1000 of the %d ephemeral ports (net.ipv4.ip_local_port_range) free", c.perIP, ports)
	}
	src, err := netip.ParseAddr(c.firstSrc)
	if err != nil || !src.Is4() || !src.IsLoopback() {
		return fmt.Errorf("-first-source-addr %q must be an IPv4 loopback address (127.x.y.z)", c.firstSrc)
	}
	limit, err := childproc.FDLimit()
	if err != nil {
		return err
	}
	if need := uint64(maxInt(c.sessions) + fdMargin); limit < need {
		return fmt.Errorf("open file limit (ulimit -n) is %d; %d sessions need at least %d in each process (load generator and server): raise the limit or lower -sessions",
			limit, maxInt(c.sessions), need)
	}
	return nil
}

func (c *orchestratorConfig) record() configRecord {
	return configRecord{
		Sessions:          c.sessions,
		Runs:              c.runs,
		Quick:             c.quick,
		LibraryDefaults:   c.libDefaults,
		PingIntervalMs:    durationMs(c.server.pingInterval),
		PingTimeoutMs:     durationMs(c.server.pingTimeout),
		IdleThresholdMs:   durationMs(c.server.idleThreshold),
		GraceMs:           durationMs(c.server.grace),
		IdleSpreadMs:      durationMs(c.idleSpread),
		SettleMs:          durationMs(c.settle),
		CPUWindowMs:       durationMs(c.cpuWindow),
		KillFraction:      c.killFraction,
		KillMin:           c.killMin,
		DialParallelism:   c.dialPar,
		SessionsPerSource: c.perIP,
		Profiling:         c.profileDir != "",
	}
}

func maxInt(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// ephemeralPorts is the size of the kernel's ephemeral port range.
func ephemeralPorts() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return hi - lo + 1, nil
}

// orchestrator runs the whole benchmark.
type orchestrator struct {
	cfg     orchestratorConfig
	log     *slog.Logger
	nextSrc netip.Addr // the next fresh source address
}

// orchestrate runs every (N, run). It returns the results so far even with
// an error.
func orchestrate(ctx context.Context, cfg orchestratorConfig, log *slog.Logger) (*results, error) {
	start := time.Now()
	o := &orchestrator{cfg: cfg, log: log, nextSrc: netip.MustParseAddr(cfg.firstSrc)}
	if o.cfg.stderr == nil {
		o.cfg.stderr = os.Stderr
	}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return nil, fmt.Errorf("profile directory: %w", err)
		}
	}
	res := &results{Schema: schemaVersion, Machine: readMachine(start), Config: cfg.record(), Runs: []runResult{}}
	var err error
loop:
	for _, n := range cfg.sessions {
		for run := 1; run <= cfg.runs; run++ {
			log.Info("run", "sessions", n, "run", run, "of", cfg.runs, "elapsed", time.Since(start).Round(time.Second))
			var r runResult
			if r, err = o.runOne(ctx, n, run); err != nil {
				err = fmt.Errorf("sessions %d, run %d: %w", n, run, err)
				break loop
			}
			res.Runs = append(res.Runs, r)
		}
	}
	res.summarize()
	res.Complete = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	log.Info("done", "elapsed", time.Since(start).Round(time.Second))
	return res, err
}

// takeSources returns fresh source addresses for n connections.
func (o *orchestrator) takeSources(n int) ([]net.IP, error) {
	k := (n + o.cfg.perIP - 1) / o.cfg.perIP
	ips := make([]net.IP, k)
	for i := range ips {
		a := o.nextSrc
		for a.IsLoopback() && (a.As4()[3] == 0 || a.As4()[3] == 255) {
			// Skip network and broadcast-looking addresses.
			a = a.Next()
		}
		if !a.IsLoopback() {
			return nil, errors.New("ran out of 127.0.0.0/8 source addresses")
		}
		ips[i] = net.IP(a.AsSlice())
		o.nextSrc = a.Next()
	}
	return ips, nil
}

// runOne measures one (N, run) with a fresh server process.
func (o *orchestrator) runOne(ctx context.Context, n, run int) (res runResult, err error) {
	res = runResult{Sessions: n, Run: run}
	srcIPs, err := o.takeSources(n)
	if err != nil {
		return res, err
	}
	for _, ip := range srcIPs {
		res.SourceAddrs = append(res.SourceAddrs, ip.String())
	}
	proc, err := startServer(ctx, o.cfg.server, o.cfg.stderr)
	if err != nil {
		return res, err
	}
	r := &runner{cfg: o.cfg, log: o.log, n: n, res: &res, proc: proc, profile: o.profiler(proc, n, run)}
	defer func() {
		// The server goes first, so that the clients' RSTs do not keep it
		// busy with N disconnects; then the clients.
		if serr := proc.stop(); serr != nil && err == nil {
			err = serr
		}
		if r.fl != nil {
			r.fl.closeAll()
		}
	}()
	for _, phase := range []func(context.Context) error{
		func(ctx context.Context) error { return r.connect(ctx, srcIPs) },
		r.memory,
		r.cpu,
		r.idle,
		func(ctx context.Context) error {
			return r.disconnect(ctx, rand.New(rand.NewPCG(uint64(n), uint64(run))))
		},
	} {
		if err := phase(ctx); err != nil {
			return res, err
		}
	}
	return res, nil
}

// runner holds the state of one (N, run) across its phases.
type runner struct {
	cfg     orchestratorConfig
	log     *slog.Logger
	n       int
	res     *runResult
	proc    *serverProc
	profile profiler
	fl      *fleet
	tOpen   time.Time // when the sessions were opened (their first activity)
	tAct    time.Time // when the activity frames started
}

// connect opens the sessions and connects a client to each.
func (r *runner) connect(ctx context.Context, srcIPs []net.IP) error {
	var info serverInfo
	if err := r.proc.get(ctx, "info", &info); err != nil {
		return err
	}
	if need := uint64(r.n + fdMargin); info.FDLimit < need {
		return fmt.Errorf("the server process may open %d files; %d sessions need %d: raise ulimit -n", info.FDLimit, r.n, need)
	}
	if err := r.proc.get(ctx, "mem", &r.res.MemBefore); err != nil {
		return err
	}
	r.tOpen = time.Now()
	var open openResponse
	if err := r.proc.post(ctx, "open?n="+strconv.Itoa(r.n), &open); err != nil {
		return err
	}
	if len(open.IDs) != r.n || len(open.Tokens) != r.n {
		return fmt.Errorf("open: got %d ids and %d tokens for %d sessions", len(open.IDs), len(open.Tokens), r.n)
	}
	var err error
	if r.fl, err = dialFleet(ctx, "ws://"+r.proc.Addr+heartbeatPath, open, srcIPs, r.cfg.perIP, r.cfg.dialPar); err != nil {
		return err
	}
	if err := r.proc.waitCounts(ctx, 10*time.Second, func(c counts) bool { return c.Connects >= int64(r.n) }); err != nil {
		return fmt.Errorf("waiting for OnConnect of every session: %w", err)
	}
	r.res.ConnectSeconds = time.Since(r.tOpen).Seconds()
	r.log.Info("connected", "sessions", r.n, "seconds", fmt.Sprintf("%.2f", r.res.ConnectSeconds))
	return nil
}

// memory is phase 1: the server's memory with N sessions that only said
// hello, then after one activity frame each (which also starts phase 3).
func (r *runner) memory(ctx context.Context) error {
	if err := sleepUntil(ctx, time.Now().Add(r.cfg.settle)); err != nil {
		return err
	}
	if err := r.proc.get(ctx, "mem", &r.res.MemConnected); err != nil {
		return err
	}

	// Every session gets one activity frame, spread over idleSpread: its
	// idle threshold now runs from there. Opening counted as activity, so
	// the frames must all arrive before the first threshold since Open.
	r.tAct = time.Now()
	if last, limit := r.tAct.Add(r.cfg.idleSpread).Sub(r.tOpen), r.cfg.server.idleThreshold-phaseMargin; last > limit {
		return fmt.Errorf("the last activity frame would come %s after Open (connecting took %.1fs), later than idle threshold − 1s (%s); raise -idle-threshold",
			last.Round(time.Millisecond), r.res.ConnectSeconds, limit)
	}
	if err := sendActivity(ctx, r.fl, r.tAct, r.cfg.idleSpread); err != nil {
		return err
	}
	if err := sleepUntil(ctx, r.tAct.Add(r.cfg.idleSpread+r.cfg.settle)); err != nil {
		return err
	}
	if err := r.proc.get(ctx, "mem", &r.res.MemAfter); err != nil {
		return err
	}
	if err := r.profile.heap(ctx, "heap"); err != nil {
		return err
	}
	perSession(r.res, r.n)
	return nil
}

// cpu is phase 2: server CPU per heartbeat, between the activity frames and
// the idle crossings, when the server does nothing but heartbeats.
func (r *runner) cpu(ctx context.Context) error {
	if err := r.profile.start(ctx, "cpu-window"); err != nil {
		return err
	}
	var cpu0, cpu1 cpuSnapshot
	if err := r.proc.get(ctx, "cpu", &cpu0); err != nil {
		return err
	}
	own0, err := ownCPU()
	if err != nil {
		return err
	}
	pongs0, w0 := r.fl.pongs.Load(), time.Now()
	if err := sleepUntil(ctx, w0.Add(r.cfg.cpuWindow)); err != nil {
		return err
	}
	if err := r.proc.get(ctx, "cpu", &cpu1); err != nil {
		return err
	}
	pongs1, w1 := r.fl.pongs.Load(), time.Now()
	own1, err := ownCPU()
	if err != nil {
		return err
	}
	if err := r.profile.stop(ctx); err != nil {
		return err
	}
	if first := r.tAct.Add(r.cfg.server.idleThreshold); w1.After(first) {
		return fmt.Errorf("the CPU window ended %s after the first idle crossing; raise -idle-threshold or shorten -cpu-window", w1.Sub(first))
	}
	res := r.res
	res.CPUWindowSeconds = w1.Sub(w0).Seconds()
	res.Heartbeats = pongs1 - pongs0
	if res.Heartbeats <= 0 {
		return errors.New("no heartbeat during the CPU window")
	}
	cpu := cpu1.total() - cpu0.total()
	res.CPUSeconds = cpu.Seconds()
	res.HeartbeatsPerSecond = float64(res.Heartbeats) / res.CPUWindowSeconds
	res.CPUUsPerHeartbeat = float64(cpu.Microseconds()) / float64(res.Heartbeats)
	res.CPUCores = res.CPUSeconds / res.CPUWindowSeconds
	res.LoadgenCPUUsPerHeartbeat = float64((own1 - own0).Microseconds()) / float64(res.Heartbeats)
	return nil
}

// idle is phase 3: every session crosses its idle threshold once.
func (r *runner) idle(ctx context.Context) error {
	if err := r.profile.start(ctx, "idle"); err != nil {
		return err
	}
	deadline := r.tAct.Add(r.cfg.idleSpread + r.cfg.server.idleThreshold + 5*time.Second)
	if err := r.proc.waitCounts(ctx, time.Until(deadline), func(c counts) bool { return c.Idle1 >= r.n }); err != nil && !errors.Is(err, errWaitTimeout) {
		return err
	}
	if err := r.profile.stop(ctx); err != nil {
		return err
	}
	var ev eventsResponse
	if err := r.proc.get(ctx, "events", &ev); err != nil {
		return err
	}
	var ms []float64
	for _, rec := range ev.Idle {
		if rec.Times == 1 {
			ms = append(ms, float64(rec.ErrorNs)/1e6)
		}
	}
	r.res.IdleErrorMs = newDist(ms)
	r.res.IdleMissing = r.n - len(ms)
	if len(ev.Disconnects) > 0 {
		d := ev.Disconnects[0]
		return fmt.Errorf("%d sessions disconnected before the kills (first: %s, %s)", len(ev.Disconnects), d.ID, d.Reason)
	}
	return nil
}

// disconnect is phase 4: k sessions go silent and k others are reset, at
// the same moment. A reset is detected at once, a silent client a ping
// timeout after its last pong, long after the resets are done.
func (r *runner) disconnect(ctx context.Context, rng *rand.Rand) error {
	if err := r.profile.start(ctx, "disconnect"); err != nil {
		return err
	}
	k := min(max(int(math.Ceil(r.cfg.killFraction*float64(r.n))), r.cfg.killMin), r.n/2)
	perm := rng.Perm(r.n)
	silent, reset := perm[:k], perm[k:2*k]
	for _, i := range silent {
		r.fl.clients[i].silence()
	}
	for _, i := range reset {
		if err := r.fl.clients[i].reset(); err != nil {
			return fmt.Errorf("reset %s: %w", r.fl.clients[i].id, err)
		}
	}
	killed := make(map[string]int64, 2*k)
	for _, i := range perm[:2*k] {
		killed[r.fl.clients[i].id] = r.fl.clients[i].killTime()
	}
	deadline := time.Now().Add(r.cfg.server.pingTimeout + 3*time.Second)
	if err := r.proc.waitCounts(ctx, time.Until(deadline), func(c counts) bool { return c.Disconnects >= 2*k }); err != nil && !errors.Is(err, errWaitTimeout) {
		return err
	}
	if err := r.profile.stop(ctx); err != nil {
		return err
	}
	var ev eventsResponse
	if err := r.proc.get(ctx, "events", &ev); err != nil {
		return err
	}
	r.disconnects(ev.Disconnects, silent, reset, killed)
	return nil
}

// perSession fills the per-session memory figures.
func perSession(res *runResult, n int) {
	b, a := res.MemBefore, res.MemAfter
	per := func(after, before uint64) float64 { return (float64(after) - float64(before)) / float64(n) }
	c := res.MemConnected
	res.MemGoBytesPerSessionHelloOnly = per(c.HeapInuse+c.StackInuse, b.HeapInuse+b.StackInuse)
	res.RSSBytesPerSessionHelloOnly = per(c.RSS, b.RSS)
	res.HeapInuseBytesPerSession = per(a.HeapInuse, b.HeapInuse)
	res.HeapAllocBytesPerSession = per(a.HeapAlloc, b.HeapAlloc)
	res.StackBytesPerSession = per(a.StackInuse, b.StackInuse)
	res.MemGoBytesPerSession = res.HeapInuseBytesPerSession + res.StackBytesPerSession
	res.SysBytesPerSession = per(a.Sys, b.Sys)
	res.RSSBytesPerSession = per(a.RSS, b.RSS)
	res.RSSAfterGCBytesPerSession = per(a.RSSGC, b.RSSGC)
	res.GoroutinesPerSession = float64(a.Goroutines-b.Goroutines) / float64(n)
}

// disconnects fills the disconnect figures from the server's records.
func (r *runner) disconnects(recs []disconnectRecord, silent, reset []int, killed map[string]int64) {
	res, fl := r.res, r.fl
	kind := make(map[string]string, len(silent)+len(reset))
	for _, i := range silent {
		kind[fl.clients[i].id] = "silent"
	}
	for _, i := range reset {
		kind[fl.clients[i].id] = "reset"
	}
	res.SilentReasons, res.ResetReasons = map[string]int{}, map[string]int{}
	timeout := r.cfg.server.pingTimeout
	var silentMs, lateMs, resetMs, cbMs []float64
	for _, rec := range recs {
		cbMs = append(cbMs, float64(rec.CallbackUnixNs-rec.DetectedUnixNs)/1e6)
		switch kind[rec.ID] {
		case "silent":
			res.SilentReasons[rec.Reason]++
			silentMs = append(silentMs, float64(rec.CallbackUnixNs-killed[rec.ID])/1e6)
			if rec.LastSeenUnixNs != 0 {
				lateMs = append(lateMs, float64(rec.CallbackUnixNs-rec.LastSeenUnixNs-int64(timeout))/1e6)
			}
		case "reset":
			res.ResetReasons[rec.Reason]++
			resetMs = append(resetMs, float64(rec.CallbackUnixNs-killed[rec.ID])/1e6)
		default:
			res.UnexpectedDisconnects++
		}
	}
	res.DisconnectSilentMs = newDist(silentMs)
	res.DisconnectSilentLateMs = newDist(lateMs)
	res.DisconnectResetMs = newDist(resetMs)
	res.DisconnectCallbackMs = newDist(cbMs)
	res.SilentMissing = len(silent) - len(silentMs)
	res.ResetMissing = len(reset) - len(resetMs)
	if res.SilentMissing > 0 || res.ResetMissing > 0 || res.UnexpectedDisconnects > 0 {
		r.log.Warn("disconnects", "silent_missing", res.SilentMissing, "reset_missing", res.ResetMissing, "unexpected", res.UnexpectedDisconnects)
	}
}

// sendActivity sends one activity frame per client, spread evenly over
// spread from start.
func sendActivity(ctx context.Context, fl *fleet, start time.Time, spread time.Duration) error {
	n := len(fl.clients)
	for i, c := range fl.clients {
		at := start.Add(time.Duration(int64(spread) * int64(i) / int64(n)))
		if time.Until(at) > time.Millisecond {
			if err := sleepUntil(ctx, at); err != nil {
				return err
			}
		}
		if err := c.activity(); err != nil {
			return fmt.Errorf("activity frame of %s: %w", c.id, err)
		}
	}
	return nil
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// ownCPU is the load generator's CPU time so far.
func ownCPU() (time.Duration, error) {
	c, err := cpuNow()
	return c.total(), err
}

// serverProc is a running server process.
type serverProc struct{ *childproc.Proc }

// startServer starts this program again with -serve and reads the address
// it listens on. The server exits when its stdin reaches EOF, which also
// happens when this process dies.
func startServer(ctx context.Context, cfg serverConfig, stderr io.Writer) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own executable: %w", err)
	}
	cmd := exec.Command(exe, cfg.args()...)
	cmd.Stderr = stderr
	p, err := childproc.Start(ctx, "server process", cmd)
	if err != nil {
		return nil, err
	}
	return &serverProc{p}, nil
}

func (p *serverProc) stop() error { return p.Stop() }

func (p *serverProc) get(ctx context.Context, path string, out any) error {
	return p.Call(ctx, http.MethodGet, controlPrefix+path, nil, out)
}

func (p *serverProc) post(ctx context.Context, path string, out any) error {
	return p.Call(ctx, http.MethodPost, controlPrefix+path, nil, out)
}

var errWaitTimeout = errors.New("timed out")

// waitCounts polls the server's event counts until done holds or timeout
// passes (errWaitTimeout).
func (p *serverProc) waitCounts(ctx context.Context, timeout time.Duration, done func(counts) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		var c counts
		if err := p.get(ctx, "counts", &c); err != nil {
			return err
		}
		if done(c) {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %+v", errWaitTimeout, c)
		}
		if err := sleepUntil(ctx, time.Now().Add(50*time.Millisecond)); err != nil {
			return err
		}
	}
}

// profiler writes server profiles of the phases when -profile is set.
type profiler struct {
	proc *serverProc
	dir  string
	tag  string
}

func (o *orchestrator) profiler(p *serverProc, n, run int) profiler {
	return profiler{proc: p, dir: o.cfg.profileDir, tag: fmt.Sprintf("n%d-r%d", n, run)}
}

func (pr profiler) file(phase string) string {
	abs, err := filepath.Abs(filepath.Join(pr.dir, phase+"-"+pr.tag+".pprof"))
	if err != nil {
		return filepath.Join(pr.dir, phase+"-"+pr.tag+".pprof")
	}
	return abs
}

func (pr profiler) start(ctx context.Context, phase string) error {
	if pr.dir == "" {
		return nil
	}
	return pr.proc.post(ctx, "profile/cpu/start?file="+url.QueryEscape(pr.file(phase)), &struct{}{})
}

func (pr profiler) stop(ctx context.Context) error {
	if pr.dir == "" {
		return nil
	}
	return pr.proc.post(ctx, "profile/cpu/stop", &struct{}{})
}

func (pr profiler) heap(ctx context.Context, phase string) error {
	if pr.dir == "" {
		return nil
	}
	return pr.proc.post(ctx, "profile/heap?file="+url.QueryEscape(pr.file(phase)), &struct{}{})
}
