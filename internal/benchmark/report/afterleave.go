package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// leaveResults is what the report reads of the afterleave results file
// (schema afterleave/v1, written by internal/benchmark/afterleave's
// TestAfterLeave with -json).
type leaveResults struct {
	Schema  string             `json:"schema"`
	Users   int                `json:"users"`
	Seed    uint64             `json:"seed"`
	Welcome map[string]float64 `json:"heartbeat_welcome_ms"`
	CAR     struct {
		ReconnectWaitS float64 `json:"reconnect_wait_s"`
		CleanupS       float64 `json:"cleanup_s"`
	} `json:"car"`
	Cases []struct {
		Key   string     `json:"key"`
		Name  string     `json:"name"`
		SDK   leaveWorld `json:"sdk"`
		Alone leaveWorld `json:"car_alone"`
	} `json:"cases"`
	Failed bool `json:"test_failed"`
}

type leaveWorld struct {
	Users    int            `json:"users"`
	Held     *leaveDist     `json:"held_s"`
	Destroy  *leaveDist     `json:"destroy_s"`
	Resumed  *int           `json:"resumed"`
	Releases map[string]int `json:"releases"`
}

type leaveDist struct {
	P50, P99, Max, Mean float64
	N, Missing          int
}

func readLeave(path string) (*leaveResults, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l leaveResults
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if l.Schema != "afterleave/v1" {
		return nil, fmt.Errorf("%s: schema %q, want afterleave/v1", path, l.Schema)
	}
	return &l, nil
}

// leaveTargets are the targets: the sdk's held seconds over CAR
// alone's, at p50 and at p99.
var leaveTargets = map[string]float64{"clean": 0.2, "silent": 0.75}

func (r *report) afterLeave(l *leaveResults) {
	r.p("## Concurrency-seconds held after the user left")
	r.p("")
	if l == nil {
		r.p("The concurrency-seconds run (internal/benchmark/afterleave) was not part of this report.")
		r.p("")
		r.target("concurrency held after the user left", "—", "—", false, false)
		return
	}
	var timings []string
	keys := make([]string, 0, len(l.Welcome))
	for k := range l.Welcome {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		timings = append(timings, fmt.Sprintf("%s %.0f s", k, l.Welcome[k]/1000))
	}
	r.p("`TestAfterLeave` (internal/benchmark/afterleave): %d users per case, with jittered start, activity and leave times (seed %d), in a testing/synctest bubble: the CAR reference server, the SessionManager, its heartbeat endpoint and the clients on in-memory networks, on fake time, so the figures are those of the default timings, exactly. "+
		"Each case runs two worlds side by side, with the same users doing the same things at the same instants: **sdk**, a `car.SessionManager` at its defaults with `hbclient.Connect` clients at theirs; **CAR alone**, a backend that calls ApplyConcurrent and CreateSession and nothing else, so only CAR's reconnect wait (%.0f s) and cleanup (%.0f s) free the concurrency. "+
		"The heartbeat server announced: %s.", l.Users, l.Seed, l.CAR.ReconnectWaitS, l.CAR.CleanupS, strings.Join(timings, ", "))
	r.p("")
	r.p("**Held**: seconds from the user leaving to the concurrency idle again in CAR (what is billed). **DestroySession**: seconds from the user leaving to the manager's release. Silent vanish: the heartbeat connection stays open and goes silent both ways; CAR's own stream is taken to notice at once (its detection time is not documented; zero favours CAR alone). TCP cut: both connections are seen lost at once. Clean close: the heartbeat closed with 1000 (half the users) or 1001 (the other half), the CAR stream with a close frame. Reload: a clean close, and the page back 1–5 s later with its resume token and the same ServerSession.")
	r.p("")
	if l.Failed {
		r.p("**The test failed one of its assertions in this run** (see the targets below, and its output).")
		r.p("")
	}
	r.p("| case | world | held p50, s | held p99, s | held max, s | held mean, s | p50 / p99 vs CAR alone | DestroySession p50 / p99, s | resumed |")
	r.p("|---|---|---|---|---|---|---|---|---|")
	for _, c := range l.Cases {
		for _, w := range []struct {
			name string
			w    leaveWorld
		}{{"sdk", c.SDK}, {"CAR alone", c.Alone}} {
			held := [4]string{"—", "—", "—", "—"}
			ratio, destroy, resumed := "", "", ""
			if h := w.w.Held; h != nil && h.N > 0 {
				held = [4]string{fmt.Sprintf("%.1f", h.P50), fmt.Sprintf("%.1f", h.P99), fmt.Sprintf("%.1f", h.Max), fmt.Sprintf("%.1f", h.Mean)}
				if a := c.Alone.Held; w.name == "sdk" && a != nil && a.P50 > 0 && a.P99 > 0 {
					ratio = fmt.Sprintf("%.2f× / %.2f×", h.P50/a.P50, h.P99/a.P99)
				}
			}
			if d := w.w.Destroy; d != nil && d.N > 0 {
				destroy = fmt.Sprintf("%.1f / %.1f", d.P50, d.P99)
			}
			if w.w.Resumed != nil {
				resumed = fmt.Sprintf("%d of %d", *w.w.Resumed, w.w.Users)
			}
			r.p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", c.Name, w.name, held[0], held[1], held[2], held[3], ratio, destroy, resumed)
		}
	}
	r.p("")
	for _, c := range l.Cases {
		if goal, ok := leaveTargets[c.Key]; ok {
			s, a := c.SDK.Held, c.Alone.Held
			if s == nil || a == nil || s.N == 0 || a.N == 0 || a.P50 == 0 || a.P99 == 0 {
				r.target(c.Name+": held vs CAR alone", fmt.Sprintf("≤ %.2f×", goal), "—", false, false)
				continue
			}
			p50, p99 := s.P50/a.P50, s.P99/a.P99
			r.target(c.Name+": held vs CAR alone, p50 and p99", fmt.Sprintf("≤ %.2f×", goal),
				fmt.Sprintf("%.2f× / %.2f× (%.1f s / %.1f s against %.1f s / %.1f s)", p50, p99, s.P50, s.P99, a.P50, a.P99),
				s.Missing == 0 && p50 <= goal && p99 <= goal, true)
		}
		if c.Key == "reload" && c.SDK.Resumed != nil {
			n := *c.SDK.Resumed
			r.target("reload within the grace: same concurrency resumed", "100%", fmt.Sprintf("%d of %d (%.0f%%)", n, c.SDK.Users, 100*float64(n)/float64(max(1, c.SDK.Users))), n == c.SDK.Users, true)
		}
	}
}
