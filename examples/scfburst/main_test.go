package main

import (
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// A scaled-down spike in a synctest bubble: 120 invocations of a one-minute
// function, 20 provisioned instances and a burst of 50 new instances per
// minute. The first minute runs 70; the other 50 meet 429, wait for the next
// minute and all complete.
func TestSpike(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		err := run(t.Context(), config{
			rate: 2, spike: time.Minute, duration: time.Minute, memoryMB: 64, provisioned: 20,
			region: "ap-guangzhou", burst: 50, scale: 60, tick: 5 * time.Millisecond, listener: memnet.Listen("scfburst"),
		}, &out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		text := out.String()
		for _, want := range []string{
			"2 QPS × 1m0s = 120 concurrent instances × 64 MB = 7680 MB of quota. It fits",
			"Provisioned 20 instances of version 1: Done",
			"the Invoker keeps at most 120 in flight",
			"All 120 completed (0 failed)",
			"elastic instances started, 0 × 429, 0 × 432.",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("missing %q in:\n%s", want, text)
			}
		}
		// Minute 0: 120 arrivals, 20 on provisioned instances, 50 new ones
		// (the Invoker's start budget is the burst), the other 50 wait,
		// unsent, and no 429. Minute 1: the 70 first calls complete; the 50
		// waiting ones start, on instances freed meanwhile or new ones as
		// the budget allows. Minute 2: they complete.
		for _, row := range []string{`(?m)^\s+0\s+120\s+50\s+0\s+0\s+0\s`, `(?m)^\s+1\s+0\s+\d+\s+0\s+0\s+70\s`, `(?m)^\s+2\s+0\s+0\s+0\s+0\s+50\s`} {
			if !regexp.MustCompile(row).MatchString(text) {
				t.Errorf("no row %s in:\n%s", row, text)
			}
		}
	})
}
