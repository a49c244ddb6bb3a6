// Package benchmetric adds the process's CPU time per operation to a
// benchmark. On a shared or virtual machine, wall-clock time per operation
// moves with whatever else the host runs (time stolen from the VM counts as
// wall time); CPU time counts only what the process itself used, client and
// server alike when both run in it.
package benchmetric

import (
	"syscall"
	"testing"
	"time"
)

// CPU measures from now until Report.
type CPU struct{ start time.Duration }

// Start begins a measurement.
func Start() CPU { return CPU{start: processCPU()} }

// Report adds "cpu-µs/op": the process's user and system CPU time since
// Start divided by b.N.
func (c CPU) Report(b *testing.B) {
	used := processCPU() - c.start
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Parallel runs op b.N times over b.RunParallel's goroutines, with
// allocations, "cpu-µs/op" and the rate, named by unit ("invokes/s"),
// reported. The first error op returns fails b.
func Parallel(b *testing.B, unit string, op func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := Start()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	})
	cpu.Report(b)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}
