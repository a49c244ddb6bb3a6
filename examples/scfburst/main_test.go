package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
)

// A scaled-down spike in a synctest bubble: 120 invocations of a one-minute
// function, 20 provisioned instances and a burst of 50 new instances in any
// 60 s. The first minute runs 70; the other 50 meet 429. The burst rolls:
// the Invoker's retries at the next clock minute come before the first new
// instance is a minute old, so those that find no provisioned instance
// freed meet 429 again, and run a minute later on the instances the first
// wave left warm. All complete.
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
			"Server: 20 provisioned and 50 elastic instances started",
			" × 432.",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("missing %q in:\n%s", want, text)
			}
		}
		// Minute 0: 120 arrivals, 50 new instances, 50 × 429, nothing done yet.
		// Minute 1: the 70 first calls complete; no new instance may start
		// (the 50 started 10–35 s into minute 0 are not a minute old), so
		// retried calls meet 429 again unless a provisioned instance freed.
		if !regexp.MustCompile(`(?m)^\s+0\s+120\s+50\s+50\s+0\s+0\s`).MatchString(text) {
			t.Errorf("no row 0 in:\n%s", text)
		}
		m := regexp.MustCompile(`(?m)^\s+1\s+0\s+0\s+(\d+)\s+0\s+70\s`).FindStringSubmatch(text)
		if m == nil || m[1] == "0" {
			t.Errorf("row 1 should start nothing and meet 429 again, in:\n%s", text)
		}
		if n := regexp.MustCompile(`(\d+) × 429`).FindStringSubmatch(text); n == nil || atoi(n[1]) <= 50 {
			t.Errorf("want more 429s than the 50 of minute 0, in:\n%s", text)
		}
	})
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
