// Quickstart walks one user through a CAR session and prints a timeline:
// the backend locks a concurrency and creates a session, the user's client
// connects, drops, and comes back within the reconnect wait to the same
// concurrency, and the backend destroys the session. After each step it
// asks CAR how many concurrencies are running.
//
// By default it runs against the embedded reference server (car/cartest) on
// a manual clock, so the minutes of the timeline pass at once and the output
// is always the same:
//
//	go run ./examples/quickstart
//
// With -live it calls the real CAR API, with credentials from
// TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY (and
// TENCENTCLOUD_SESSION_TOKEN) or ~/.tencentcloud/credentials. A real client
// connects with TCGSDK in a browser, so the client steps are skipped:
//
//	go run ./examples/quickstart -live -project cap-abcdefgh -ip 203.0.113.7
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

func main() {
	live := flag.Bool("live", false, "call the real CAR API instead of the embedded reference server")
	project := flag.String("project", "", "the CAR project id (cap-…); required with -live")
	user := flag.String("user", "alice", "the UserId")
	ip := flag.String("ip", "203.0.113.7", "the user's public IP address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *live {
		err = runLive(ctx, os.Stdout, *project, *user, *ip)
	} else {
		err = runEmbedded(ctx, os.Stdout, *user, *ip)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// runEmbedded runs the whole lifecycle against the reference server.
func runEmbedded(ctx context.Context, w io.Writer, user, ip string) error {
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	srv, err := cartest.NewServer(cartest.WithManualClock(start))
	if err != nil {
		return err
	}
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	fmt.Fprintf(w, "CAR session of %s on the embedded reference server (project %s, reconnect wait %v)\n\n",
		user, cartest.DefaultProjectId, cartest.DefaultReconnectWait)
	tl := &timeline{w: w, client: client, project: cartest.DefaultProjectId, start: start, now: srv.Now}

	// The backend: what a "start the app" request of the user does.
	startApp := func(moment, applied string) (*cartest.Stream, error) {
		if _, err := client.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: user, UserIp: ip, ProjectId: cartest.DefaultProjectId}); err != nil {
			return nil, err
		}
		if err := tl.step(ctx, moment, "ApplyConcurrent", applied); err != nil {
			return nil, err
		}
		session, err := client.CreateSession(ctx, &car.CreateSessionInput{UserId: user, UserIp: ip})
		if err != nil {
			return nil, err
		}
		if err := tl.step(ctx, "", "CreateSession", "the ServerSession goes to the client"); err != nil {
			return nil, err
		}
		// The user's browser: TCGSDK.start(serverSession).
		srv.Advance(2 * time.Second)
		stream, err := srv.DialStream(ctx, session.ServerSession)
		if err != nil {
			return nil, err
		}
		return stream, tl.step(ctx, "", "client connects", "streaming from "+stream.ConcurrencyId())
	}

	first, err := startApp("user starts", "a concurrency is locked for "+user)
	if err != nil {
		return err
	}
	srv.Advance(58 * time.Second)
	first.Drop()
	if err := tl.step(ctx, "network lost", "client drops", fmt.Sprintf("CAR keeps %s for %v", first.ConcurrencyId(), cartest.DefaultReconnectWait)); err != nil {
		return err
	}

	srv.Advance(60 * time.Second)
	second, err := startApp("user is back", user+" still holds "+first.ConcurrencyId())
	if err != nil {
		return err
	}
	if second.ConcurrencyId() != first.ConcurrencyId() {
		return fmt.Errorf("came back to %s, not %s", second.ConcurrencyId(), first.ConcurrencyId())
	}
	fmt.Fprintf(w, "%39s(the same concurrency: the app kept its state)\n", "")

	srv.Advance(58 * time.Second)
	if _, err := client.DestroySession(ctx, &car.DestroySessionInput{UserId: user}); err != nil {
		return err
	}
	if err := tl.step(ctx, "user quits", "DestroySession", "the client is disconnected; cleanup runs"); err != nil {
		return err
	}
	srv.Advance(cartest.DefaultCleanupDelay)
	return tl.step(ctx, "", "cleanup done", "the concurrency is idle again")
}

// runLive runs the API steps against the real service.
func runLive(ctx context.Context, w io.Writer, project, user, ip string) error {
	if project == "" {
		return errors.New("-live needs -project cap-…, the CAR project to use")
	}
	client, err := car.NewClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	fmt.Fprintf(w, "CAR session of %s on %s (project %s)\n\n", user, car.DefaultEndpoint, project)
	start := time.Now()
	tl := &timeline{w: w, client: client, project: project, start: start, now: time.Now}

	if _, err := client.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: user, UserIp: ip, ProjectId: project}); err != nil {
		return err
	}
	// From here on the concurrency is ours: give it back whatever happens.
	destroyed := false
	defer func() {
		if !destroyed {
			client.DestroySession(context.WithoutCancel(ctx), &car.DestroySessionInput{UserId: user})
		}
	}()
	if err := tl.step(ctx, "user starts", "ApplyConcurrent", "a concurrency is locked for "+user); err != nil {
		return err
	}
	if _, err := client.CreateSession(ctx, &car.CreateSessionInput{UserId: user, UserIp: ip}); err != nil {
		return err
	}
	if err := tl.step(ctx, "", "CreateSession", "the ServerSession would go to TCGSDK.start"); err != nil {
		return err
	}
	fmt.Fprintf(w, "%39s(client steps skipped: a real client connects with TCGSDK in a browser)\n", "")
	if _, err := client.DestroySession(ctx, &car.DestroySessionInput{UserId: user}); err != nil {
		return err
	}
	destroyed = true
	return tl.step(ctx, "user quits", "DestroySession", "CAR cleans the concurrency up")
}

// timeline prints one line per step, with the time since the start and
// the counts DescribeConcurrentCount gives after the step.
type timeline struct {
	w       io.Writer
	client  *car.Client
	project string
	start   time.Time
	now     func() time.Time
}

func (tl *timeline) step(ctx context.Context, moment, what, detail string) error {
	count, err := tl.client.DescribeConcurrentCount(ctx, &car.DescribeConcurrentCountInput{ProjectId: tl.project})
	if err != nil {
		return err
	}
	offset := fmt.Sprintf("+%ds", int(tl.now().Sub(tl.start).Round(time.Second)/time.Second))
	fmt.Fprintf(tl.w, "%6s  %-13s %-16s %-46s running %d of %d\n", offset, moment, what, detail, count.Running, count.Total)
	return nil
}
