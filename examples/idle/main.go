// Command idle shows the CAR session manager's idle handling, in real time
// against the embedded reference servers: a user who stops giving input
// gets idle notices at 1× and 2× the idle threshold, like TCGSDK's
// idleThreshold events, and at the release count the manager calls
// DestroySession and tells the client why.
//
// Durations are flags, short by default:
//
//	go run ./examples/idle -threshold 1s -release 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/examples/internal/demo"
	"github.com/tcconcurrency/sdk-go/heartbeat/hbclient"
)

func main() {
	threshold := flag.Duration("threshold", time.Second, "the idle threshold (TCGSDK's idleThreshold; 300s in production)")
	release := flag.Int("release", 3, "release the concurrency at this idle notice")
	active := flag.Duration("active", 1500*time.Millisecond, "how long the user keeps clicking first")
	flag.Parse()
	if *threshold < 100*time.Millisecond || *release < 1 {
		fmt.Fprintln(os.Stderr, "idle: -threshold must be at least 100ms and -release at least 1")
		os.Exit(2)
	}
	if err := run(*threshold, *release, *active); err != nil {
		fmt.Fprintln(os.Stderr, "idle:", err)
		os.Exit(1)
	}
}

func run(threshold time.Duration, release int, active time.Duration) error {
	ctx := context.Background()
	tl := demo.NewTimeline()
	env, err := demo.Start(tl, car.WithIdleThreshold(threshold), car.WithIdleRelease(release))
	if err != nil {
		return err
	}
	defer env.Close()
	const user = "bob"

	tl.Printf("backend: Start(%s) (idle threshold %v, release at notice %d)", user, threshold, release)
	lease, err := env.Manager.Start(ctx, car.StartRequest{UserId: user, UserIp: "198.51.100.4", ClientSession: "client-session"})
	if err != nil {
		return err
	}
	b, err := env.Connect(ctx, tl, lease, hbclient.WithActivityInterval(threshold/4))
	if err != nil {
		return err
	}
	defer b.Close()
	tl.Printf("CAR: %s holds %s", user, env.Concurrency(user))

	tl.Printf("--- %s clicks around for %v: no idle notice", user, active)
	for end := time.Now().Add(active); time.Now().Before(end); time.Sleep(threshold / 5) {
		b.Session.Touch()
	}
	tl.Printf("--- %s stops touching anything", user)
	select {
	case <-b.Session.Done():
	case <-time.After(time.Duration(release+2) * threshold):
		return errors.New("the user was never released")
	}
	time.Sleep(300 * time.Millisecond) // CAR's cleanup
	tl.Printf("CAR: %s holds %s", user, env.Concurrency(user))
	snap := env.Manager.Snapshot()
	tl.Printf("manager: active %d, released %v, DestroySession calls %d", snap.Active, snap.Released, snap.DestroyCalls)
	if snap.Released[car.ReleaseIdle] != 1 || snap.DestroyCalls != 1 {
		return fmt.Errorf("want one idle release and one DestroySession, got %v and %d", snap.Released, snap.DestroyCalls)
	}
	return nil
}
