package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// defaultsTitle is the section of .ci/bench's part hbdefaults: the
// heartbeat at scale with the library's default timings beside the ones
// before them, interleaved.
const defaultsTitle = "## Heartbeat at the library's defaults"

// defaultsRun is one hbscale results file of the part hbdefaults: one
// run of one size, with the timings of one variant ("new": the
// library's defaults, -library-defaults; "old": the defaults before
// them).
type defaultsRun struct {
	variant string
	Schema  string `json:"schema"`
	Machine struct {
		Date        string `json:"date"`
		LoadAverage string `json:"load_average"`
	} `json:"machine"`
	Config struct {
		PingIntervalMs  float64 `json:"ping_interval_ms"`
		PingTimeoutMs   float64 `json:"ping_timeout_ms"`
		GraceMs         float64 `json:"grace_ms"`
		IdleThresholdMs float64 `json:"idle_threshold_ms"`
		CPUWindowMs     float64 `json:"cpu_window_ms"`
		LibraryDefaults bool    `json:"library_defaults"`
	} `json:"config"`
	Runs []struct {
		Sessions             int     `json:"sessions"`
		ConnectSeconds       float64 `json:"connect_seconds"`
		HeartbeatsPerSecond  float64 `json:"heartbeats_per_second"`
		CPUCores             float64 `json:"cpu_cores"`
		CPUUsPerHeartbeat    float64 `json:"cpu_us_per_heartbeat"`
		RSSBytesPerSession   float64 `json:"rss_bytes_per_session"`
		MemGoBytesPerSession float64 `json:"mem_go_bytes_per_session"`
		DisconnectSilentMs   struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"disconnect_silent_ms"`
		IdleErrorMs struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"idle_error_ms"`
	} `json:"runs"`
	Complete bool   `json:"complete"`
	Error    string `json:"error"`
}

// defaultsResults are the part's runs in the order they ran, and their
// rounds: round k is the k-th run of each variant.
type defaultsResults struct {
	order    []*defaultsRun
	new, old []*defaultsRun
}

// readDefaults reads the part's results files, each given as
// "new=FILE" or "old=FILE", in the order they ran.
func readDefaults(specs []string) (*defaultsResults, error) {
	d := &defaultsResults{}
	for _, spec := range specs {
		variant, path, ok := strings.Cut(spec, "=")
		if !ok || (variant != "new" && variant != "old") {
			return nil, fmt.Errorf("-hbdefaults %q: want new=FILE or old=FILE", spec)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		run := &defaultsRun{variant: variant}
		if err := json.Unmarshal(b, run); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch {
		case run.Schema != "hbscale/v1":
			return nil, fmt.Errorf("%s: schema %q, want hbscale/v1", path, run.Schema)
		case !run.Complete:
			return nil, fmt.Errorf("%s: the run did not complete: %s", path, run.Error)
		case len(run.Runs) != 1:
			return nil, fmt.Errorf("%s: %d runs, want one (-runs 1 and one -sessions count)", path, len(run.Runs))
		}
		if len(d.order) > 0 && run.Runs[0].Sessions != d.order[0].Runs[0].Sessions {
			return nil, fmt.Errorf("%s: %d sessions, but %d in %s's run", path, run.Runs[0].Sessions, d.order[0].Runs[0].Sessions, d.order[0].variant)
		}
		d.order = append(d.order, run)
		if variant == "new" {
			d.new = append(d.new, run)
		} else {
			d.old = append(d.old, run)
		}
	}
	if len(d.new) == 0 || len(d.new) != len(d.old) {
		return nil, fmt.Errorf("-hbdefaults: %d new and %d old runs; want as many of each, at least one", len(d.new), len(d.old))
	}
	return d, nil
}

// defaultsRows are the figures of the part's table.
var defaultsRows = []struct {
	label string
	prec  int
	get   func(*defaultsRun) float64
}{
	{"heartbeats/s", 0, func(r *defaultsRun) float64 { return r.Runs[0].HeartbeatsPerSecond }},
	{"server CPU over the window, cores", 3, func(r *defaultsRun) float64 { return r.Runs[0].CPUCores }},
	{"server CPU, µs/heartbeat", 1, func(r *defaultsRun) float64 { return r.Runs[0].CPUUsPerHeartbeat }},
	{"RSS, KB/session", 2, func(r *defaultsRun) float64 { return r.Runs[0].RSSBytesPerSession / 1000 }},
	{"Go heap+stack, KB/session", 2, func(r *defaultsRun) float64 { return r.Runs[0].MemGoBytesPerSession / 1000 }},
	{"silent kill → OnDisconnect p50, ms", 0, func(r *defaultsRun) float64 { return r.Runs[0].DisconnectSilentMs.P50 }},
	{"silent kill → OnDisconnect p99, ms", 0, func(r *defaultsRun) float64 { return r.Runs[0].DisconnectSilentMs.P99 }},
	{"idle callback error p50, ms", 1, func(r *defaultsRun) float64 { return r.Runs[0].IdleErrorMs.P50 }},
	{"idle callback error p99, ms", 1, func(r *defaultsRun) float64 { return r.Runs[0].IdleErrorMs.P99 }},
}

// timings names a run's ping interval, ping timeout and grace: "10 s / 30 s, 60 s grace".
func timings(r *defaultsRun) string {
	c := r.Config
	return fmt.Sprintf("%s / %s, %s grace", seconds(c.PingIntervalMs), seconds(c.PingTimeoutMs), seconds(c.GraceMs))
}

// seconds prints milliseconds as seconds: "90 s", "2.5 s".
func seconds(ms float64) string { return fmt.Sprintf("%g s", ms/1000) }

// atLibraryDefaults says how a "new" run's timings differ from the
// heartbeat package's defaults ("" when they do not).
func atLibraryDefaults(r *defaultsRun) string {
	var diff []string
	check := func(what, constant string, gotMs float64, want time.Duration) {
		if wantMs := float64(want) / float64(time.Millisecond); gotMs != wantMs {
			diff = append(diff, fmt.Sprintf("a %s of %s, not heartbeat.%s (%s)", what, seconds(gotMs), constant, seconds(wantMs)))
		}
	}
	check("ping interval", "DefaultPingInterval", r.Config.PingIntervalMs, heartbeat.DefaultPingInterval)
	check("ping timeout", "DefaultPingTimeout", r.Config.PingTimeoutMs, heartbeat.DefaultPingTimeout)
	check("grace", "DefaultReconnectWindow", r.Config.GraceMs, heartbeat.DefaultReconnectWindow)
	return strings.Join(diff, "; ")
}

// fmtDiff prints new − old with prec decimals and, where old is not 0,
// the change relative to old.
func fmtDiff(nv, ov float64, prec int) string {
	f := "%+." + fmt.Sprint(prec) + "f"
	s := fmt.Sprintf(f, nv-ov)
	if ov != 0 {
		s += fmt.Sprintf(" (%+.0f%%)", (nv-ov)/math.Abs(ov)*100)
	}
	return s
}

func (r *report) heartbeatDefaults(d *defaultsResults) {
	r.p("%s", defaultsTitle)
	r.p("")
	if d == nil {
		r.p("The heartbeat at the library's defaults beside the old ones (`.ci/bench` part hbdefaults) was not part of this run.")
		r.p("")
		return
	}
	n, o := d.new[0], d.old[0]
	sessions := n.Runs[0].Sessions
	r.p("The cost of the heartbeat's default timings (issue 10 §3): the heartbeat-at-scale harness (`internal/benchmark/hbscale`) at %s sessions, with the library's defaults (`-library-defaults`: `heartbeat.DefaultPingInterval`, `DefaultPingTimeout` and `DefaultReconnectWindow` as the grace; %s) beside the defaults before them (%s). Every run is a fresh orchestrator and server process measuring one set of sessions; the variants are interleaved, one run of each per round, the new first in odd rounds and the old first in even ones. Idle threshold %s, CPU window %s, the rest at the harness's own values.",
		thousands(sessions), timings(n), timings(o), seconds(n.Config.IdleThresholdMs), seconds(n.Config.CPUWindowMs))
	r.p("")
	var seq []string
	for _, run := range d.order {
		at := run.Machine.Date
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			at = t.UTC().Format("15:04:05") + " UTC"
		}
		s := fmt.Sprintf("%s (%s", run.variant, at)
		if run.Machine.LoadAverage != "" {
			s += ", load " + run.Machine.LoadAverage
		}
		seq = append(seq, s+")")
	}
	r.p("Runs, in order: %s.", strings.Join(seq, ", "))
	for _, run := range d.new {
		if diff := atLibraryDefaults(run); diff != "" {
			r.p("")
			r.p("**Not at the library's defaults**: a new run had %s (HBDEFAULTS_FLAGS?).", diff)
			break
		}
	}
	r.p("")
	rounds := make([]string, len(d.new))
	for i := range rounds {
		rounds[i] = fmt.Sprintf("round %d", i+1)
	}
	rs := strings.Join(rounds, ", ")
	r.p("The heartbeat at the library's defaults beside the old ones, %s sessions:", thousands(sessions))
	r.p("")
	r.p("| figure, %s sessions | new (%s): %s | old (%s): %s | new − old: %s |", thousands(sessions), timings(n), rs, timings(o), rs, rs)
	r.p("|---|---|---|---|")
	for _, row := range defaultsRows {
		f := "%." + fmt.Sprint(row.prec) + "f"
		var nv, ov, dv []string
		for i := range d.new {
			a, b := row.get(d.new[i]), row.get(d.old[i])
			nv = append(nv, fmt.Sprintf(f, a))
			ov = append(ov, fmt.Sprintf(f, b))
			dv = append(dv, fmtDiff(a, b, row.prec))
		}
		r.p("| %s | %s | %s | %s |", row.label, strings.Join(nv, ", "), strings.Join(ov, ", "), strings.Join(dv, ", "))
	}
	r.p("")
}

// thousands prints n with a comma between thousands: 15,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
