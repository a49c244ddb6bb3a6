// Command refserver runs the CAR and SCF reference servers as one process,
// for clients in other languages (or other Go processes) to test against.
//
// API calls go to the service their signature names (the credential
// scope; or the first label of the Host, which is what the Node SDK signs
// with, so point it at car.localhost:PORT or scf.localhost:PORT). The CAR
// client stream that a ServerSession opens is a WebSocket at /car/stream.
//
//	go run ./examples/refserver -addr 127.0.0.1:9000
//
// The credentials are test values: SecretId AKIDREFSERVER00000001 and
// SecretKey refserver-test-secret-key, unless -secret-id and -secret-key
// say otherwise. Only the SecretId is printed at start.
//
// One client cannot take the process down: it has the reference servers'
// limits (package apiserver): header, read, write and idle timeouts, at
// most -max-conns connections, and a cap on large bodies read at once.
//
// An SCF function's behaviour comes from its environment variables
// SCFTEST_DURATION, SCFTEST_MEMORY, SCFTEST_RESULT, SCFTEST_FAIL_STATUS and
// SCFTEST_FAIL_MESSAGE (see package scftest).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// Test credentials: the process serves loopback only.
const (
	defaultSecretID  = "AKIDREFSERVER00000001"
	defaultSecretKey = "refserver-test-secret-key"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends. ready, if set, gets the listening address.
func run(ctx context.Context, args []string, out io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("refserver", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on (loopback)")
	secretID := fs.String("secret-id", defaultSecretID, "SecretId clients sign with")
	secretKey := fs.String("secret-key", defaultSecretKey, "SecretKey clients sign with")
	projects := fs.String("car-projects", cartest.DefaultProjectId, "comma-separated CAR ProjectIds")
	concurrencies := fs.Int("car-concurrencies", cartest.DefaultPackSize, "concurrencies of the CAR pack bound to every project")
	reconnectWait := fs.Duration("car-reconnect-wait", cartest.DefaultReconnectWait, "CAR reconnect wait of every project (40s to 1h)")
	lockTime := fs.Duration("car-lock-time", cartest.DefaultLockTime, "how long an ApplyConcurrent lock waits for CreateSession")
	cleanup := fs.Duration("car-cleanup", cartest.DefaultCleanupDelay, "CAR cleanup delay before a released concurrency is idle")
	quota := fs.Int64("scf-quota-mb", 128_000, "SCF account concurrency quota in MB (64000 in the smaller regions)")
	retention := fs.Duration("scf-idle-retention", 10*time.Minute, "how long an idle SCF instance is kept for reuse")
	maxConns := fs.Int("max-conns", apiserver.DefaultLimits.MaxConns, "connections open at once, CAR client streams included; the longest-idle one is closed to make room")
	noLimits := fs.Bool("no-rate-limits", false, "turn the documented per-action rate limits off (load tests)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := loopbackOnly(*addr); err != nil {
		return err
	}

	carOpts := []cartest.Option{
		cartest.WithCredentials(*secretID, *secretKey),
		cartest.WithStreamPath("/car/stream"),
		cartest.WithLockTime(*lockTime),
		cartest.WithCleanupDelay(*cleanup),
	}
	var ids []string
	for id := range strings.SplitSeq(*projects, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
			carOpts = append(carOpts, cartest.WithProject(cartest.Project{ProjectId: id, ReconnectWait: *reconnectWait}))
		}
	}
	if len(ids) == 0 {
		return errors.New("-car-projects: at least one ProjectId is required")
	}
	carOpts = append(carOpts, cartest.WithPack(cartest.Pack{PackId: "pack", Size: *concurrencies, Projects: ids}))
	scfOpts := []scftest.Option{
		scftest.WithCredentials(*secretID, *secretKey),
		scftest.WithAccountQuota(*quota),
		scftest.WithIdleRetention(*retention),
	}
	if *noLimits {
		carOpts = append(carOpts, cartest.WithoutRateLimits())
		scfOpts = append(scfOpts, scftest.WithoutRateLimits())
	}
	carSrv, err := cartest.NewUnstartedServer(carOpts...)
	if err != nil {
		return fmt.Errorf("car: %w", err)
	}
	defer carSrv.Close()
	scfSrv, err := scftest.NewUnstartedServer(scfOpts...)
	if err != nil {
		return fmt.Errorf("scf: %w", err)
	}
	defer scfSrv.Close()

	mux := apiserver.NewMux()
	mux.Handle("car", carSrv, carSrv)
	mux.Handle("scf", scfSrv, nil)

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// The reference servers' limits (apiserver.DefaultLimits), with the
	// write timeout above the longest synchronous SCF execution.
	limits := apiserver.Limits{WriteTimeout: scftest.DefaultWriteTimeout, MaxConns: *maxConns}
	ln := limits.Listener(l)
	hs := limits.HTTPServer(mux, nil, ln)
	fmt.Fprintf(out, "refserver: CAR %s and SCF %s on http://%s (SecretId %s); CAR projects %s with %d concurrencies; stream at ws://%s/car/stream\n",
		"2022-01-10", "2018-04-16", l.Addr(), *secretID, strings.Join(ids, ","), *concurrencies, l.Addr())
	if ready != nil {
		ready(l.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	carSrv.Close() // closes the hijacked client streams too
	scfSrv.Close()
	return hs.Shutdown(shutdown)
}

// loopbackOnly refuses to serve beyond this machine: the credentials are
// test values.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: must be a loopback address (127.0.0.0/8, ::1 or localhost)", addr)
	}
	return nil
}
