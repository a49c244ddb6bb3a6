package main

import (
	"fmt"
	"math"
	"strings"
)

// report accumulates the markdown.
type report struct {
	b       strings.Builder
	targets []target
}

type target struct {
	what, goal, measured string
	met                  bool
	known                bool
}

func (r *report) p(format string, args ...any) { fmt.Fprintf(&r.b, format+"\n", args...) }

func (r *report) target(what, goal, measured string, met, known bool) {
	r.targets = append(r.targets, target{what, goal, measured, met, known})
}

// fmtStat prints "median (min–max)" scaled by div, with prec decimals.
func fmtStat(s stat, div float64, prec int) string {
	if s.N == 0 || math.IsNaN(s.Median) {
		return "—"
	}
	f := "%." + fmt.Sprint(prec) + "f"
	if s.N == 1 || s.Min == s.Max {
		return fmt.Sprintf(f, s.Median/div)
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", s.Median/div, s.Min/div, s.Max/div)
}

func render(s samples, scale *scaleResults, machine, notes, command string) string {
	r := &report{}
	r.p("# Benchmarks")
	r.p("")
	r.p("Written by `%s`; do not edit by hand. Each figure is the **median** of the runs, with the **range** (min–max) in brackets.", command)
	r.p("Allocations include the in-process test server's where a server runs in the benchmark's process; that is the same for every row of a table.")
	r.p("")
	if machine != "" {
		r.p("## Machine")
		r.p("")
		r.p("%s", machine)
		r.p("")
	}
	r.signing(s)
	r.clientCall(s)
	r.servers(s)
	r.heartbeat(s, scale)
	r.p("## Targets")
	r.p("")
	r.p("| target | goal | measured | |")
	r.p("|---|---|---|---|")
	for _, t := range r.targets {
		mark := "met"
		switch {
		case !t.known:
			mark = "not measured"
		case !t.met:
			mark = "**missed**"
		}
		r.p("| %s | %s | %s | %s |", t.what, t.goal, t.measured, mark)
	}
	r.p("")
	if notes != "" {
		r.p("## Notes")
		r.p("")
		r.p("%s", notes)
		r.p("")
	}
	return r.b.String()
}

func (r *report) signing(s samples) {
	ns, ok := s.get("Sign", "ns/op")
	allocs, _ := s.get("Sign", "allocs/op")
	bytes, _ := s.get("Sign", "B/op")
	r.p("## Signing")
	r.p("")
	r.p("`BenchmarkSign` (internal/tc3): one TC3-HMAC-SHA256 signature of a CAR request, the derived key cached as a client does.")
	r.p("")
	r.p("| ns/op | B/op | allocs/op | runs |")
	r.p("|---|---|---|---|")
	r.p("| %s | %s | %s | %d |", fmtStat(ns, 1, 0), fmtStat(bytes, 1, 0), fmtStat(allocs, 1, 0), ns.N)
	r.p("")
	r.target("signing time", "≤ 2 µs", fmt.Sprintf("%.2f µs", ns.Median/1000), ns.Median <= 2000, ok)
	r.target("signing allocations", "≤ 4", fmt.Sprintf("%.0f", allocs.Median), allocs.Median <= 4, ok)
}

func (r *report) clientCall(s samples) {
	r.p("## A client call")
	r.p("")
	r.p("`BenchmarkClientCall` (internal/conformance): `DescribeConcurrentCount` against one in-process server returning a fixed response over loopback, one call at a time.")
	r.p("`nethttp` is the floor: a bare POST of the same body with only Content-Type. `nethttp-signed` adds the headers the API requires, signed by hand: no correct client sends less. `official` is the official Go SDK's generic client (common v1.3.209).")
	r.p("")
	r.p("| client | µs/call | calls/s | B/call | allocs/call |")
	r.p("|---|---|---|---|---|")
	rows := []string{"sdk", "nethttp", "nethttp-signed", "official"}
	for _, row := range rows {
		name := "ClientCall/" + row
		ns, ok := s.get(name, "ns/op")
		if !ok {
			continue
		}
		b, _ := s.get(name, "B/op")
		a, _ := s.get(name, "allocs/op")
		r.p("| %s | %s | %.0f | %s | %s |", row, fmtStat(ns, 1000, 1), 1e9/ns.Median, fmtStat(b, 1, 0), fmtStat(a, 1, 0))
	}
	r.p("")
	sdk, ok1 := s.get("ClientCall/sdk", "ns/op")
	floor, ok2 := s.get("ClientCall/nethttp", "ns/op")
	signed, ok3 := s.get("ClientCall/nethttp-signed", "ns/op")
	off, ok4 := s.get("ClientCall/official", "ns/op")
	sdkA, _ := s.get("ClientCall/sdk", "allocs/op")
	floorA, _ := s.get("ClientCall/nethttp", "allocs/op")
	if ok1 && ok2 {
		ratio := sdk.Median / floor.Median
		msg := fmt.Sprintf("%.2f×", ratio)
		if ok3 {
			msg += fmt.Sprintf(" (%.2f× the signed floor)", sdk.Median/signed.Median)
		}
		r.target("client call time vs the net/http floor", "≤ 1.15×", msg, ratio <= 1.15, true)
		ar := sdkA.Median / floorA.Median
		r.target("client call allocations vs the floor", "≤ 1.5×", fmt.Sprintf("%.2f×", ar), ar <= 1.5, true)
	}
	if ok1 && ok4 {
		speed := off.Median / sdk.Median
		r.target("calls/s vs the official SDK", "≥ 1.8×", fmt.Sprintf("%.2f×", speed), speed >= 1.8, true)
	}
}

func (r *report) servers(s samples) {
	r.p("## Reference servers")
	r.p("")
	r.p("Parallel clients (this SDK's, the same on both sides) over loopback. `BenchmarkLifecycle` (car/cartest): ApplyConcurrent, CreateSession, DestroySession, with every signature verified. `BenchmarkInvoke` (scf/scftest): InvokeFunction of an instant function. `bare` is a net/http handler that reads the body and writes a fixed envelope, doing no work.")
	r.p("")
	r.p("Wall time per operation is what the target is about; CPU time per operation (client and server, one process) is shown beside it, since on a shared virtual machine wall time also moves with the host's load.")
	r.p("")
	r.p("| benchmark | server | per second | µs/op | overhead | CPU µs/op | CPU overhead | allocs/op |")
	r.p("|---|---|---|---|---|---|---|---|")
	for _, bm := range []struct{ name, unit, ref string }{{"Lifecycle", "lifecycles/s", "cartest"}, {"Invoke", "invokes/s", "scftest"}} {
		ref, ok1 := s.get(bm.name+"/"+bm.ref, "ns/op")
		bare, ok2 := s.get(bm.name+"/bare", "ns/op")
		for _, row := range []string{bm.ref, "bare"} {
			ns, ok := s.get(bm.name+"/"+row, "ns/op")
			if !ok {
				continue
			}
			rate, _ := s.get(bm.name+"/"+row, bm.unit)
			a, _ := s.get(bm.name+"/"+row, "allocs/op")
			cpu, _ := s.get(bm.name+"/"+row, "cpu-µs/op")
			bareCPU, _ := s.get(bm.name+"/bare", "cpu-µs/op")
			over, cpuOver := "", ""
			if row == bm.ref && ok2 {
				over = fmt.Sprintf("%+.0f%%", (ns.Median/bare.Median-1)*100)
				if cpu.N > 0 && bareCPU.N > 0 {
					cpuOver = fmt.Sprintf("%+.0f%%", (cpu.Median/bareCPU.Median-1)*100)
				}
			}
			r.p("| %s | %s | %s %s | %s | %s | %s | %s | %s |", bm.name, row, fmtStat(rate, 1, 0), bm.unit, fmtStat(ns, 1000, 1), over, fmtStat(cpu, 1, 1), cpuOver, fmtStat(a, 1, 0))
		}
		if ok1 && ok2 {
			o := ref.Median/bare.Median - 1
			msg := fmt.Sprintf("%.0f%% in wall time", o*100)
			refCPU, okc1 := s.get(bm.name+"/"+bm.ref, "cpu-µs/op")
			bareCPU, okc2 := s.get(bm.name+"/bare", "cpu-µs/op")
			if okc1 && okc2 {
				msg += fmt.Sprintf(" (%.0f%% in CPU time)", (refCPU.Median/bareCPU.Median-1)*100)
			}
			r.target(bm.ref+" overhead over a bare handler", "≤ 25%", msg, o <= 0.25, true)
		}
	}
	r.p("")
}
