package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/internal/onepunderrace"
)

// TestMain lets the orchestrator re-execute the test binary as the server
// process: it starts os.Executable() with -serve.
func TestMain(m *testing.M) {
	if slices.Contains(os.Args[1:], "-serve") {
		os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs the quick mode end to end (a server process, 200 sessions,
// every phase) and checks that the results file is complete and sane. It
// does not check the targets: that is the benchmark's job, not CI's.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process and 200 connections for about 10 s")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the harness reads /proc and dials from 127.0.0.2 and up, as on Linux")
	}
	if onepunderrace.Enabled {
		t.Skip("a real-time harness: the race detector slows its server process past the harness's own timings; the plain test run covers it")
	}
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout bytes.Buffer
	if code := realMain([]string{"-quick", "-out", out}, strings.NewReader(""), &stdout, t.Output()); code != 0 {
		t.Fatalf("exit code %d; summary:\n%s", code, stdout.String())
	}
	t.Logf("summary:\n%s", stdout.String())

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("results do not decode into the documented schema: %v", err)
	}

	if res.Schema != schemaVersion || !res.Complete || res.Error != "" {
		t.Errorf("schema %q complete %v error %q", res.Schema, res.Complete, res.Error)
	}
	m := res.Machine
	if m.CPUModel == "" || m.Cores <= 0 || m.GoVersion == "" || m.Date == "" || m.FDLimit == 0 {
		t.Errorf("machine block incomplete: %+v", m)
	}
	c := res.Config
	if !c.Quick || !slices.Equal(c.Sessions, []int{200}) || c.Runs != 1 || c.PingIntervalMs <= 0 || c.PingTimeoutMs <= c.PingIntervalMs || c.IdleThresholdMs <= 0 || c.CPUWindowMs <= 0 {
		t.Errorf("config: %+v", c)
	}
	if len(res.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(res.Runs))
	}
	r := res.Runs[0]
	n := r.Sessions
	positive := map[string]float64{
		"connect_seconds":                     r.ConnectSeconds,
		"mem_go_bytes_per_session":            r.MemGoBytesPerSession,
		"heap_inuse_bytes_per_session":        r.HeapInuseBytesPerSession,
		"heap_alloc_bytes_per_session":        r.HeapAllocBytesPerSession,
		"stack_bytes_per_session":             r.StackBytesPerSession,
		"mem_go_bytes_per_session_hello_only": r.MemGoBytesPerSessionHelloOnly,
		"mem_after.rss_bytes":                 float64(r.MemAfter.RSS),
		"mem_after.sys_bytes":                 float64(r.MemAfter.Sys),
		"cpu_window_seconds":                  r.CPUWindowSeconds,
		"heartbeats":                          float64(r.Heartbeats),
		"heartbeats_per_second":               r.HeartbeatsPerSecond,
		"cpu_seconds":                         r.CPUSeconds,
		"cpu_us_per_heartbeat":                r.CPUUsPerHeartbeat,
		"cpu_cores":                           r.CPUCores,
		"disconnect_silent_ms.p50":            r.DisconnectSilentMs.P50,
		"disconnect_reset_ms.max":             r.DisconnectResetMs.Max,
	}
	for name, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if r.MemAfter.Sessions != n || r.MemConnected.Sessions != n || r.MemBefore.Sessions != 0 {
		t.Errorf("sessions in the snapshots: before %d, connected %d, after %d", r.MemBefore.Sessions, r.MemConnected.Sessions, r.MemAfter.Sessions)
	}
	if g := r.GoroutinesPerSession; g < 0.9 || g > 1.1 {
		t.Errorf("goroutines_per_session = %v, want about 1", g)
	}
	// Every ping of the window answered: N × window / interval, within a
	// ping per session either side.
	want := float64(n) * c.CPUWindowMs / c.PingIntervalMs
	if h := float64(r.Heartbeats); h < want-float64(n) || h > want+float64(n) {
		t.Errorf("heartbeats = %v, want about %v", h, want)
	}
	if r.IdleErrorMs.N != n || r.IdleMissing != 0 || r.IdleErrorMs.Min < 0 || r.IdleErrorMs.Max < r.IdleErrorMs.P99 {
		t.Errorf("idle_error_ms = %+v, missing %d", r.IdleErrorMs, r.IdleMissing)
	}
	k := r.DisconnectSilentMs.N
	if k == 0 || r.DisconnectResetMs.N != k || r.SilentMissing != 0 || r.ResetMissing != 0 || r.UnexpectedDisconnects != 0 {
		t.Errorf("disconnects: silent %d, reset %d, missing %d/%d, unexpected %d",
			k, r.DisconnectResetMs.N, r.SilentMissing, r.ResetMissing, r.UnexpectedDisconnects)
	}
	if r.SilentReasons["ping timeout"] != k || r.ResetReasons["connection lost"] != k {
		t.Errorf("reasons: silent %v, reset %v", r.SilentReasons, r.ResetReasons)
	}
	// A silent client is detected a ping timeout after its last pong, which
	// is at most a ping interval before the kill.
	if d := r.DisconnectSilentMs; d.Min < c.PingTimeoutMs-c.PingIntervalMs-250 || d.Max > c.PingTimeoutMs+1000 {
		t.Errorf("disconnect_silent_ms = %+v, want within [timeout − interval, timeout + 1 s]", d)
	}
	if r.DisconnectSilentLateMs.N != k || r.DisconnectCallbackMs.N != 2*k {
		t.Errorf("late %+v, callback delay %+v", r.DisconnectSilentLateMs, r.DisconnectCallbackMs)
	}

	if len(res.Summary) != 1 || res.Summary[0].Sessions != n || res.Summary[0].Runs != 1 {
		t.Fatalf("summary: %+v", res.Summary)
	}
	for _, f := range summaryFigures() {
		if _, ok := res.Summary[0].Figures[f.key]; !ok {
			t.Errorf("summary lacks %s", f.key)
		}
	}
	if len(res.Targets) != 2 {
		t.Errorf("targets: %+v, want disconnect and idle checks", res.Targets)
	}
	if !strings.Contains(stdout.String(), "N = 200 sessions") {
		t.Errorf("summary printout lacks the N = 200 block")
	}
}

// BenchmarkScale is the heartbeat-at-scale run as a Go benchmark: each
// iteration is one run of the harness at N sessions (a fresh server
// process, N clients from this process over loopback, every phase), with
// the harness's default settings. .ci/bench runs the harness itself, five
// runs per N, for BENCHMARKS.md; this entry point gives the same figures
// to `go test -bench`:
//
//	go test -run '^$' -bench Scale -benchtime 3x ./internal/benchmark/hbscale
//
// With -short (CI's one-iteration pass) it runs 1,000 sessions only.
func BenchmarkScale(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("the harness reads /proc and dials from 127.0.0.2 and up, as on Linux")
	}
	for _, n := range []int{1000, 5000, 15000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			if testing.Short() && n > 1000 {
				// CI's one-iteration pass shares its 2 cores with nothing
				// but still connects 15,000 sessions slower than the
				// harness's idle threshold allows when the host is busy.
				b.Skip("-short: 1,000 sessions only; .ci/bench runs every size")
			}
			cfg, err := defaultConfig()
			if err != nil {
				b.Fatal(err)
			}
			o := &orchestrator{cfg: cfg, log: slog.New(slog.DiscardHandler), nextSrc: netip.MustParseAddr(cfg.firstSrc)}
			var runs []runResult
			for b.Loop() {
				r, err := o.runOne(b.Context(), n, len(runs)+1)
				if err != nil {
					b.Fatal(err)
				}
				runs = append(runs, r)
			}
			median := func(f func(runResult) float64) float64 {
				v := make([]float64, len(runs))
				for i, r := range runs {
					v[i] = f(r)
				}
				slices.Sort(v)
				return v[len(v)/2]
			}
			b.ReportMetric(median(func(r runResult) float64 { return r.RSSBytesPerSession }), "rss-B/session")
			b.ReportMetric(median(func(r runResult) float64 { return r.MemGoBytesPerSession }), "go-B/session")
			b.ReportMetric(median(func(r runResult) float64 { return r.CPUUsPerHeartbeat }), "cpu-µs/heartbeat")
			b.ReportMetric(median(func(r runResult) float64 { return r.DisconnectSilentMs.P99 }), "silent-detect-p99-ms")
			b.ReportMetric(median(func(r runResult) float64 { return r.DisconnectResetMs.P99 }), "reset-detect-p99-ms")
			b.ReportMetric(median(func(r runResult) float64 { return r.IdleErrorMs.P99 }), "idle-error-p99-ms")
		})
	}
}

// defaultConfig is the orchestrator's configuration from its flags'
// defaults and args.
func defaultConfig(args ...string) (orchestratorConfig, error) {
	fs := flag.NewFlagSet("hbscale", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var srv serverConfig
	srv.register(fs)
	var orc orchestratorConfig
	orc.register(fs)
	if err := fs.Parse(args); err != nil {
		return orc, err
	}
	orc.server, orc.stderr = srv, io.Discard
	return orc, orc.validate()
}

// -library-defaults runs the server at the heartbeat package's defaults,
// and an explicit flag still wins over it.
func TestLibraryDefaults(t *testing.T) {
	parse := func(args ...string) orchestratorConfig {
		t.Helper()
		fs := flag.NewFlagSet("hbscale", flag.ContinueOnError)
		var orc orchestratorConfig
		orc.server.register(fs)
		orc.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if orc.libDefaults {
			orc.applyLibraryDefaults(fs)
		}
		return orc
	}
	c := parse("-library-defaults")
	if s := c.server; s.pingInterval != heartbeat.DefaultPingInterval || s.pingTimeout != heartbeat.DefaultPingTimeout || s.grace != heartbeat.DefaultReconnectWindow {
		t.Fatalf("server %+v, want the heartbeat package's defaults", s)
	}
	if !c.record().LibraryDefaults {
		t.Fatal("the results' config does not say library_defaults")
	}
	c = parse("-library-defaults", "-ping-timeout", "40s")
	if s := c.server; s.pingTimeout != 40*time.Second || s.pingInterval != heartbeat.DefaultPingInterval {
		t.Fatalf("server %+v: the explicit -ping-timeout must win", s)
	}
	if s := parse().server; s.pingInterval == heartbeat.DefaultPingInterval && s.pingTimeout == heartbeat.DefaultPingTimeout {
		t.Fatalf("without -library-defaults the harness keeps its own timings, got %+v", s)
	}
}
