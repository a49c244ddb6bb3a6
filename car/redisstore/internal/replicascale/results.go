package replicascale

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Results is one run's figures. Units are in the names: _ms milliseconds,
// _bytes bytes, _seconds seconds.
type Results struct {
	Complete bool         `json:"complete"`
	Error    string       `json:"error,omitempty"`
	Config   configRecord `json:"config"`
	Machine  string       `json:"machine"`
	// LoadStart and LoadEnd are the load averages (1, 5, 15 min).
	LoadStart string  `json:"load_start"`
	LoadEnd   string  `json:"load_end"`
	Seconds   float64 `json:"seconds"`

	DialSeconds    float64 `json:"dial_seconds"`
	ConnectSeconds float64 `json:"connect_seconds"` // until every OnConnect

	Replicas             []replicaResult `json:"replicas"`
	RedisUsedBefore      int64           `json:"redis_used_memory_before_bytes"`
	RedisUsedAfter       int64           `json:"redis_used_memory_after_bytes"`
	RedisBytesPerSession float64         `json:"redis_bytes_per_session"`
	RedisKeys            int64           `json:"redis_keys"`
	// RedisCPUSeconds is redis-server's CPU time over the whole run;
	// RedisScripts its INFO commandstats lines of EVAL and EVALSHA.
	RedisCPUSeconds float64  `json:"redis_cpu_seconds"`
	RedisScripts    []string `json:"redis_scripts"`
	// MemoryReadAfterFirstIdle: connecting took so long that the memory
	// was read after the first idle crossing (the crossings then overlap
	// the reading; the figures stay valid).
	MemoryReadAfterFirstIdle bool `json:"memory_read_after_first_idle"`

	// IdleErrorMs: OnIdle − (the client's activity frame + threshold).
	IdleErrorMs dist `json:"idle_error_ms"`
	// IdleServerErrorMs: OnIdle − Event.At (the crossing by the
	// replica's own account).
	IdleServerErrorMs dist `json:"idle_server_error_ms"`
	IdleMissing       int  `json:"idle_missing"`

	Silenced int `json:"silenced"`
	// DisconnectMs: OnDisconnect − the silenced client's last frame.
	DisconnectMs dist `json:"disconnect_ms"`
	// DisconnectLateMs: OnDisconnect − (Event.LastSeen + ping timeout).
	DisconnectLateMs  dist           `json:"disconnect_late_ms"`
	DisconnectReasons map[string]int `json:"disconnect_reasons"`
	DisconnectMissing int            `json:"disconnect_missing"`
	// DisconnectsBeforeKills counts the healthy sessions whose connection
	// ended before the kills, by reason in DroppedReasons;
	// UnexpectedDisconnects those that ended during the kill phase.
	DisconnectsBeforeKills int            `json:"disconnects_before_kills"`
	DroppedReasons         map[string]int `json:"dropped_reasons"`
	// DisconnectCallbacksBeforeKills counts their OnDisconnect callbacks:
	// a session the store counted lost (its owner's refresh came too late)
	// gets one on the replica whose sweep found it.
	DisconnectCallbacksBeforeKills int `json:"disconnect_callbacks_before_kills"`
	// ClientConnectionsEnded counts the client connections that really
	// ended before the kills (their reader failed), as the clients saw it.
	ClientConnectionsEnded int64 `json:"client_connections_ended"`
	// Resumes counts OnResume on all replicas (a session counted lost and
	// then refreshed by its owner is resumed there).
	Resumes               int64 `json:"resumes"`
	UnexpectedDisconnects int   `json:"unexpected_disconnects"`
	// ReplicaLogs counts the replicas' log records (heartbeat server and
	// store) of level info and above, by message.
	ReplicaLogs map[string]int `json:"replica_logs"`
}

type replicaResult struct {
	Name                 string      `json:"name"`
	Sessions             int         `json:"sessions"`
	Before               memSnapshot `json:"before"`
	After                memSnapshot `json:"after"`
	RSSBytesPerSession   float64     `json:"rss_bytes_per_session"`
	GoBytesPerSession    float64     `json:"go_bytes_per_session"` // heap in use + stacks
	GoroutinesPerSession float64     `json:"goroutines_per_session"`
}

type configRecord struct {
	Mode            string  `json:"mode"`
	Sessions        int     `json:"sessions"`
	Replicas        int     `json:"replicas"`
	Clients         int     `json:"clients"`
	PingIntervalMs  float64 `json:"ping_interval_ms"`
	PingTimeoutMs   float64 `json:"ping_timeout_ms"`
	IdleThresholdMs float64 `json:"idle_threshold_ms"`
	GraceMs         float64 `json:"grace_ms"`
	DialRate        int     `json:"dial_rate"`
	KillFraction    float64 `json:"kill_fraction"`
}

func (c Config) record() configRecord {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return configRecord{
		Mode: c.Mode, Sessions: c.Sessions, Replicas: c.Replicas, Clients: c.Clients,
		PingIntervalMs: ms(c.PingInterval), PingTimeoutMs: ms(c.PingTimeout), IdleThresholdMs: ms(c.IdleThreshold), GraceMs: ms(c.Grace),
		DialRate: c.DialRate, KillFraction: c.KillFraction,
	}
}

// dist is a distribution in milliseconds (nearest-rank percentiles).
type dist struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func newDist(v []float64) dist {
	if len(v) == 0 {
		return dist{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return dist{N: len(s), Min: s[0], Mean: sum / float64(len(s)), P50: rank(0.5), P99: rank(0.99), Max: s[len(s)-1]}
}

func readMachine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s", cpu, runtime.NumCPU(), runtime.Version())
}

// WriteJSON writes the results to file.
func (r *Results) WriteJSON(file string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// Median returns the median over the replicas of f.
func (r *Results) Median(f func(replicaResult) float64) float64 {
	v := make([]float64, len(r.Replicas))
	for i, x := range r.Replicas {
		v[i] = f(x)
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

func spread(r *Results, f func(replicaResult) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range r.Replicas {
		lo, hi = min(lo, f(x)), max(hi, f(x))
	}
	return lo, hi
}

// Markdown renders the runs (of the same configuration) as the table of
// BENCHMARKS.md: one column per run.
func Markdown(runs []*Results, command string) string {
	var b strings.Builder
	if len(runs) == 0 {
		return ""
	}
	c := runs[0].Config
	rate := "as fast as they go"
	if c.DialRate > 0 {
		rate = fmt.Sprintf("at %d per second", c.DialRate)
	}
	fmt.Fprintf(&b, "%d sessions over %d replica processes (heartbeat server + Redis session store) and %d client processes, one redis-server, loopback; ping interval %.0f ms, ping timeout %.0f ms, idle threshold %.0f ms; sessions opened and connected %s; %.0f%% of them silenced at once. Command: `%s`.\n\n",
		c.Sessions, c.Replicas, c.Clients, c.PingIntervalMs, c.PingTimeoutMs, c.IdleThresholdMs, rate, 100*c.KillFraction, command)
	b.WriteString("| figure |")
	for i := range runs {
		fmt.Fprintf(&b, " run %d |", i+1)
	}
	b.WriteString("\n|---|")
	for range runs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	row := func(name string, f func(r *Results) string) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, r := range runs {
			fmt.Fprintf(&b, " %s |", f(r))
		}
		b.WriteString("\n")
	}
	perReplica := func(f func(replicaResult) float64, scale float64, prec int) func(r *Results) string {
		return func(r *Results) string {
			lo, hi := spread(r, f)
			return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, r.Median(f)/scale, prec, lo/scale, prec, hi/scale)
		}
	}
	row("load average at start / end", func(r *Results) string { return r.LoadStart + " / " + r.LoadEnd })
	row("sessions connected after, s", func(r *Results) string { return fmt.Sprintf("%.1f", r.ConnectSeconds) })
	row("replica RSS, KB/session (median of the replicas, range)", perReplica(func(x replicaResult) float64 { return x.RSSBytesPerSession }, 1000, 2))
	row("replica Go heap+stack, KB/session", perReplica(func(x replicaResult) float64 { return x.GoBytesPerSession }, 1000, 2))
	row("replica goroutines/session", perReplica(func(x replicaResult) float64 { return x.GoroutinesPerSession }, 1, 2))
	row("Redis used_memory, B/session", func(r *Results) string { return fmt.Sprintf("%.0f", r.RedisBytesPerSession) })
	row("Redis used_memory with every session, MB", func(r *Results) string { return fmt.Sprintf("%.1f", float64(r.RedisUsedAfter)/1e6) })
	row("redis-server CPU over the run, s", func(r *Results) string { return fmt.Sprintf("%.1f", r.RedisCPUSeconds) })
	row("silenced sessions", func(r *Results) string { return fmt.Sprintf("%d", r.Silenced) })
	row("last frame → OnDisconnect p50, ms", func(r *Results) string { return fmt.Sprintf("%.0f", r.DisconnectMs.P50) })
	row("last frame → OnDisconnect p99, ms", func(r *Results) string { return fmt.Sprintf("%.0f", r.DisconnectMs.P99) })
	row("last frame → OnDisconnect max, ms", func(r *Results) string { return fmt.Sprintf("%.0f", r.DisconnectMs.Max) })
	row("idle callback error p50, ms", func(r *Results) string { return fmt.Sprintf("%.1f", r.IdleErrorMs.P50) })
	row("idle callback error p99, ms", func(r *Results) string { return fmt.Sprintf("%.1f", r.IdleErrorMs.P99) })
	row("idle callback error max, ms", func(r *Results) string { return fmt.Sprintf("%.1f", r.IdleErrorMs.Max) })
	row("idle error by the replica's own account (OnIdle − Event.At) p99, ms", func(r *Results) string { return fmt.Sprintf("%.1f", r.IdleServerErrorMs.P99) })
	row("idle callbacks missing", func(r *Results) string { return fmt.Sprintf("%d", r.IdleMissing) })
	row("silenced sessions not detected", func(r *Results) string { return fmt.Sprintf("%d", r.DisconnectMissing) })
	row("healthy sessions with an OnDisconnect before the kills (reasons)", func(r *Results) string {
		return fmt.Sprintf("%d%s", r.DisconnectsBeforeKills, reasonList(r.DroppedReasons))
	})
	row("of which connections really ended (client side)", func(r *Results) string { return fmt.Sprintf("%d", r.ClientConnectionsEnded) })
	row("OnResume (sessions counted lost, then refreshed by their owner)", func(r *Results) string { return fmt.Sprintf("%d", r.Resumes) })
	row("healthy sessions dropped during the kills", func(r *Results) string { return fmt.Sprintf("%d", r.UnexpectedDisconnects) })
	row("replica log records, info and above (messages)", func(r *Results) string {
		n := 0
		for _, v := range r.ReplicaLogs {
			n += v
		}
		return fmt.Sprintf("%d%s", n, reasonList(r.ReplicaLogs))
	})
	row("memory read after the first idle crossing", func(r *Results) string {
		if r.MemoryReadAfterFirstIdle {
			return "yes"
		}
		return "no"
	})
	return b.String()
}

// reasonList renders counts by reason as " (reason: n, …)", most first.
func reasonList(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(m[b]-m[a], strings.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", strings.ReplaceAll(k, "|", "/"), m[k])
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
