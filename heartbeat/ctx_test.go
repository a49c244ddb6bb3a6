package heartbeat_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Open, Send, Touch and Release take the caller's context: one that has
// already ended fails them with an error wrapping its cause, and changes
// nothing, with or without a Store.
func TestCancelledContextChangesNothing(t *testing.T) {
	for _, shared := range []bool{false, true} {
		name := "local"
		if shared {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// e is the replica called; with a store, the client
				// connects to another one, so every call goes to the store.
				var e, other *env
				stored := func() int { return 0 }
				if shared {
					cl := newCluster(t, 2)
					e, other = cl.envs[0], cl.envs[1]
					stored = cl.store.Len
				} else {
					e = newEnv(t)
					other = e
				}
				token := e.Open("u1")
				before := stored()

				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				wantCanceled := func(op string, err error) {
					t.Helper()
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("%s with a cancelled ctx: err = %v, want one wrapping context.Canceled", op, err)
					}
				}
				tok, err := e.srv.Open(ctx, "u2")
				wantCanceled("Open", err)
				if tok != "" {
					t.Fatal("Open with a cancelled ctx returned a token")
				}
				wantCanceled("Send", e.srv.Send(ctx, "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 1}))
				wantCanceled("Touch", e.srv.Touch(ctx, "u1"))
				wantCanceled("Release", e.srv.Release(ctx, "u1", "bye"))

				if _, ok := e.srv.Session("u2"); ok {
					t.Fatal("a cancelled Open created the session")
				}
				if got := stored(); got != before {
					t.Fatalf("the store holds %d sessions after the cancelled calls, want %d", got, before)
				}
				// The session was not released: its join token still works,
				// and the cancelled Send queued nothing.
				c, _ := other.join("u1", token)
				if err := e.srv.Send(context.Background(), "u1", heartbeat.Notice{Kind: heartbeat.NoticeQueue, Position: 2}); err != nil {
					t.Fatalf("Send: %v", err)
				}
				if f := c.next(); f.Type != "queue" || f.Position != 2 {
					t.Fatalf("first frame after the welcome = %+v, want the queue notice of position 2", f)
				}
				if _, ok := other.srv.Session("u1"); !ok {
					t.Fatal("the session is gone after a cancelled Release")
				}
				if _, err := e.srv.Open(ctx, "bad id\x00"); errors.Is(err, context.Canceled) {
					t.Fatal("a bad id is reported as a cancelled ctx; the argument's error comes first")
				}
			})
		})
	}
}

// hangingStore is a Store whose Open and End wait until their ctx ends.
type hangingStore struct{ heartbeat.Store }

func (h hangingStore) Open(ctx context.Context, _, _ string, _ heartbeat.Timing) error {
	<-ctx.Done()
	return &heartbeat.StoreError{Op: "open", Err: ctx.Err()}
}

func (h hangingStore) End(ctx context.Context, _, _ string) error {
	<-ctx.Done()
	return &heartbeat.StoreError{Op: "end", Err: ctx.Err()}
}

// A store call waits for the caller's ctx: its deadline, however long, or
// its cancellation; only a ctx without a deadline is capped (5 s).
func TestStoreCallsWaitForTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := heartbeat.NewServer(heartbeat.WithStore(hangingStore{heartbeat.NewMemoryStore().Replica("r0")}))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown(context.Background())

		waited := func(ctx context.Context, call func(context.Context) error) (time.Duration, error) {
			start := time.Now()
			err := call(ctx)
			return time.Since(start), err
		}
		open := func(ctx context.Context) error { _, err := srv.Open(ctx, "u1"); return err }
		release := func(ctx context.Context) error { return srv.Release(ctx, "u1", "bye") }

		for _, call := range []func(context.Context) error{open, release} {
			d, err := waited(context.Background(), call)
			var se *heartbeat.StoreError
			if d != 5*time.Second || !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("without a deadline: waited %v, err %v; want 5s and a *StoreError wrapping context.DeadlineExceeded", d, err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			d, err = waited(ctx, call)
			cancel()
			if d != time.Minute || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("with a 1 min deadline: waited %v, err %v; want 1m0s and context.DeadlineExceeded", d, err)
			}

			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			d, err = waited(ctx, call)
			if d != time.Second || !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled after 1 s: waited %v, err %v; want 1s and context.Canceled", d, err)
			}
		}
	})
}
