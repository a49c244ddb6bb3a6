// Command reconnect shows the CAR session manager's reconnect window, in
// real time against the embedded reference servers:
//
//  1. a user starts and its client connects its heartbeat;
//  2. the network drops and comes back within the reconnect wait: the user
//     keeps the same concurrency and nothing is released;
//  3. the network drops for longer than the wait: the manager calls
//     DestroySession once, CAR cleans the concurrency up, and the user's
//     next start is a fresh ApplyConcurrent.
//
// Durations are flags, short by default:
//
//	go run ./examples/reconnect -wait 2s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/examples/internal/demo"
)

func main() {
	wait := flag.Duration("wait", 2*time.Second, "the reconnect wait: how long a vanished client keeps its concurrency")
	flag.Parse()
	if *wait < 500*time.Millisecond {
		fmt.Fprintln(os.Stderr, "reconnect: -wait must be at least 500ms")
		os.Exit(2)
	}
	if err := run(*wait); err != nil {
		fmt.Fprintln(os.Stderr, "reconnect:", err)
		os.Exit(1)
	}
}

func run(wait time.Duration) error {
	ctx := context.Background()
	tl := demo.NewTimeline()
	env, err := demo.Start(tl, car.WithReconnectWait(wait))
	if err != nil {
		return err
	}
	defer env.Close()
	const user = "alice"
	start := car.StartRequest{UserId: user, UserIp: "203.0.113.7", ClientSession: "client-session-from-TCGSDK"}

	tl.Printf("backend: Start(%s): ApplyConcurrent, then CreateSession (reconnect wait %v)", user, wait)
	lease, err := env.Manager.Start(ctx, start)
	if err != nil {
		return err
	}
	tl.Printf("CAR: %s holds %s", user, env.Concurrency(user))
	b, err := env.Connect(ctx, tl, lease)
	if err != nil {
		return err
	}
	first, _ := env.CAR.User(user)

	tl.Printf("--- the network drops, and comes back after half the wait")
	b.Cut()
	time.Sleep(wait / 2)
	if err := b.Restore(ctx); err != nil {
		return err
	}
	time.Sleep(wait / 2) // past where the wait would have ended
	now, _ := env.CAR.User(user)
	same, destroyed := now.ConcurrencyId == first.ConcurrencyId, env.Manager.Snapshot().DestroyCalls
	tl.Printf("CAR: %s holds %s — same concurrency: %v; DestroySession calls so far: %d",
		user, env.Concurrency(user), same, destroyed)
	if !same || destroyed != 0 {
		return fmt.Errorf("a reconnect within the wait should keep %s and call no DestroySession", first.ConcurrencyId)
	}

	tl.Printf("--- the network drops for longer than the wait")
	b.Cut()
	time.Sleep(wait + 500*time.Millisecond)
	tl.Printf("CAR: %s holds %s", user, env.Concurrency(user))
	b.Close()
	demo.Settle()

	tl.Printf("--- %s comes back: a fresh start", user)
	lease, err = env.Manager.Start(ctx, start)
	if err != nil {
		return err
	}
	tl.Printf("CAR: %s holds %s, on a new lease (heartbeat session %s)", user, env.Concurrency(user), lease.HeartbeatSession)
	snap := env.Manager.Snapshot()
	tl.Printf("manager: active %d, released %v, DestroySession calls %d", snap.Active, snap.Released, snap.DestroyCalls)
	if snap.DestroyCalls != 1 {
		return fmt.Errorf("a drop past the wait should call DestroySession once, not %d times", snap.DestroyCalls)
	}
	return nil
}
