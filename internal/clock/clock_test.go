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

// Timers that come and go (an execution's time limit, stopped when it
// ends) leave the goroutine sleeping to a time nothing is due at; every
// timer still fires at its due time, whether it is due before or after
// that time.
func TestRunningClockTimersThatComeAndGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New()
		defer c.Close()
		start := time.Now()
		var mu sync.Mutex
		fired := map[string]time.Duration{}
		at := func(name string) func() {
			return func() { mu.Lock(); fired[name] = time.Since(start); mu.Unlock() }
		}
		for range 100 {
			c.AfterFunc(time.Minute, at("stopped")).Stop()
		}
		c.AfterFunc(2*time.Minute, at("after")) // due after the time the goroutine sleeps to
		c.AfterFunc(30*time.Second, at("before"))
		synctest.Wait()
		c.AfterFunc(time.Hour, at("later"))
		c.AfterFunc(0, at("now"))
		time.Sleep(2 * time.Hour)
		want := map[string]time.Duration{"before": 30 * time.Second, "after": 2 * time.Minute, "later": time.Hour, "now": 0}
		mu.Lock()
		defer mu.Unlock()
		if len(fired) != len(want) {
			t.Fatalf("fired %v, want %v", fired, want)
		}
		for k, v := range want {
			if fired[k] != v {
				t.Fatalf("%s fired after %v, want %v (all: %v)", k, fired[k], v, fired)
			}
		}
	})
}
