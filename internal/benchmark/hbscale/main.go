package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// realMain parses args and runs one of the two roles: the server under test
// (-serve) or the orchestrator and load generator (the default). It returns
// the exit code.
func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hbscale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serveRole := fs.Bool("serve", false, "run as the server under test (started by the orchestrator, not by hand)")
	var srv serverConfig
	srv.register(fs)
	var orc orchestratorConfig
	orc.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hbscale: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *serveRole {
		if err := serve(ctx, srv, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "hbscale -serve:", err)
			return 1
		}
		return 0
	}
	orc.server = srv
	orc.stderr = stderr
	if orc.quick {
		orc.applyQuick(fs)
	}
	if orc.libDefaults {
		orc.applyLibraryDefaults(fs)
	}
	if err := orc.validate(); err != nil {
		fmt.Fprintln(stderr, "hbscale:", err)
		return 2
	}
	res, err := orchestrate(ctx, orc, log)
	if res != nil && orc.out != "" {
		if werr := writeResults(orc.out, res); werr != nil {
			err = errors.Join(err, werr)
		} else {
			log.Info("results written", "file", orc.out)
		}
	}
	if res != nil {
		printSummary(stdout, res)
	}
	if err != nil {
		fmt.Fprintln(stderr, "hbscale:", err)
		return 1
	}
	return 0
}

// intList is a flag of comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// durationMs renders a duration as milliseconds for the results.
func durationMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
