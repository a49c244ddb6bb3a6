package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
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
	doc := render(samples{}, nil, nil, nil, "", "", ".ci/bench", prev)
	if !strings.Contains(doc, "## Heartbeat server\n\n*Not measured by this run") || !strings.Contains(doc, "old table") {
		t.Fatalf("heartbeat section not carried:\n%s", doc)
	}
	if !strings.Contains(doc, "| idle callback error p99 [1000 sessions] | ≤ 50 | 4 | met |") || strings.Contains(doc, "9 µs") {
		t.Fatalf("targets:\n%s", doc)
	}
	// Carried over again, each section says so once.
	again := render(samples{}, nil, nil, nil, "", "", ".ci/bench", parsePrevious(doc))
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

## Heartbeat at the library's defaults

old defaults table

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
	doc := render(s, nil, nil, nil, "", "", ".ci/bench", prev)
	for _, old := range []string{"old signing", "old client table", "old servers table", "old queue table", "old leave table", "old defaults table"} {
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
	doc := render(s, nil, nil, nil, "", "", ".ci/bench", nil)
	if !strings.Contains(doc, "| calls/s vs the official SDK | ≥ 1.8×, or the signed floor's own ratio when lower") || !strings.Contains(doc, "3 of 4 rounds ≥ 1.00× | met |") {
		t.Fatalf("calls/s target row:\n%s", doc)
	}
}

// hbdefaultsJSON is a small hbscale results file of one run of 15,000
// sessions, at the given timings (ms) and with the given figures.
func hbdefaultsJSON(t *testing.T, dir, name string, date string, intervalMs, timeoutMs, graceMs, hbps, cores, us, rss, goMem, silent50, silent99, idle50, idle99 float64) string {
	t.Helper()
	doc := fmt.Sprintf(`{"schema": "hbscale/v1", "complete": true,
  "machine": {"date": %q, "load_average": "0.50 0.40 0.30"},
  "config": {"sessions": [15000], "runs": 1, "ping_interval_ms": %g, "ping_timeout_ms": %g, "grace_ms": %g,
             "idle_threshold_ms": 45000, "cpu_window_ms": 30000, "library_defaults": true},
  "runs": [{"sessions": 15000, "run": 1, "connect_seconds": 9.5, "heartbeats_per_second": %g, "cpu_cores": %g,
            "cpu_us_per_heartbeat": %g, "rss_bytes_per_session": %g, "mem_go_bytes_per_session": %g,
            "disconnect_silent_ms": {"n": 1500, "p50": %g, "p99": %g}, "idle_error_ms": {"n": 15000, "p50": %g, "p99": %g}}],
  "summary": [], "targets": []}`, date, intervalMs, timeoutMs, graceMs, hbps, cores, us, rss, goMem, silent50, silent99, idle50, idle99)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The part hbdefaults: runs at the library's defaults and at the old
// ones, interleaved (new old old new), each round's values side by side
// with their difference; left out, its section is carried over.
func TestHeartbeatDefaults(t *testing.T) {
	dir := t.TempDir()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	ni, nt, ng := ms(heartbeat.DefaultPingInterval), ms(heartbeat.DefaultPingTimeout), ms(heartbeat.DefaultReconnectWindow)
	specs := []string{
		"new=" + hbdefaultsJSON(t, dir, "1-new.json", "2026-12-02T17:41:00Z", ni, nt, ng, 1500, 0.07, 49, 8400, 7540, 24478, 29775, 6.5, 20),
		"old=" + hbdefaultsJSON(t, dir, "1-old.json", "2026-12-02T17:43:00Z", 25000, 60000, 90000, 600, 0.06, 91.3, 8150, 7280, 45829, 59746, 5.5, 30),
		"old=" + hbdefaultsJSON(t, dir, "2-old.json", "2026-12-02T17:45:00Z", 25000, 60000, 90000, 500, 0.05, 97.9, 7930, 7090, 47876, 54029, 4, 10),
		"new=" + hbdefaultsJSON(t, dir, "2-new.json", "2026-12-02T17:47:00Z", ni, nt, ng, 1499, 0.06, 42, 8250, 7380, 25373, 29957, 8, 12),
	}
	d, err := readDefaults(specs)
	if err != nil {
		t.Fatal(err)
	}
	doc := render(samples{}, nil, nil, d, "", "", ".ci/bench", nil)
	_, sec, ok := strings.Cut(doc, defaultsTitle+"\n")
	if !ok {
		t.Fatalf("no section %q:\n%s", defaultsTitle, doc)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	for _, want := range []string{
		"Runs, in order: new (17:41:00 UTC, load 0.50 0.40 0.30), old (17:43:00 UTC, load 0.50 0.40 0.30), old (17:45:00 UTC",
		"| figure, 15,000 sessions | new (10 s / 30 s, 60 s grace): round 1, round 2 | old (25 s / 60 s, 90 s grace): round 1, round 2 | new − old: round 1, round 2 |",
		"| heartbeats/s | 1500, 1499 | 600, 500 | +900 (+150%), +999 (+200%) |",
		"| server CPU over the window, cores | 0.070, 0.060 | 0.060, 0.050 | +0.010 (+17%), +0.010 (+20%) |",
		"| server CPU, µs/heartbeat | 49.0, 42.0 | 91.3, 97.9 | -42.3 (-46%), -55.9 (-57%) |",
		"| RSS, KB/session | 8.40, 8.25 | 8.15, 7.93 | +0.25 (+3%), +0.32 (+4%) |",
		"| Go heap+stack, KB/session | 7.54, 7.38 | 7.28, 7.09 | +0.26 (+4%), +0.29 (+4%) |",
		"| silent kill → OnDisconnect p50, ms | 24478, 25373 | 45829, 47876 | -21351 (-47%), -22503 (-47%) |",
		"| silent kill → OnDisconnect p99, ms | 29775, 29957 | 59746, 54029 | -29971 (-50%), -24072 (-45%) |",
		"| idle callback error p50, ms | 6.5, 8.0 | 5.5, 4.0 | +1.0 (+18%), +4.0 (+100%) |",
		"| idle callback error p99, ms | 20.0, 12.0 | 30.0, 10.0 | -10.0 (-33%), +2.0 (+20%) |",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	if strings.Contains(sec, "Not at the library's defaults") {
		t.Errorf("the new runs are at the library's defaults:\n%s", sec)
	}

	// Left out of PARTS: carried over as it was, saying so; no table of
	// its own.
	again := render(samples{}, nil, nil, nil, "", "", ".ci/bench", parsePrevious(doc))
	if !strings.Contains(again, defaultsTitle+"\n\n*Not measured by this run (the part hbdefaults was left out") || !strings.Contains(again, "| heartbeats/s | 1500, 1499 |") {
		t.Fatalf("not carried over:\n%s", again)
	}
	// Without a previous report, it says it was not run.
	if none := render(samples{}, nil, nil, nil, "", "", ".ci/bench", nil); !strings.Contains(none, defaultsTitle+"\n\nThe heartbeat at the library's defaults beside the old ones (`.ci/bench` part hbdefaults) was not part of this run.") {
		t.Fatalf("no placeholder:\n%s", none)
	}

	// A "new" run that is not at the library's defaults says so.
	specs[0] = "new=" + hbdefaultsJSON(t, dir, "x-new.json", "2026-12-02T17:41:00Z", 5000, nt, ng, 1500, 0.07, 49, 8400, 7540, 24478, 29775, 6.5, 20)
	if d, err = readDefaults(specs); err != nil {
		t.Fatal(err)
	}
	if doc := render(samples{}, nil, nil, d, "", "", ".ci/bench", nil); !strings.Contains(doc, "**Not at the library's defaults**: a new run had a ping interval of 5 s, not heartbeat.DefaultPingInterval (10 s)") {
		t.Fatalf("no warning:\n%s", doc)
	}

	// Rounds need one run of each variant.
	for _, bad := range [][]string{specs[:3], {"mid=" + filepath.Join(dir, "1-new.json")}, {specs[0]}} {
		if _, err := readDefaults(bad); err == nil {
			t.Errorf("readDefaults(%q) = nil error", bad)
		}
	}
	incomplete := filepath.Join(dir, "incomplete.json")
	if err := os.WriteFile(incomplete, []byte(`{"schema": "hbscale/v1", "complete": false, "error": "sessions 15000, run 1: raise -idle-threshold", "runs": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readDefaults([]string{specs[1], "new=" + incomplete}); err == nil || !strings.Contains(err.Error(), "raise -idle-threshold") {
		t.Errorf("an incomplete run: error %v", err)
	}
}

// The Redis store's table: per op and store the median and range of each
// figure, and Redis ÷ memory paired by round (its median, not the ratio
// of the medians); the per-user memory beside the 60,000-session run's
// per-session figure; the commands as a table, not raw lines.
func TestRedisSection(t *testing.T) {
	out := `round: 1
BenchmarkLease/store=memory/op=start-2     200   200000 ns/op   23000 B/op   270 allocs/op
BenchmarkLease/store=memory/op=release-2   200   100000 ns/op   10000 B/op   125 allocs/op
BenchmarkLease/store=memory/op=resume-2    200   400000 ns/op   38000 B/op   267 allocs/op
BenchmarkLease/store=redis/op=start-2      200  1200000 ns/op   36000 B/op   564 allocs/op
BenchmarkLease/store=redis/op=release-2    200   700000 ns/op   20000 B/op   351 allocs/op
BenchmarkLease/store=redis/op=resume-2     200   800000 ns/op   41000 B/op   338 allocs/op
BenchmarkRedisMemory-2   1   9000000000 ns/op   2300 B/active-user   1600 B/queued-user
round: 2
BenchmarkLease/store=redis/op=start-2      200  3000000 ns/op   37000 B/op   566 allocs/op
BenchmarkLease/store=redis/op=release-2    200   800000 ns/op   20000 B/op   351 allocs/op
BenchmarkLease/store=memory/op=start-2     200   300000 ns/op   24000 B/op   272 allocs/op
BenchmarkLease/store=memory/op=release-2   200   100000 ns/op   10000 B/op   125 allocs/op
BenchmarkRedisMemory-2   1   9000000000 ns/op   2200 B/active-user   1500 B/queued-user
round: 3
BenchmarkLease/store=memory/op=start-2     200   100000 ns/op   23000 B/op   270 allocs/op
BenchmarkLease/store=redis/op=start-2      200   700000 ns/op   36000 B/op   564 allocs/op
BenchmarkRedisMemory-2   1   9000000000 ns/op   2400 B/active-user   1700 B/queued-user
`
	commands := `BenchmarkRedisCommands
    bench_test.go:208: 3 replicas, no session: 279 commands in 10s: map[get:90]
BenchmarkRedisCommands-2   	       1	23061495522 ns/op	       556.0 cmds/min/replica-idle	        54.54 cmds/session/min
`
	sessions := "### 60,000 sessions\n\n| figure | run 1 |\n|---|---|\n| Redis used_memory, B/session | 395 |\n| redis-server CPU over the run, s | 53.2 |\n"
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	md := filepath.Join(dir, "redis.md")
	if err := writeRedis([]string{write("redis.txt", out), write("commands.txt", commands)}, write("sessions.md", sessions), md); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"Start, resume and release: 3 rounds;",
		// start: Redis ÷ memory by round 6, 10, 7: median 7, though the
		// medians' ratio is 1200/200 = 6.
		"| start | memory | 200 (100–300) | 23000 (23000–24000) | 270 (270–272) |  |",
		"| start | redis | 1200 (700–3000) | 36000 (36000–37000) | 564 (564–566) | 7.00× (6.00–10.00) |",
		"| resume | redis | 800 | 41000 | 338 | 2.00× |",
		"| release | redis | 750 (700–800) | 20000 | 351 | 7.50× (7.00–8.00) |",
		"| active user: its lease and its heartbeat session | 2300 (2200–2400) |",
		"| queued user: its queue entry, its lease and its heartbeat session | 1600 (1500–1700) |",
		"(the 60,000-session run, its table below) | 395 |",
		"| per connected session | 54.5 |",
		"| per replica with no session | 556 |",
		"(`BenchmarkRedisCommands`, 1 run):",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "BenchmarkLease") || strings.Contains(got, "bench_test.go") {
		t.Errorf("raw benchmark lines in\n%s", got)
	}

	// An op not measured says so; no 60,000-session section, no row of it;
	// no Redis result at all is an error, not an empty table.
	s := samples{}
	if err := parseBench(strings.NewReader("BenchmarkLease/store=redis/op=start-2 200 1000 ns/op\n"), s); err != nil {
		t.Fatal(err)
	}
	got = redisSection(s, "")
	if !strings.Contains(got, "| start | memory | not measured |") || !strings.Contains(got, "| start | redis | 1 | — | — | — |") {
		t.Errorf("partial table:\n%s", got)
	}
	if strings.Contains(got, "heartbeat session alone") || strings.Contains(got, "per connected session") {
		t.Errorf("rows of figures not measured:\n%s", got)
	}
	if err := writeRedis([]string{write("none.txt", commands)}, "", md); err == nil {
		t.Error("no BenchmarkLease result: no error")
	}
}
