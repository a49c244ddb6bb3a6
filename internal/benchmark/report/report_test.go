package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Ratios are taken within a round: a round in which one side is missing
// gives no ratio, and each target follows from the median of the paired
// ratios, not from the ratio of two medians.
func TestPairedRatiosAndTheirTarget(t *testing.T) {
	out := `round: 1
BenchmarkLifecycle/cartest-2   100   120000 ns/op
BenchmarkLifecycle/bare-2      100   100000 ns/op
round: 2
BenchmarkLifecycle/cartest-2   100   200000 ns/op
BenchmarkLifecycle/bare-2      100   100000 ns/op
round: 3
BenchmarkLifecycle/cartest-2   100   110000 ns/op
BenchmarkLifecycle/bare-2      100   100000 ns/op
round: 4
BenchmarkLifecycle/cartest-2   100   300000 ns/op
`
	s := samples{}
	if err := parseBench(strings.NewReader(out), s); err != nil {
		t.Fatal(err)
	}
	r := s.ratios("Lifecycle/cartest", "Lifecycle/bare", "ns/op")
	if len(r) != 3 || r[0] != 1.2 || r[1] != 2 || r[2] != 1.1 {
		t.Fatalf("ratios %v, want [1.2 2 1.1]", r)
	}
	rep := &report{}
	rep.servers(s)
	if len(rep.targets) != 1 {
		t.Fatalf("targets %+v", rep.targets)
	}
	// The median paired ratio is 1.2: met, though the ratio of the
	// medians (160000/100000) would have missed.
	if tg := rep.targets[0]; !tg.met || !strings.Contains(tg.measured, "+20% (+10% to +100%)") || !strings.Contains(tg.measured, "2 of 3 rounds") {
		t.Fatalf("target %+v", tg)
	}
}

// Without round lines, the k-th result of a benchmark is in round k.
func TestRunsWithoutRoundLinesPairInOrder(t *testing.T) {
	out := `BenchmarkX/a-2 1 10 ns/op
BenchmarkX/b-2 1 5 ns/op
BenchmarkX/a-2 1 30 ns/op
BenchmarkX/b-2 1 10 ns/op
`
	s := samples{}
	if err := parseBench(strings.NewReader(out), s); err != nil {
		t.Fatal(err)
	}
	if r := s.ratios("X/a", "X/b", "ns/op"); len(r) != 2 || r[0] != 2 || r[1] != 3 {
		t.Fatalf("ratios %v, want [2 3]", r)
	}
}

// The queue's targets follow from each run's own ratio (ready and floor
// measured in the same run), and notices per admission are compared
// between queue lengths.
func TestQueueTargets(t *testing.T) {
	out := `round: 1
BenchmarkQueue/queued=250/interval=1ms-2 1 4.0 notices/admission 0 inversions 1.0 ready-p99/floor-p99
BenchmarkQueue/queued=1000-2 1 0.3 ready-p50-ms 0.25 floor-p50-ms 1.2 ready-p99/floor-p99 0 inversions 12 join-cpu-ms
BenchmarkQueue/queued=1000/interval=1ms-2 1 4.0 notices/admission 0 inversions 1.0 ready-p99/floor-p99
round: 2
BenchmarkQueue/queued=1000-2 1 0.3 ready-p50-ms 0.25 floor-p50-ms 1.9 ready-p99/floor-p99 1 inversions 14 join-cpu-ms
round: 3
BenchmarkQueue/queued=1000-2 1 0.3 ready-p50-ms 0.25 floor-p50-ms 1.4 ready-p99/floor-p99 0 inversions 900 join-cpu-ms
`
	s := samples{}
	if err := parseBench(strings.NewReader(out), s); err != nil {
		t.Fatal(err)
	}
	rep := &report{}
	rep.queue(s)
	got := map[string]target{}
	for _, tg := range rep.targets {
		got[tg.what] = tg
	}
	if tg := got["queue: release → ready p99 vs its calls' floor p99 [1,000 queued]"]; !tg.met || !strings.Contains(tg.measured, "1.40× (1.20–1.90); 2 of 3 runs") {
		t.Fatalf("ready target %+v", tg)
	}
	if tg := got["queue: FIFO (admissions out of join order, every run)"]; tg.met {
		t.Fatalf("one inversion in one run must miss: %+v", tg)
	}
	if tg := got["queue: CPU for 1,000 joins"]; !tg.met {
		t.Fatalf("join CPU %+v", tg)
	}
	if tg := got["queue: position notices per admission do not grow with the queue [1 ms interval]"]; !tg.met {
		t.Fatalf("notices %+v", tg)
	}
}

// A part not run is carried over from the previous report, its targets
// with it.
func TestCarryOver(t *testing.T) {
	prev := parsePrevious("# Benchmarks\n\n## Heartbeat server\n\nold table\n\n## Targets\n\n| target | goal | measured | |\n|---|---|---|---|\n| signing time | ≤ 2 µs | 9 µs | **missed** |\n| idle callback error p99 [1000 sessions] | ≤ 50 | 4 | met |\n\n## Notes\n")
	doc := render(samples{}, nil, nil, "", "", ".ci/bench", prev)
	if !strings.Contains(doc, "## Heartbeat server\n\n*Not measured by this run") || !strings.Contains(doc, "old table") {
		t.Fatalf("heartbeat section not carried:\n%s", doc)
	}
	if !strings.Contains(doc, "| idle callback error p99 [1000 sessions] | ≤ 50 | 4 | met |") || strings.Contains(doc, "9 µs") {
		t.Fatalf("targets:\n%s", doc)
	}
	// Carried over again, each section says so once.
	again := render(samples{}, nil, nil, "", "", ".ci/bench", parsePrevious(doc))
	if n, m := strings.Count(again, "Not measured by this run"), strings.Count(again, "\n## ")-1; n != m || !strings.Contains(again, "old table") {
		t.Fatalf("carried twice: %d notes in %d sections\n%s", n, m, again)
	}
	if strings.Contains(again, "*Not measured by this run (the heartbeat's benchmarks were left out): carried over from the previous BENCHMARKS.md, with its targets.*\n*Not measured") {
		t.Fatalf("a note repeated:\n%s", again)
	}
}

// Every part can be left out, the compared ones (the client call, the
// reference servers, the queue), signing and the concurrency-seconds
// included: a run of only the heartbeat's parts keeps all of them from
// the previous report, with their targets in their order, and renders
// its own.
func TestCarryOverOfEveryPart(t *testing.T) {
	prev := parsePrevious(`# Benchmarks

## Signing

old signing

## A client call

old client table

## Reference servers

old servers table

## The queue

old queue table

## Concurrency-seconds held after the user left

old leave table

## Heartbeat server

old heartbeat table

## Targets

| target | goal | measured | |
|---|---|---|---|
| signing time | ≤ 2 µs | 1.42 µs | met |
| client call time vs the signed floor | ≤ 1.00× | 0.90× | met |
| calls/s vs the official SDK | ≥ 1.71× | 1.80× | met |
| scftest overhead over a bare handler | ≤ +25% | +20% | met |
| queue: CPU for 1,000 joins | < 1000 ms | 9.7 ms | met |
| silent vanish: held vs CAR alone, p50 and p99 | ≤ 0.75× | 0.65× | met |
| reload within the grace: same concurrency resumed | 100% | 200 of 200 (100%) | met |
| idle callback error p99 [1000 sessions] | ≤ 50 | 4 | met |

## Notes
`)
	s := samples{}
	if err := parseBench(strings.NewReader("BenchmarkIdleSessionMemory-2 1 8000 B/session 7000 heap-B/session 1000 stack-B/session 15000 sessions\n"), s); err != nil {
		t.Fatal(err)
	}
	doc := render(s, nil, nil, "", "", ".ci/bench", prev)
	for _, old := range []string{"old signing", "old client table", "old servers table", "old queue table", "old leave table"} {
		if !strings.Contains(doc, old) {
			t.Errorf("%q not carried over", old)
		}
	}
	if strings.Contains(doc, "old heartbeat table") || !strings.Contains(doc, "`BenchmarkIdleSessionMemory` (heartbeat)") {
		t.Errorf("the heartbeat ran: its section must be this run's")
	}
	if strings.Contains(doc, "was not part of this run") || strings.Contains(doc, "(internal/benchmark/afterleave) was not part") || strings.Contains(doc, "| — | — | — | 0 |") {
		t.Errorf("a part left out was rendered empty")
	}
	_, tbl, _ := strings.Cut(doc, "## Targets")
	tbl, _, _ = strings.Cut(tbl, "\n\n## ")
	var rows []string
	for _, line := range strings.Split(tbl, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| target |") {
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
			rows = append(rows, name)
		}
	}
	want := []string{"signing time", "client call time vs the signed floor", "calls/s vs the official SDK", "scftest overhead over a bare handler",
		"queue: CPU for 1,000 joins", "silent vanish: held vs CAR alone, p50 and p99", "reload within the grace: same concurrency resumed",
		"idle session memory at 15,000 sessions"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets %q, want %q\n%s", rows, want, doc)
	}
	if !strings.Contains(doc, "| client call time vs the signed floor | ≤ 1.00× | 0.90× | met |") {
		t.Fatalf("a carried target row changed:\n%s", doc)
	}
}

// The calls-per-second target is decided round by round: each round's
// goal is 1.8× the official SDK's rate, or the signed floor's own ratio
// when lower, and the verdict is the median of this SDK's ratio ÷ that
// goal, not a comparison of two medians.
func TestCallsPerSecondGoalIsPairedByRound(t *testing.T) {
	s := samples{}
	// ns/op per round: sdk, signed floor, official. Rounds 1–3: the floor
	// reaches only 1.5×, so the goal is the floor; round 4: the floor
	// reaches 2.5×, so the goal is 1.8×.
	rounds := [][3]float64{{98, 100, 150}, {99, 100, 150}, {103, 100, 150}, {50, 40, 100}}
	var in strings.Builder
	for r, v := range rounds {
		fmt.Fprintf(&in, "round: %d\n", r+1)
		for i, name := range []string{"sdk", "nethttp-signed", "official"} {
			fmt.Fprintf(&in, "BenchmarkClientCall/%s-2 1000 %g ns/op\n", name, v[i])
		}
	}
	if err := parseBench(strings.NewReader(in.String()), s); err != nil {
		t.Fatal(err)
	}
	got := speedGoalRatios(s)
	want := []float64{100.0 / 98, 100.0 / 99, 100.0 / 103, 2 / 1.8}
	if len(got) != len(want) {
		t.Fatalf("ratios %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("ratios %v, want %v", got, want)
		}
	}
	doc := render(s, nil, nil, "", "", ".ci/bench", nil)
	if !strings.Contains(doc, "| calls/s vs the official SDK | ≥ 1.8×, or the signed floor's own ratio when lower") || !strings.Contains(doc, "3 of 4 rounds ≥ 1.00× | met |") {
		t.Fatalf("calls/s target row:\n%s", doc)
	}
}
