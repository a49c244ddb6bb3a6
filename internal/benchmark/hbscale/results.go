package main

// The results file (schema in doc.go), its statistics and the summary.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// schemaVersion names the layout of the results file. Bump it on any
// incompatible change.
const schemaVersion = "hbscale/v1"

// Targets of the benchmark issue.
const (
	targetMemBytes       = 12000 // bytes of server memory per idle session, at 15,000 sessions
	targetDetectSlack    = 250 * time.Millisecond
	targetIdleErrorMs    = 50.0
	targetMemoryAtSizeOf = 15000
)

// results is the whole results file.
type results struct {
	Schema  string        `json:"schema"`
	Machine machine       `json:"machine"`
	Config  configRecord  `json:"config"`
	Runs    []runResult   `json:"runs"`
	Summary []sizeSummary `json:"summary"`
	Targets []targetCheck `json:"targets"`
	// Complete is false when the run stopped early (an error or a signal);
	// Error then says why.
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
}

type machine struct {
	CPUModel    string `json:"cpu_model"`
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memory_bytes"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"go_version"`
	GOOS        string `json:"goos"`
	GOARCH      string `json:"goarch"`
	FDLimit     uint64 `json:"fd_limit"`
	Date        string `json:"date"` // RFC 3339, UTC, when the run started
	// LoadAverage is /proc/loadavg's first three fields at the start.
	LoadAverage string `json:"load_average"`
}

type configRecord struct {
	Sessions          []int   `json:"sessions"`
	Runs              int     `json:"runs"`
	Quick             bool    `json:"quick"`
	LibraryDefaults   bool    `json:"library_defaults"`
	PingIntervalMs    float64 `json:"ping_interval_ms"`
	PingTimeoutMs     float64 `json:"ping_timeout_ms"`
	IdleThresholdMs   float64 `json:"idle_threshold_ms"`
	GraceMs           float64 `json:"grace_ms"`
	IdleSpreadMs      float64 `json:"idle_spread_ms"`
	SettleMs          float64 `json:"settle_ms"`
	CPUWindowMs       float64 `json:"cpu_window_ms"`
	KillFraction      float64 `json:"kill_fraction"`
	KillMin           int     `json:"kill_min"`
	DialParallelism   int     `json:"dial_parallelism"`
	SessionsPerSource int     `json:"sessions_per_source_addr"`
	Profiling         bool    `json:"profiling"`
}

// dist is a distribution in milliseconds. Percentiles are nearest-rank.
type dist struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func newDist(ms []float64) dist {
	if len(ms) == 0 {
		return dist{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return dist{N: len(s), Min: s[0], Mean: sum / float64(len(s)), P50: rank(50), P90: rank(90), P99: rank(99), Max: s[len(s)-1]}
}

// runResult is one (N, run).
type runResult struct {
	Sessions       int      `json:"sessions"`
	Run            int      `json:"run"` // 1-based
	SourceAddrs    []string `json:"source_addrs"`
	ConnectSeconds float64  `json:"connect_seconds"`

	// Phase 1: memory per idle session, (after − before) / sessions.
	MemBefore                 memSnapshot `json:"mem_before"`
	MemConnected              memSnapshot `json:"mem_connected"` // hello only, before any activity frame
	MemAfter                  memSnapshot `json:"mem_after"`
	MemGoBytesPerSession      float64     `json:"mem_go_bytes_per_session"` // HeapInuse + StackInuse
	HeapInuseBytesPerSession  float64     `json:"heap_inuse_bytes_per_session"`
	HeapAllocBytesPerSession  float64     `json:"heap_alloc_bytes_per_session"`
	StackBytesPerSession      float64     `json:"stack_bytes_per_session"`
	SysBytesPerSession        float64     `json:"sys_bytes_per_session"`
	RSSBytesPerSession        float64     `json:"rss_bytes_per_session"`
	RSSAfterGCBytesPerSession float64     `json:"rss_after_gc_bytes_per_session"`
	GoroutinesPerSession      float64     `json:"goroutines_per_session"`
	// The same two figures from mem_connected: sessions that have only
	// said hello (as heartbeat's own BenchmarkIdleSessionMemory measures).
	MemGoBytesPerSessionHelloOnly float64 `json:"mem_go_bytes_per_session_hello_only"`
	RSSBytesPerSessionHelloOnly   float64 `json:"rss_bytes_per_session_hello_only"`

	// Phase 2: CPU per heartbeat.
	CPUWindowSeconds         float64 `json:"cpu_window_seconds"`
	Heartbeats               int64   `json:"heartbeats"`
	HeartbeatsPerSecond      float64 `json:"heartbeats_per_second"`
	CPUSeconds               float64 `json:"cpu_seconds"`
	CPUUsPerHeartbeat        float64 `json:"cpu_us_per_heartbeat"`
	CPUCores                 float64 `json:"cpu_cores"` // server CPU seconds per second
	LoadgenCPUUsPerHeartbeat float64 `json:"loadgen_cpu_us_per_heartbeat"`

	// Phase 3: idle callbacks.
	IdleErrorMs dist `json:"idle_error_ms"`
	IdleMissing int  `json:"idle_missing"`

	// Phase 4: disconnect detection.
	DisconnectSilentMs     dist           `json:"disconnect_silent_ms"`
	DisconnectSilentLateMs dist           `json:"disconnect_silent_late_ms"`
	DisconnectResetMs      dist           `json:"disconnect_reset_ms"`
	DisconnectCallbackMs   dist           `json:"disconnect_callback_delay_ms"`
	SilentReasons          map[string]int `json:"silent_reasons"`
	ResetReasons           map[string]int `json:"reset_reasons"`
	SilentMissing          int            `json:"silent_missing"`
	ResetMissing           int            `json:"reset_missing"`
	UnexpectedDisconnects  int            `json:"unexpected_disconnects"`
}

// stat is the median and range of one figure over the runs of one size.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func newStat(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

type sizeSummary struct {
	Sessions int             `json:"sessions"`
	Runs     int             `json:"runs"`
	Figures  map[string]stat `json:"figures"`
}

// figure is one summarized figure: its key in sizeSummary.Figures, its label
// and unit in the printed summary, and how to get it from a run.
type figure struct {
	key, label string
	get        func(*runResult) float64
}

// summaryFigures lists the figures of the summary, in order.
func summaryFigures() []figure {
	return []figure{
		{"connect_seconds", "connect all, s", func(r *runResult) float64 { return r.ConnectSeconds }},
		{"mem_go_bytes_per_session", "Go heap+stack, B/session", func(r *runResult) float64 { return r.MemGoBytesPerSession }},
		{"heap_inuse_bytes_per_session", "  heap in use, B/session", func(r *runResult) float64 { return r.HeapInuseBytesPerSession }},
		{"stack_bytes_per_session", "  stacks, B/session", func(r *runResult) float64 { return r.StackBytesPerSession }},
		{"sys_bytes_per_session", "Sys, B/session", func(r *runResult) float64 { return r.SysBytesPerSession }},
		{"rss_bytes_per_session", "RSS, B/session", func(r *runResult) float64 { return r.RSSBytesPerSession }},
		{"rss_after_gc_bytes_per_session", "RSS before scavenge, B/session", func(r *runResult) float64 { return r.RSSAfterGCBytesPerSession }},
		{"mem_go_bytes_per_session_hello_only", "Go heap+stack, hello only, B/session", func(r *runResult) float64 { return r.MemGoBytesPerSessionHelloOnly }},
		{"rss_bytes_per_session_hello_only", "RSS, hello only, B/session", func(r *runResult) float64 { return r.RSSBytesPerSessionHelloOnly }},
		{"goroutines_per_session", "goroutines/session", func(r *runResult) float64 { return r.GoroutinesPerSession }},
		{"cpu_us_per_heartbeat", "server CPU, µs/heartbeat", func(r *runResult) float64 { return r.CPUUsPerHeartbeat }},
		{"cpu_cores", "server CPU, cores", func(r *runResult) float64 { return r.CPUCores }},
		{"heartbeats_per_second", "heartbeats/s", func(r *runResult) float64 { return r.HeartbeatsPerSecond }},
		{"idle_error_ms.p50", "idle error p50, ms", func(r *runResult) float64 { return r.IdleErrorMs.P50 }},
		{"idle_error_ms.p99", "idle error p99, ms", func(r *runResult) float64 { return r.IdleErrorMs.P99 }},
		{"idle_error_ms.max", "idle error max, ms", func(r *runResult) float64 { return r.IdleErrorMs.Max }},
		{"disconnect_silent_ms.p50", "silent kill → OnDisconnect p50, ms", func(r *runResult) float64 { return r.DisconnectSilentMs.P50 }},
		{"disconnect_silent_ms.p99", "silent kill → OnDisconnect p99, ms", func(r *runResult) float64 { return r.DisconnectSilentMs.P99 }},
		{"disconnect_silent_ms.max", "silent kill → OnDisconnect max, ms", func(r *runResult) float64 { return r.DisconnectSilentMs.Max }},
		{"disconnect_silent_late_ms.p99", "  past last frame + timeout p99, ms", func(r *runResult) float64 { return r.DisconnectSilentLateMs.P99 }},
		{"disconnect_reset_ms.p50", "RST → OnDisconnect p50, ms", func(r *runResult) float64 { return r.DisconnectResetMs.P50 }},
		{"disconnect_reset_ms.p99", "RST → OnDisconnect p99, ms", func(r *runResult) float64 { return r.DisconnectResetMs.P99 }},
		{"disconnect_reset_ms.max", "RST → OnDisconnect max, ms", func(r *runResult) float64 { return r.DisconnectResetMs.Max }},
	}
}

// targetCheck is one target of the issue checked at one size: against the
// median over the runs (Met) and against every run (MetAllRuns).
type targetCheck struct {
	Target     string  `json:"target"`
	Sessions   int     `json:"sessions"`
	Figure     string  `json:"figure"` // key in sizeSummary.Figures
	Limit      float64 `json:"limit"`
	Median     float64 `json:"median"`
	Worst      float64 `json:"worst"`
	Met        bool    `json:"met"`
	MetAllRuns bool    `json:"met_all_runs"`
}

// summarize fills r.Summary and r.Targets from r.Runs.
func (r *results) summarize() {
	r.Summary, r.Targets = []sizeSummary{}, []targetCheck{}
	for _, n := range r.Config.Sessions {
		var runs []*runResult
		for i := range r.Runs {
			if r.Runs[i].Sessions == n {
				runs = append(runs, &r.Runs[i])
			}
		}
		if len(runs) == 0 {
			continue
		}
		s := sizeSummary{Sessions: n, Runs: len(runs), Figures: make(map[string]stat)}
		for _, f := range summaryFigures() {
			v := make([]float64, len(runs))
			for i, run := range runs {
				v[i] = f.get(run)
			}
			s.Figures[f.key] = newStat(v)
		}
		r.Summary = append(r.Summary, s)

		check := func(target, key string, limit float64) {
			st := s.Figures[key]
			r.Targets = append(r.Targets, targetCheck{
				Target: target, Sessions: n, Figure: key, Limit: limit,
				Median: st.Median, Worst: st.Max, Met: st.Median <= limit, MetAllRuns: st.Max <= limit,
			})
		}
		if n == targetMemoryAtSizeOf {
			check("idle session memory (RSS) ≤ 12 KB at 15,000 sessions", "rss_bytes_per_session", targetMemBytes)
		}
		check("disconnect detection p99 ≤ ping timeout + 250 ms", "disconnect_silent_ms.p99", durationMs(time.Duration(r.Config.PingTimeoutMs*float64(time.Millisecond))+targetDetectSlack))
		check("idle callback error p99 ≤ 50 ms", "idle_error_ms.p99", targetIdleErrorMs)
	}
}

func writeResults(path string, r *results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// printSummary prints the median and range of the main figures per size,
// and the targets.
func printSummary(w io.Writer, r *results) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "hbscale: %s, %d cores, %s, %s\n", r.Machine.CPUModel, r.Machine.Cores, r.Machine.GoVersion, r.Machine.Date)
	fmt.Fprintf(bw, "ping interval %s, ping timeout %s, idle threshold %s (activity spread over %s), CPU window %s\n",
		msString(r.Config.PingIntervalMs), msString(r.Config.PingTimeoutMs), msString(r.Config.IdleThresholdMs),
		msString(r.Config.IdleSpreadMs), msString(r.Config.CPUWindowMs))
	for _, s := range r.Summary {
		fmt.Fprintf(bw, "\nN = %d sessions, %d run(s): median (min – max)\n", s.Sessions, s.Runs)
		for _, f := range summaryFigures() {
			st := s.Figures[f.key]
			fmt.Fprintf(bw, "  %-38s %s\n", f.label, fmtStat(st))
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintf(bw, "\ntargets (median over runs; worst run):\n")
		for _, t := range r.Targets {
			mark := "met"
			if !t.Met {
				mark = "MISSED"
			} else if !t.MetAllRuns {
				mark = "met (missed in some runs)"
			}
			fmt.Fprintf(bw, "  N=%-6d %-55s %s (worst %s, limit %s): %s\n", t.Sessions, t.Target, fmtNum(t.Median), fmtNum(t.Worst), fmtNum(t.Limit), mark)
		}
	}
	if !r.Complete {
		fmt.Fprintf(bw, "\nINCOMPLETE: %s\n", r.Error)
	}
}

func fmtStat(s stat) string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 || s.Min == s.Max {
		return fmtNum(s.Median)
	}
	return fmt.Sprintf("%s (%s – %s)", fmtNum(s.Median), fmtNum(s.Min), fmtNum(s.Max))
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func msString(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).String()
}

// readMachine describes this machine.
func readMachine(start time.Time) machine {
	m := machine{
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		Date:      start.UTC().Format(time.RFC3339),
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseUint(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemoryBytes = kb << 10
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAverage = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.FDLimit, _ = childproc.FDLimit()
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "" if there is none.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
