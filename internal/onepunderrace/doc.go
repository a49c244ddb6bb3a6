// Package onepunderrace works around a Go 1.26 runtime bug that crashes
// race-enabled test binaries running testing/synctest bubbles: a timer
// fired by a bubble's fake clock and a channel timer run inline by a
// select on another P can use the bubble's one race-detector context at
// the same time and corrupt it (SIGSEGV in the runtime, e.g. from
// runtime.(*timer).maybeRunChan or time.goFunc → __tsan_go_start). It was
// seen in a few percent of runs of the heartbeat and car churn tests with
// two Ps, and never with one; it may be golang/go#78156.
//
// Importing the package for its side effect pins GOMAXPROCS to 1 in
// race-enabled builds only. The race detector's happens-before analysis
// does not need parallel execution to find races, so it loses nothing.
// Test files of every package that runs synctest bubbles import it:
//
//	import _ "github.com/tcconcurrency/sdk-go/internal/onepunderrace"
//
// Remove it once the runtime is fixed.
package onepunderrace
