package main

import (
	"fmt"
	"math"
)

// queue renders BenchmarkQueue (car): a SessionManager's queue of n users
// on a pack of 10, drained one release at a time, with the floor of the
// API calls each admission needs measured in the same run.
func (r *report) queue(s samples) {
	sizes := []int{250, 1000}
	name := func(n int, short bool) string {
		if short {
			return fmt.Sprintf("Queue/queued=%d/interval=1ms", n)
		}
		return fmt.Sprintf("Queue/queued=%d", n)
	}
	if _, ok := s[name(1000, false)]; !ok {
		r.p("## The queue")
		r.p("")
		r.p("BenchmarkQueue (car) was not part of this run.")
		r.p("")
		r.target("queue: release → ready p99 vs its calls' floor p99 [1,000 queued]", "≤ 1.50×", "—", false, false)
		return
	}
	r.p("## The queue")
	r.p("")
	r.p("`BenchmarkQueue` (car): a `SessionManager` with n users queued on a pack of 10 (cartest on loopback, no rate limits, no cleanup delay), drained one release at a time: each round Stops an active user and times release → the head's `Lease.Wait` returning (**ready**); then the **floor** of the calls that needs (DestroySession, ApplyConcurrent, CreateSession, one after the other with the same client, on a pack of its own) is timed in the same process. One run is one drain of the whole queue; runs are interleaved with the other benchmarks, one per round, each in its own process, so each ratio below is taken within a run. Position notices: with the default 1 s interval a drain here is about as long as the interval, so the `interval=1ms` runs (every change due at once) show what bounds notices per admission. Join CPU is the process's CPU time (getrusage) for the n joins.")
	r.p("")
	r.p("| queued | notice interval | ready p50, ms | ready p99, ms | floor p50, ms | floor p99, ms | ready p99 ÷ floor p99 | ready p50 ÷ floor p50 | notices/admission | all notices/admission | join CPU, ms | inversions | runs |")
	r.p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	inversions := 0.0
	for _, n := range sizes {
		for _, short := range []bool{false, true} {
			bm := name(n, short)
			if _, ok := s[bm]; !ok {
				continue
			}
			get := func(unit string) stat { st, _ := s.get(bm, unit); return st }
			p99 := get("ready-p99/floor-p99") // each run's own ratio
			p50 := summarize(s.unitRatios(bm, "ready-p50-ms", "floor-p50-ms"))
			inv := get("inversions")
			inversions = math.Max(inversions, inv.Max)
			interval := "1 s (default)"
			if short {
				interval = "1 ms"
			}
			r.p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |", n, interval,
				fmtStat(get("ready-p50-ms"), 1, 2), fmtStat(get("ready-p99-ms"), 1, 2), fmtStat(get("floor-p50-ms"), 1, 2), fmtStat(get("floor-p99-ms"), 1, 2),
				fmtRatio(p99), fmtRatio(p50), fmtStat(get("notices/admission"), 1, 2), fmtStat(get("total-notices/admission"), 1, 2),
				fmtStat(get("join-cpu-ms"), 1, 1), fmtStat(inv, 1, 0), p99.N)
		}
	}
	r.p("")
	big := name(1000, false)
	rv := values(s, big, "ready-p99/floor-p99")
	st := summarize(rv)
	r.target("queue: release → ready p99 vs its calls' floor p99 [1,000 queued]", "≤ 1.50×",
		fmt.Sprintf("%s; %d of %d runs ≤ 1.50×", fmtRatio(st), count(rv, func(x float64) bool { return x <= 1.5 }), len(rv)), st.Median <= 1.5, true)
	small, okS := s.get(name(250, true), "notices/admission")
	large, okL := s.get(name(1000, true), "notices/admission")
	if okS && okL {
		r.target("queue: position notices per admission do not grow with the queue [1 ms interval]", "1,000 queued ≤ 250 queued (+10%)",
			fmt.Sprintf("%s at 1,000; %s at 250", fmtStat(large, 1, 2), fmtStat(small, 1, 2)), large.Median <= small.Median*1.1+0.01, true)
	} else {
		r.target("queue: position notices per admission do not grow with the queue [1 ms interval]", "1,000 queued ≤ 250 queued (+10%)", "—", false, false)
	}
	cpu, _ := s.get(big, "join-cpu-ms")
	r.target("queue: CPU for 1,000 joins", "< 1000 ms", fmt.Sprintf("%s ms (worst run %.1f)", fmtStat(cpu, 1, 1), cpu.Max), cpu.Max < 1000, true)
	r.target("queue: FIFO (admissions out of join order, every run)", "0", fmt.Sprintf("%.0f", inversions), inversions == 0, true)
}

// values returns every run's value of a benchmark's unit.
func values(s samples, name, unit string) []float64 {
	var v []float64
	for _, p := range s[name][unit] {
		v = append(v, p.v)
	}
	return v
}

// unitRatios returns, run by run, one unit of a benchmark over another of
// the same benchmark (the same run).
func (s samples) unitRatios(name, a, b string) []float64 {
	bv := map[int]float64{}
	for _, p := range s[name][b] {
		bv[p.round] = p.v
	}
	var out []float64
	for _, p := range s[name][a] {
		if d, ok := bv[p.round]; ok && d != 0 {
			out = append(out, p.v/d)
		}
	}
	return out
}
