package scf_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

func provision(t *testing.T, c *scf.Client, fn string, n uint64) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: fn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
		FunctionName: fn, Qualifier: "1", VersionProvisionedConcurrencyNum: n}); err != nil {
		t.Fatal(err)
	}
}

// Provisioned concurrency 250 reaches Done after three minutes of clock;
// the waiter returns then, having polled with growing pauses.
func TestWaitProvisionedConcurrencyReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		srv.AddFunction(scftest.FunctionConfig{Name: "warm"})
		provision(t, c, "warm", 250)
		start := time.Now()
		info, err := c.WaitProvisionedConcurrencyReady(t.Context(), &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "warm", Qualifier: "1"})
		if err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		if info.Status != scf.ProvisionedStatusDone || info.AvailableProvisionedConcurrencyNum != 250 || waited < 3*time.Minute || waited > 3*time.Minute+36*time.Second {
			t.Fatalf("%+v after %v", info, waited)
		}
		if polls := countCalls(srv, "GetProvisionedConcurrencyConfig"); polls < 5 || polls > 20 {
			t.Fatalf("%d polls", polls)
		}
	})
}

// The context bounds the wait; the error names the last status seen.
func TestWaitProvisionedBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		srv.AddFunction(scftest.FunctionConfig{Name: "warm"})
		provision(t, c, "warm", 250)
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "warm", Qualifier: "1"},
			scf.WithWaitDelay(time.Second, 10*time.Second))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "InProgress, 100 of 250 available") || time.Since(start) != 90*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
	})
}

// Failed becomes a *ProvisionedConcurrencyError carrying StatusReason; no
// configuration at all is ErrNoProvisionedConcurrency.
func TestWaitProvisionedFailedAndMissing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "busy", Timeout: 600 * time.Second, Handler: g.handler})
		ctx := t.Context()
		c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "busy", ReservedConcurrencyMem: 128})
		var wg sync.WaitGroup
		wg.Go(func() { c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "busy"}) })
		synctest.Wait()
		provision(t, c, "busy", 1)
		_, err := c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "busy", Qualifier: "1"})
		var pe *scf.ProvisionedConcurrencyError
		if !errors.As(err, &pe) || pe.StatusReason == "" || pe.Qualifier != "1" || !strings.Contains(err.Error(), pe.StatusReason) {
			t.Fatalf("%v", err)
		}
		close(g.release)
		wg.Wait()

		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "busy"})
		_, err = c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "busy", Qualifier: "2"})
		if !errors.Is(err, scf.ErrNoProvisionedConcurrency) {
			t.Fatalf("no configuration: %v", err)
		}
		_, err = c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "busy", Qualifier: "9"})
		if !scf.HasCode(err, scf.CodeVersionNotFound) {
			t.Fatalf("unknown version: %v", err)
		}
		_, err = c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "busy"})
		var ve *scf.ValidationError
		if !errors.As(err, &ve) || ve.Field != "Qualifier" {
			t.Fatalf("no qualifier: %v", err)
		}
		if _, err := c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "busy", Qualifier: "1"},
			scf.WithWaitDelay(time.Minute, time.Second)); err == nil {
			t.Fatal("bad delays accepted")
		}
	})
}

// The waiter can follow a manual model clock.
func TestWaitWithModelClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t, scftest.WithManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
		srv.AddFunction(scftest.FunctionConfig{Name: "warm"})
		provision(t, c, "warm", 150)
		done := make(chan error, 1)
		go func() {
			_, err := c.WaitProvisionedConcurrencyReady(t.Context(), &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "warm", Qualifier: "1"},
				scf.WithWaitClock(srv.Clock()))
			done <- err
		}()
		for i := 0; len(done) == 0; i++ {
			synctest.Wait() // the waiter sleeps on the model clock
			if i > 1000 {
				t.Fatal("the waiter never finished")
			}
			srv.Advance(5 * time.Second)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if now := srv.Now(); now.Before(time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)) {
			t.Fatalf("done at model time %v, before two minutes", now)
		}
	})
}
