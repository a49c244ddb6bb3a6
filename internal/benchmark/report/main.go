// Command report renders BENCHMARKS.md from the raw output of the
// benchmark runs that .ci/bench makes: `go test -bench` output (several
// runs of each benchmark, via -count) and the heartbeat-at-scale results
// (internal/benchmark/hbscale's JSON, also its runs at the heartbeat's
// defaults beside the old ones, interleaved), and the concurrency-seconds held
// after users left (internal/benchmark/afterleave's JSON). Compared
// variants run interleaved, in rounds: a ratio is taken within a round,
// and its median over the rounds, with the range, is what a target is
// checked against. Every figure is the median of the
// runs, with the range beside it; every target of the benchmark issue is
// checked against the medians and marked met or missed. Explanations of
// misses come from a hand-written notes file, included as it is.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var benchFiles stringList
	flag.Var(&benchFiles, "bench", "file of `go test -bench` output (repeatable)")
	hbscale := flag.String("hbscale", "", "hbscale results JSON")
	afterleave := flag.String("afterleave", "", "afterleave results JSON (internal/benchmark/afterleave -json)")
	var defaults stringList
	flag.Var(&defaults, "hbdefaults", "`new=FILE` or old=FILE: an hbscale results JSON of one run at the heartbeat's defaults (new) or at the ones before them (old); repeatable, in the order they ran, round k being the k-th of each")
	notes := flag.String("notes", "", "markdown file of notes, included as it is")
	machine := flag.String("machine", "", "machine description file (CPU, cores, Go version, date)")
	command := flag.String("command", ".ci/bench", "the command that produced the figures")
	out := flag.String("out", "BENCHMARKS.md", "where to write the report")
	prevPath := flag.String("previous", "", "the report this one replaces: sections of parts not run are carried over from it")
	var redisFiles stringList
	flag.Var(&redisFiles, "redis", "file of the Redis store's `go test -bench` output (car/redisstore; repeatable): its tables go to -redis-out")
	redisSessions := flag.String("redis-sessions", "", "the 60,000-session run's section (markdown), whose Redis memory per session is shown beside the Redis store's per-user figures")
	redisOut := flag.String("redis-out", "", "where to write the Redis store's tables (with -redis)")
	flag.Parse()
	if len(redisFiles) > 0 {
		if *redisOut == "" {
			fmt.Fprintln(os.Stderr, "report: -redis needs -redis-out")
			os.Exit(2)
		}
		if err := writeRedis(redisFiles, *redisSessions, *redisOut); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
	if err := run(benchFiles, *hbscale, *afterleave, defaults, *notes, *machine, *command, *out, *prevPath); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// parseFile adds the results of one file of `go test -bench` output to s.
func parseFile(path string, s samples) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := parseBench(r, s); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func run(benchFiles []string, hbscalePath, leavePath string, defaultsSpecs []string, notesPath, machinePath, command, out, prevPath string) error {
	if len(benchFiles) == 0 {
		return errors.New("no -bench files")
	}
	s := samples{}
	for _, f := range benchFiles {
		if err := parseFile(f, s); err != nil {
			return err
		}
	}
	var scale *scaleResults
	if hbscalePath != "" {
		var err error
		if scale, err = readScale(hbscalePath); err != nil {
			return err
		}
	}
	var leave *leaveResults
	if leavePath != "" {
		var err error
		if leave, err = readLeave(leavePath); err != nil {
			return err
		}
	}
	var defaults *defaultsResults
	if len(defaultsSpecs) > 0 {
		var err error
		if defaults, err = readDefaults(defaultsSpecs); err != nil {
			return err
		}
	}
	read := func(path string) (string, error) {
		if path == "" {
			return "", nil
		}
		b, err := os.ReadFile(path)
		return strings.TrimSpace(string(b)), err
	}
	notes, err := read(notesPath)
	if err != nil {
		return err
	}
	machine, err := read(machinePath)
	if err != nil {
		return err
	}
	var prev *previous
	if prevPath != "" {
		b, err := os.ReadFile(prevPath)
		if err != nil {
			return err
		}
		prev = parsePrevious(string(b))
	}
	doc := render(s, scale, leave, defaults, machine, notes, command, prev)
	return os.WriteFile(out, []byte(doc), 0o644)
}
