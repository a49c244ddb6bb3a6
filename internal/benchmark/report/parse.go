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

// samples holds, per benchmark and unit, the value of every run.
type samples map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output; repeated runs (-count) add
// samples.
func parseBench(r io.Reader, into samples) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %w", name, f[i], err)
			}
			if into[name] == nil {
				into[name] = make(map[string][]float64)
			}
			into[name][f[i+1]] = append(into[name][f[i+1]], v)
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
	v, ok := s[name][unit]
	if !ok {
		return stat{}, false
	}
	return summarize(v), true
}
