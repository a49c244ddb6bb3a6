package main

import (
	"fmt"
	"os"
	"strings"
)

// redisOps are BenchmarkLease's ops, in the order the table shows them.
var redisOps = []string{"start", "resume", "release"}

// sessionsRow is the label of the 60,000-session run's (replicascale)
// row of Redis memory per heartbeat session.
const sessionsRow = "Redis used_memory, B/session"

// redisSection renders the tables of the Redis store's benchmarks
// (car/redisstore): BenchmarkLease, run in rounds with the in-memory
// store and the Redis store each once per round in its own process, its
// ratios taken within a round; BenchmarkRedisMemory (one run per round);
// BenchmarkRedisCommands. sessionsMD is the markdown of the 60,000-session
// run's section (this run's or the one carried over), from which its
// Redis memory per heartbeat session is shown beside the per-user figures;
// empty if there is none. The prose is car/redisstore/BENCH.md's.
func redisSection(s samples, sessionsMD string) string {
	r := &report{}
	name := func(store, op string) string { return "Lease/store=" + store + "/op=" + op }
	rounds := len(s.ratios(name("redis", "start"), name("memory", "start"), "ns/op"))
	r.p("Start, resume and release: %d rounds; in each, one run (200 ops of each op) with the in-memory store and one with the Redis store, each in its own process, the in-memory one first in odd rounds and the Redis one first in even ones. Each figure is the median of the rounds with the range; Redis ÷ memory is taken within each round, then its median and range over the rounds.", rounds)
	r.p("")
	r.p("| op | store | µs/op | B/op | allocs/op | Redis ÷ memory (µs/op, paired by round) |")
	r.p("|---|---|---|---|---|---|")
	for _, op := range redisOps {
		for _, store := range []string{"memory", "redis"} {
			n := name(store, op)
			ns, ok := s.get(n, "ns/op")
			if !ok {
				r.p("| %s | %s | not measured | | | |", op, store)
				continue
			}
			bytes, _ := s.get(n, "B/op")
			allocs, _ := s.get(n, "allocs/op")
			ratio := ""
			if store == "redis" {
				ratio = "—"
				if rs := s.ratios(n, name("memory", op), "ns/op"); len(rs) > 0 {
					ratio = fmtRatio(summarize(rs))
				}
			}
			r.p("| %s | %s | %s | %s | %s | %s |", op, store, fmtStat(ns, 1e3, 0), fmtStat(bytes, 1, 0), fmtStat(allocs, 1, 0), ratio)
		}
	}
	r.p("")
	active, okA := s.get("RedisMemory", "B/active-user")
	queued, okQ := s.get("RedisMemory", "B/queued-user")
	if okA || okQ {
		r.p("Redis memory per user (`BenchmarkRedisMemory`, one run per round, %s): used_memory with the users started through a SessionManager, after the keys settle, minus before, divided by the users.", runs(max(active.N, queued.N)))
		r.p("")
		r.p("| figure | B (median, range) |")
		r.p("|---|---|")
		r.p("| active user: its lease and its heartbeat session | %s |", fmtStat(active, 1, 0))
		r.p("| queued user: its queue entry, its lease and its heartbeat session | %s |", fmtStat(queued, 1, 0))
		if v := tableRow(sessionsMD, sessionsRow); v != "" {
			r.p("| beside them: a heartbeat session alone, no SessionManager (the 60,000-session run, its table below) | %s |", v)
		}
		r.p("")
	}
	perSession, okS := s.get("RedisCommands", "cmds/session/min")
	idle, okI := s.get("RedisCommands", "cmds/min/replica-idle")
	if okS || okI {
		r.p("Redis commands (`BenchmarkRedisCommands`, %s):", runs(max(perSession.N, idle.N)))
		r.p("")
		r.p("| figure | commands per minute |")
		r.p("|---|---|")
		r.p("| per connected session | %s |", fmtStat(perSession, 1, 1))
		r.p("| per replica with no session | %s |", fmtStat(idle, 1, 0))
		r.p("")
	}
	return strings.TrimRight(r.b.String(), "\n") + "\n"
}

// runs is "1 run" or "N runs".
func runs(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

// tableRow returns the cells after the label of md's table row whose
// first cell is label, joined by ", "; "" if there is no such row.
func tableRow(md, label string) string {
	for _, line := range strings.Split(md, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) < 2 || strings.TrimSpace(cells[0]) != label {
			continue
		}
		var v []string
		for _, c := range cells[1:] {
			v = append(v, strings.TrimSpace(c))
		}
		return strings.Join(v, ", ")
	}
	return ""
}

// writeRedis parses the Redis store's benchmark outputs (files) and
// writes their tables to out; sessionsPath is the 60,000-session run's
// section (see redisSection), or "".
func writeRedis(files []string, sessionsPath, out string) error {
	s := samples{}
	for _, f := range files {
		if err := parseFile(f, s); err != nil {
			return err
		}
	}
	if _, ok := s["Lease/store=redis/op=start"]; !ok {
		return fmt.Errorf("-redis: no BenchmarkLease/store=redis result in %s", strings.Join(files, ", "))
	}
	var sessions string
	if sessionsPath != "" {
		b, err := os.ReadFile(sessionsPath)
		if err != nil {
			return err
		}
		sessions = string(b)
	}
	return os.WriteFile(out, []byte(redisSection(s, sessions)), 0o644)
}
