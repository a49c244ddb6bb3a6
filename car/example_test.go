package car_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// A client for the CAR reference server. Against the real service, leave
// out WithEndpoint and let the credentials come from the environment
// (TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY) or the profile file.
func ExampleNewClient() {
	srv, err := cartest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	cred := srv.Credentials()
	client, err := car.NewClient(
		car.WithEndpoint(srv.URL),
		car.WithCredentials(car.StaticCredentials(cred.SecretId, cred.SecretKey)),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.CloseIdleConnections()

	count, err := client.DescribeConcurrentCount(context.Background(), &car.DescribeConcurrentCountInput{ProjectId: cartest.DefaultProjectId})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("Total %d, Running %d\n", count.Total, count.Running)
	// Output: Total 3, Running 0
}

// A backend starts a user's cloud application (ApplyConcurrent, then
// CreateSession, whose ServerSession goes to the user's TCGSDK.start) and
// ends it with DestroySession.
func ExampleClient_CreateSession() {
	srv, err := cartest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()
	user := "user-42"

	if _, err := client.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: user, UserIp: "203.0.113.7", ProjectId: cartest.DefaultProjectId}); err != nil {
		log.Fatal(err)
	}
	session, err := client.CreateSession(ctx, &car.CreateSessionInput{UserId: user, UserIp: "203.0.113.7"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ServerSession for TCGSDK.start:", session.ServerSession != "")

	count, _ := client.DescribeConcurrentCount(ctx, nil)
	fmt.Println("running:", count.Running)

	if _, err := client.DestroySession(ctx, &car.DestroySessionInput{UserId: user}); err != nil {
		log.Fatal(err)
	}
	held, _ := srv.User(user)
	fmt.Println("after DestroySession:", held.State)
	// Output:
	// ServerSession for TCGSDK.start: true
	// running: 1
	// after DestroySession: cleanup
}

// When every concurrency is busy, ApplyConcurrent fails with
// ResourceNotFound.NoIdle: the backend queues the user and tries again.
func ExampleAPIError() {
	srv, err := cartest.NewServer(cartest.WithPack(cartest.Pack{PackId: "small", Size: 1, Projects: []string{cartest.DefaultProjectId}}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()

	for _, user := range []string{"first", "second"} {
		_, err := client.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: user, UserIp: "203.0.113.7", ProjectId: cartest.DefaultProjectId})
		var apiErr *car.APIError
		switch {
		case err == nil:
			fmt.Println(user, "has a concurrency")
		case errors.As(err, &apiErr) && apiErr.Code == car.CodeNoIdle:
			fmt.Println(user, "waits in the queue:", apiErr.Code)
		default:
			log.Fatal(err)
		}
	}
	// Output:
	// first has a concurrency
	// second waits in the queue: ResourceNotFound.NoIdle
}

// A SessionManager on the CAR reference server, whose only concurrency
// serves one user at a time: the second user waits in the queue (a
// browser would learn its position through the heartbeat) and gets the
// concurrency once the first is stopped. The manager is also the
// http.Handler of the heartbeat endpoint; see package heartbeat.
func ExampleSessionManager() {
	srv, err := cartest.NewServer(
		cartest.WithProject(cartest.Project{ProjectId: "cap-demo"}),
		cartest.WithPack(cartest.Pack{PackId: "pack-1", Size: 1, Projects: []string{"cap-demo"}}),
		cartest.WithCleanupDelay(10*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	mgr, err := car.NewSessionManager(srv.Client(), "cap-demo", car.WithQueuePollInterval(20*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	defer mgr.Shutdown(ctx)

	alice, err := mgr.Start(ctx, car.StartRequest{UserId: "alice", UserIp: "203.0.113.7", ClientSession: "alice-client-session"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice has a ServerSession:", alice.ServerSession != "")
	bob, err := mgr.Start(ctx, car.StartRequest{UserId: "bob", UserIp: "203.0.113.8", ClientSession: "bob-client-session"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob waits at position", bob.QueuePosition)

	if err := mgr.Stop(ctx, "alice"); err != nil {
		log.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	serverSession, err := bob.Wait(waitCtx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob has a ServerSession:", serverSession != "")
	snap := mgr.Snapshot()
	fmt.Println("active:", snap.Active, "released:", snap.Released, "DestroySession calls:", snap.DestroyCalls)
	// Output:
	// alice has a ServerSession: true
	// bob waits at position 1
	// bob has a ServerSession: true
	// active: 1 released: map[stopped:1] DestroySession calls: 1
}
