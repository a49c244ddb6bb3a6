package main

import (
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
