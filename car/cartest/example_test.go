package cartest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
)

// A user whose client drops comes back within the reconnect wait and gets
// the same concurrency. The manual clock jumps 89 seconds in no time.
func ExampleServer_Advance() {
	srv, err := cartest.NewServer(cartest.WithManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	client := srv.Client()

	// startApp is what a backend and the user's client do to start.
	startApp := func() *cartest.Stream {
		_, err := client.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "alice", UserIp: "203.0.113.7", ProjectId: cartest.DefaultProjectId})
		if err != nil {
			log.Fatal(err)
		}
		session, err := client.CreateSession(ctx, &car.CreateSessionInput{UserId: "alice", UserIp: "203.0.113.7"})
		if err != nil {
			log.Fatal(err)
		}
		stream, err := srv.DialStream(ctx, session.ServerSession)
		if err != nil {
			log.Fatal(err)
		}
		return stream
	}

	first := startApp()
	fmt.Println("connected to", first.ConcurrencyId())
	first.Drop() // the network goes away

	srv.Advance(cartest.DefaultReconnectWait - time.Second)
	held, _ := srv.User("alice")
	fmt.Printf("after %v: %s, until %s\n", srv.Now().Sub(held.Since), held.State, held.Until.Format("15:04:05"))

	second := startApp()
	fmt.Println("reconnected to", second.ConcurrencyId())
	second.Close()

	for _, e := range srv.Events() {
		if e.Kind != cartest.EventCall {
			fmt.Println(e.Time.Format("15:04:05"), e.Kind)
		}
	}
	// Output:
	// connected to pack-cartest1-1
	// after 1m29s: disconnected, until 00:01:30
	// reconnected to pack-cartest1-1
	// 00:00:00 locked
	// 00:00:00 created
	// 00:00:00 connected
	// 00:00:00 disconnected
	// 00:01:29 reattached
	// 00:01:29 reattached
	// 00:01:29 created
	// 00:01:29 connected
	// 00:01:29 disconnected
}
