package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// samples holds, per benchmark and unit, the value of every run, each
// with the round it was measured in.
type samples map[string]map[string][]point

// point is one run's value of a figure. round is the round of an
// interleaved run (the "round: N" line .ci/bench writes before each
// round's output), or, without such lines, the run's index in its file.
type point struct {
	round int
	v     float64
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output; repeated runs (-count, or
// rounds) add samples. A line "round: N" starts round N: the results after
// it, up to the next such line, belong to that round. Without round lines,
// the k-th result of a benchmark is in round k.
func parseBench(r io.Reader, into samples) error {
	sc := bufio.NewScanner(r)
	round := -1 // no round line seen
	seen := map[string]int{}
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "round:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("bad round line %q: %w", line, err)
			}
			round = n
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		rd := round
		if rd < 0 {
			rd = seen[name]
			seen[name]++
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %w", name, f[i], err)
			}
			if into[name] == nil {
				into[name] = make(map[string][]point)
			}
			into[name][f[i+1]] = append(into[name][f[i+1]], point{rd, v})
		}
	}
	return sc.Err()
}

// stat is the median and range of a figure's runs.
type stat struct {
	Median, Min, Max float64
	N                int
}

func summarize(v []float64) stat {
	if len(v) == 0 {
		return stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// get returns the stat of one benchmark's unit, and whether it exists.
func (s samples) get(name, unit string) (stat, bool) {
	p, ok := s[name][unit]
	if !ok {
		return stat{}, false
	}
	v := make([]float64, len(p))
	for i := range p {
		v[i] = p[i].v
	}
	return summarize(v), true
}

// ratios returns, for every round in which both a and b were measured in
// unit, a's value over b's, in round order.
func (s samples) ratios(a, b, unit string) []float64 {
	bv := map[int]float64{}
	for _, p := range s[b][unit] {
		bv[p.round] = p.v
	}
	var out []float64
	for _, p := range s[a][unit] {
		if d, ok := bv[p.round]; ok && d != 0 {
			out = append(out, p.v/d)
		}
	}
	return out
}

// count returns how many of v satisfy ok.
func count(v []float64, ok func(float64) bool) int {
	n := 0
	for _, x := range v {
		if ok(x) {
			n++
		}
	}
	return n
}
