package clock

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestManualAdvanceFiresInOrder(t *testing.T) {
	c := NewManual(epoch)
	defer c.Close()
	var mu sync.Mutex
	var fired []string
	record := func(s string) func() { return func() { mu.Lock(); fired = append(fired, s); mu.Unlock() } }
	c.AfterFunc(3*time.Second, record("c"))
	c.AfterFunc(time.Second, record("a"))
	c.AfterFunc(time.Second, record("b")) // same due time: insertion order
	stopped := c.AfterFunc(2*time.Second, record("stopped"))
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports pending only once")
	}
	c.Advance(2 * time.Second)
	if !slices.Equal(fired, []string{"a", "b"}) {
		t.Fatalf("after 2s fired %v", fired)
	}
	if got := c.Now(); !got.Equal(epoch.Add(2 * time.Second)) {
		t.Fatalf("Now = %v", got)
	}
	c.Advance(time.Hour)
	if !slices.Equal(fired, []string{"a", "b", "c"}) {
		t.Fatalf("fired %v", fired)
	}
}

func TestManualStandsStill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewManual(epoch)
		defer c.Close()
		fired := false
		c.AfterFunc(time.Second, func() { fired = true })
		time.Sleep(time.Hour)
		if fired || !c.Now().Equal(epoch) {
			t.Fatal("a manual clock moved on its own")
		}
	})
}

func TestRunningClockFiresOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New()
		defer c.Close()
		start := time.Now()
		fired := make(chan time.Duration, 1)
		c.AfterFunc(90*time.Second, func() { fired <- time.Since(start) })
		time.Sleep(2 * time.Minute)
		if at := <-fired; at != 90*time.Second {
			t.Fatalf("fired after %v, want 90s", at)
		}
		// Advance jumps a running clock too.
		c.Advance(time.Hour)
		if d := time.Until(c.Now()); d != time.Hour {
			t.Fatalf("offset %v after Advance", d)
		}
	})
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewManual(epoch)
		defer c.Close()
		done := make(chan error, 1)
		go func() { done <- c.Sleep(context.Background(), time.Minute) }()
		synctest.Wait()
		c.Advance(59 * time.Second)
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("woke before the minute")
		default:
		}
		c.Advance(time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Sleep(ctx, time.Minute); err != context.Canceled {
			t.Fatalf("Sleep with a cancelled context = %v", err)
		}
	})
}
