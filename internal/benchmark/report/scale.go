package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// scaleResults is what the report reads of hbscale's results file (schema
// hbscale/v1, documented in internal/benchmark/hbscale).
type scaleResults struct {
	Schema string `json:"schema"`
	Config struct {
		Runs            int     `json:"runs"`
		PingIntervalMs  float64 `json:"ping_interval_ms"`
		PingTimeoutMs   float64 `json:"ping_timeout_ms"`
		IdleThresholdMs float64 `json:"idle_threshold_ms"`
		CPUWindowMs     float64 `json:"cpu_window_ms"`
		KillFraction    float64 `json:"kill_fraction"`
	} `json:"config"`
	Summary []struct {
		Sessions int             `json:"sessions"`
		Runs     int             `json:"runs"`
		Figures  map[string]stat `json:"figures"`
	} `json:"summary"`
	Targets []struct {
		Target     string  `json:"target"`
		Sessions   int     `json:"sessions"`
		Limit      float64 `json:"limit"`
		Median     float64 `json:"median"`
		Worst      float64 `json:"worst"`
		Met        bool    `json:"met"`
		MetAllRuns bool    `json:"met_all_runs"`
	} `json:"targets"`
	Complete bool   `json:"complete"`
	Error    string `json:"error"`
}

func readScale(path string) (*scaleResults, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s scaleResults
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Schema != "hbscale/v1" {
		return nil, fmt.Errorf("%s: schema %q, want hbscale/v1", path, s.Schema)
	}
	if !s.Complete {
		return nil, fmt.Errorf("%s: the run did not complete: %s", path, s.Error)
	}
	return &s, nil
}

func (r *report) heartbeat(s samples, scale *scaleResults) {
	r.p("## Heartbeat server")
	r.p("")
	if st, ok := s.get("IdleSessionMemory", "B/session"); ok {
		heap, _ := s.get("IdleSessionMemory", "heap-B/session")
		stack, _ := s.get("IdleSessionMemory", "stack-B/session")
		n, _ := s.get("IdleSessionMemory", "sessions")
		r.p("`BenchmarkIdleSessionMemory` (heartbeat): %.0f idle sessions, clients in a child process, Go-accounted memory per session.", n.Median)
		r.p("")
		r.p("| heap+stack B/session | heap B/session | stack B/session | runs |")
		r.p("|---|---|---|---|")
		r.p("| %s | %s | %s | %d |", fmtStat(st, 1, 0), fmtStat(heap, 1, 0), fmtStat(stack, 1, 0), st.N)
		r.p("")
	}
	if scale == nil {
		r.p("The at-scale run (internal/benchmark/hbscale) was not part of this report.")
		r.p("")
		r.target("idle session memory at 15,000 sessions", "≤ 12 KB", "—", false, false)
		return
	}
	c := scale.Config
	r.p("At scale (`internal/benchmark/hbscale`): the server in one process, the clients in another, connecting from several 127.x source addresses; a fresh server for each of %d runs per size. Ping interval %.0f ms, ping timeout %.0f ms, idle threshold %.0f ms, CPU window %.0f ms; %.0f%% of the sessions killed silently (the client stops reading: no pong, TCP open) and as many with a reset.",
		c.Runs, c.PingIntervalMs, c.PingTimeoutMs, c.IdleThresholdMs, c.CPUWindowMs, c.KillFraction*100)
	r.p("")
	rows := []struct {
		key, label string
		div        float64
		prec       int
	}{
		{"mem_go_bytes_per_session", "Go heap+stack, KB/session", 1000, 2},
		{"sys_bytes_per_session", "Go Sys, KB/session", 1000, 2},
		{"rss_bytes_per_session", "RSS, KB/session", 1000, 2},
		{"goroutines_per_session", "goroutines/session", 1, 2},
		{"cpu_us_per_heartbeat", "server CPU, µs/heartbeat", 1, 1},
		{"heartbeats_per_second", "heartbeats/s", 1, 0},
		{"disconnect_silent_ms.p50", "silent kill → OnDisconnect p50, ms", 1, 0},
		{"disconnect_silent_ms.p99", "silent kill → OnDisconnect p99, ms", 1, 0},
		{"disconnect_silent_ms.max", "silent kill → OnDisconnect max, ms", 1, 0},
		{"disconnect_reset_ms.p50", "reset → OnDisconnect p50, ms", 1, 1},
		{"disconnect_reset_ms.p99", "reset → OnDisconnect p99, ms", 1, 1},
		{"idle_error_ms.p50", "idle callback error p50, ms", 1, 2},
		{"idle_error_ms.p99", "idle callback error p99, ms", 1, 2},
		{"idle_error_ms.max", "idle callback error max, ms", 1, 2},
	}
	header, sep := "| figure |", "|---|"
	for _, sz := range scale.Summary {
		header += fmt.Sprintf(" %d sessions |", sz.Sessions)
		sep += "---|"
	}
	r.p("%s", header)
	r.p("%s", sep)
	for _, row := range rows {
		line := "| " + row.label + " |"
		for _, sz := range scale.Summary {
			st, ok := sz.Figures[row.key]
			if !ok {
				line += " — |"
				continue
			}
			line += " " + fmtStat(st, row.div, row.prec) + " |"
		}
		r.p("%s", line)
	}
	r.p("")
	for _, t := range scale.Targets {
		measured := fmt.Sprintf("%.0f (worst run %.0f)", t.Median, t.Worst)
		goal := fmt.Sprintf("≤ %.0f", t.Limit)
		r.target(fmt.Sprintf("%s [%d sessions]", t.Target, t.Sessions), goal, measured, t.Met, true)
	}
}
