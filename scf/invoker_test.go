package scf_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// startServer serves a reference server on an in-memory network, for
// testing/synctest bubbles.
func startServer(t *testing.T, opts ...scftest.Option) (*scftest.Server, *scf.Client) {
	t.Helper()
	srv := scftest.Start(t, append([]scftest.Option{scftest.WithListener(memnet.Listen("scf.test"))}, opts...)...)
	c := srv.Client()
	t.Cleanup(c.CloseIdleConnections)
	return srv, c
}

// gate blocks every execution until released and notes when each started.
type gate struct {
	mu      sync.Mutex
	started []time.Time
	release chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) handler(ctx context.Context, inv *scftest.Invocation) (string, error) {
	g.mu.Lock()
	g.started = append(g.started, inv.Now())
	g.mu.Unlock()
	select {
	case <-g.release:
		return "ok", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.started)
}

func countCalls(srv *scftest.Server, action string) int {
	n := 0
	for _, e := range srv.Events() {
		if e.Kind == "call" && e.Action == action {
			n++
		}
	}
	return n
}

// 600 simultaneous invocations of a function that runs until released:
// the Invoker sends 500 as new instances (its start budget, the region's
// burst) and holds the other 100 back instead of sending them into 429s;
// with no instance freed, they start when the first starts leave the
// budget's window, ScaleOutWindow later, and all 600 complete with no 429.
func TestInvokerSpreadsTheBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t, scftest.WithColdStart(0))
		g := newGate()
		if err := srv.AddFunction(scftest.FunctionConfig{Name: "burst", Timeout: 300 * time.Second, Handler: g.handler}); err != nil {
			t.Fatal(err)
		}
		iv, err := scf.NewInvoker(c)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		var wg sync.WaitGroup
		var overrun atomic.Int64
		done := make(chan time.Time, 600)
		for range 600 {
			wg.Go(func() {
				out, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "burst"})
				if err != nil {
					t.Error(err)
					return
				}
				overrun.Add(int64(out.Overruns))
				done <- time.Now()
			})
		}
		synctest.Wait()
		st := iv.Stats()
		if g.count() != 500 || st.Met429 != 0 || st.InFlight != 500 || st.Waiting != 100 || st.Starts != 500 || srv.Counters().ElasticStarts != 500 {
			t.Fatalf("at once: %d running, stats %+v, counters %+v", g.count(), st, srv.Counters())
		}
		if n, _ := iv.Limit("burst"); n != 1000 {
			t.Fatalf("discovered limit %d, want 128,000 MB ÷ 128 MB = 1000", n)
		}
		time.Sleep(time.Until(t0.Add(scf.ScaleOutWindow - time.Millisecond)))
		synctest.Wait()
		if g.count() != 500 {
			t.Fatalf("%d running before the window passed", g.count())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if g.count() != 600 || srv.Counters().ElasticStarts != 600 || srv.Counters().Throttled429 != 0 || iv.Stats().Waiting != 0 {
			t.Fatalf("after the window: %d running, counters %+v, stats %+v", g.count(), srv.Counters(), iv.Stats())
		}
		g.mu.Lock()
		var first, second int
		for _, at := range g.started {
			switch at.Sub(t0) {
			case 0:
				first++
			case scf.ScaleOutWindow:
				second++
			}
		}
		g.mu.Unlock()
		if first != 500 || second != 100 {
			t.Fatalf("started %d at once and %d a window later", first, second)
		}
		close(g.release)
		wg.Wait()
		close(done)
		for at := range done {
			if d := at.Sub(t0); d != scf.ScaleOutWindow {
				t.Fatalf("a call completed at %v", d)
			}
		}
		st = iv.Stats()
		if overrun.Load() != 0 || st.Succeeded != 600 || st.Met429 != 0 || st.InFlight != 0 || st.Waiting != 0 {
			t.Fatalf("%d overruns, stats %+v", overrun.Load(), st)
		}
		if n := countCalls(srv, "GetReservedConcurrencyConfig"); n != 1 {
			t.Fatalf("the limit was discovered %d times", n)
		}
	})
}

// The Invoker keeps a function's calls in flight under its reserved quota
// ÷ memory, so the server never has to answer 432.
func TestInvokerKeepsUnderTheReservedLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t, scftest.WithColdStart(0))
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "capped", MemorySizeMB: 256, Timeout: 60 * time.Second, Handler: g.handler})
		ctx := t.Context()
		if _, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "capped", ReservedConcurrencyMem: 512}); err != nil {
			t.Fatal(err)
		}
		iv, _ := scf.NewInvoker(c)
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				if _, err := iv.Invoke(ctx, &scf.InvokerInput{FunctionName: "capped"}); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		if g.count() != 2 || iv.InFlight("capped") != 2 || iv.Stats().Waiting != 4 {
			t.Fatalf("%d running, %d in flight, stats %+v", g.count(), iv.InFlight("capped"), iv.Stats())
		}
		close(g.release)
		wg.Wait()
		if n := srv.Counters().Throttled432; n != 0 || iv.Stats().Succeeded != 6 {
			t.Fatalf("%d × 432, stats %+v", n, iv.Stats())
		}
	})
}

// With a limit set above what the quota allows, the 432s that come back are
// retried with backoff until they fit.
func TestInvokerRetries432(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		srv.AddFunction(scftest.FunctionConfig{Name: "tight", Behavior: &scftest.Behavior{Duration: 2 * time.Second, Result: "ok"}})
		ctx := t.Context()
		c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "tight", ReservedConcurrencyMem: 128})
		iv, _ := scf.NewInvoker(c, scf.WithConcurrencyLimit("tight", 4))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := iv.Invoke(ctx, &scf.InvokerInput{FunctionName: "tight"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		st := iv.Stats()
		if st.Succeeded != 4 || st.Met432 == 0 || st.Absorbed432 != st.Met432 || srv.Counters().Throttled432 != st.Met432 {
			t.Fatalf("stats %+v, counters %+v", st, srv.Counters())
		}
	})
}

// 433, 434 and user-code errors are not retried unless the call is marked
// idempotent; then it gets two more tries.
func TestInvokerExecutionErrorsNotRetriedUnlessIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		var runs atomic.Int64
		srv.AddFunction(scftest.FunctionConfig{Name: "bad", Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			runs.Add(1)
			switch inv.Event {
			case `"timeout"`:
				return "", scftest.Fail(scf.StatusTimeLimitReached, "too slow")
			case `"oom"`:
				return "", scftest.Fail(scf.StatusMemoryLimitReached, "too big")
			}
			return "", errors.New("user bug")
		}})
		iv, _ := scf.NewInvoker(c, scf.WithDefaultConcurrencyLimit(10))
		for _, tc := range []struct {
			event      string
			status     int
			idempotent bool
			runs       int64
		}{
			{`"timeout"`, scf.StatusTimeLimitReached, false, 1},
			{`"oom"`, scf.StatusMemoryLimitReached, false, 1},
			{`"bug"`, scf.StatusUserCodeException, false, 1},
			{`"timeout"`, scf.StatusTimeLimitReached, true, 3},
			{`"bug"`, scf.StatusUserCodeException, true, 3},
		} {
			runs.Store(0)
			_, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "bad", Event: tc.event, Idempotent: tc.idempotent})
			if scf.FunctionStatus(err) != tc.status || runs.Load() != tc.runs {
				t.Errorf("%s idempotent=%v: %v after %d runs, want %d after %d", tc.event, tc.idempotent, err, runs.Load(), tc.status, tc.runs)
			}
		}
		if n := countCalls(srv, "GetReservedConcurrencyConfig"); n != 0 {
			t.Fatalf("discovery ran despite WithDefaultConcurrencyLimit: %d", n)
		}
	})
}

// A function with reserved concurrency 0 is disabled: the Invoker says 432
// without sending anything.
func TestInvokerDisabledFunction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		srv.AddFunction(scftest.FunctionConfig{Name: "off"})
		c.PutReservedConcurrencyConfig(t.Context(), &scf.PutReservedConcurrencyConfigInput{FunctionName: "off", ReservedConcurrencyMem: 0})
		iv, _ := scf.NewInvoker(c)
		for range 3 {
			_, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "off"})
			if scf.FunctionStatus(err) != scf.StatusResourceLimitReached {
				t.Fatalf("%v", err)
			}
		}
		if n := countCalls(srv, "InvokeFunction"); n != 0 {
			t.Fatalf("%d invocations sent", n)
		}
		// After the reservation is deleted and the limit forgotten, calls go.
		c.DeleteReservedConcurrencyConfig(t.Context(), &scf.DeleteReservedConcurrencyConfigInput{FunctionName: "off"})
		iv.ForgetLimit("off")
		if _, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "off"}); err != nil {
			t.Fatal(err)
		}
	})
}

// When a call's context ends, it stops waiting and gives its slot back.
func TestInvokerContextEndsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "slow", Timeout: 300 * time.Second, Handler: g.handler})
		iv, _ := scf.NewInvoker(c, scf.WithConcurrencyLimit("default/slow", 1))

		ctx1, cancel1 := context.WithCancel(t.Context())
		first := make(chan error, 1)
		go func() {
			_, err := iv.Invoke(ctx1, &scf.InvokerInput{FunctionName: "slow"})
			first <- err
		}()
		synctest.Wait()
		ctx2, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel2()
		_, err := iv.Invoke(ctx2, &scf.InvokerInput{FunctionName: "slow"})
		if !errors.Is(err, context.DeadlineExceeded) || iv.InFlight("slow") != 1 || g.count() != 1 {
			t.Fatalf("waiting call: %v, %d in flight", err, iv.InFlight("slow"))
		}
		cancel1()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Fatalf("running call: %v", err)
		}
		if iv.InFlight("slow") != 0 || iv.Stats().InFlight != 0 || iv.Stats().Waiting != 0 {
			t.Fatalf("slots not given back: %d, %+v", iv.InFlight("slow"), iv.Stats())
		}
		close(g.release)
		if _, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "slow"}); err != nil {
			t.Fatal(err)
		}

		// A call waiting for the next minute after a 429 stops with its context.
		srv2, c2 := startServer(t, scftest.WithScaleOutRate(1))
		srv2.AddFunction(scftest.FunctionConfig{Name: "one", Timeout: 300 * time.Second, Handler: newGate().handler})
		iv2, _ := scf.NewInvoker(c2)
		go iv2.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "one"})
		synctest.Wait()
		ctx3, cancel3 := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel3()
		start := time.Now()
		_, err = iv2.Invoke(ctx3, &scf.InvokerInput{FunctionName: "one"})
		var fe *scf.FunctionError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &fe) || fe.StatusCode != scf.StatusResourceLimit || time.Since(start) != 5*time.Second {
			t.Fatalf("after a 429: %v after %v", err, time.Since(start))
		}
	})
}

// An asynchronous call returns its FunctionRequestId at once.
func TestInvokerAsyncReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t, scftest.WithColdStart(0))
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "bg", Timeout: 300 * time.Second, Handler: g.handler})
		iv, _ := scf.NewInvoker(c)
		out, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "bg", Event: `{"job":1}`, Async: true})
		if err != nil || out.Result.FunctionRequestId == "" {
			t.Fatalf("%+v %v", out, err)
		}
		synctest.Wait()
		st, err := c.GetRequestStatus(t.Context(), &scf.GetRequestStatusInput{FunctionName: "bg", FunctionRequestId: out.Result.FunctionRequestId})
		if err != nil || st.Data[0].RetCode != scf.RetCodeRunning || g.count() != 1 {
			t.Fatalf("%+v %v", st, err)
		}
		close(g.release)
		if n := countCalls(srv, "GetReservedConcurrencyConfig"); n != 0 {
			t.Fatalf("an async call discovered the limit")
		}
	})
}

// WithSyncAPI(APIInvoke) makes synchronous calls with Invoke.
func TestInvokerWithInvokeAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		srv.AddFunction(scftest.FunctionConfig{Name: "fn"})
		iv, _ := scf.NewInvoker(c, scf.WithSyncAPI(scf.APIInvoke), scf.WithConcurrencyLimit("fn", 5))
		out, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "fn", Event: `{"x":1}`})
		if err != nil || out.Result.RetMsg != `{"x":1}` || out.Attempts != 1 {
			t.Fatalf("%+v %v", out, err)
		}
		if countCalls(srv, "Invoke") != 1 || countCalls(srv, "InvokeFunction") != 0 {
			t.Fatal("wrong action")
		}
	})
}

func TestInvokerOptions(t *testing.T) {
	c, _ := scf.NewClient(scf.WithCredentials(scf.StaticCredentials("id", "key")))
	for _, opt := range []scf.InvokerOption{
		scf.WithConcurrencyLimit("fn", 0), scf.WithConcurrencyLimit("9bad", 3), scf.WithDefaultConcurrencyLimit(0),
		scf.WithSyncAPI("Call"), scf.WithInvokerRetry(scf.InvokerRetry{MinWait: -1}), scf.WithInvokerClock(nil), scf.WithInvokerLogger(nil),
		scf.WithScaleOutRate(0), scf.WithWarmRetention(0),
	} {
		if _, err := scf.NewInvoker(c, opt); err == nil {
			t.Errorf("option accepted: %p", opt)
		}
	}
	if _, err := scf.NewInvoker(nil); err == nil {
		t.Error("nil client accepted")
	}
	iv, _ := scf.NewInvoker(c)
	var ve *scf.ValidationError
	if _, err := iv.Invoke(context.Background(), &scf.InvokerInput{FunctionName: "fn", Event: "{", Async: true}); !errors.As(err, &ve) || ve.Field != "Event" {
		t.Errorf("bad event: %v", err)
	}
	if _, err := iv.Invoke(context.Background(), nil); !errors.As(err, &ve) {
		t.Errorf("nil input: %v", err)
	}
	if err := iv.SetConcurrencyLimit("fn", 0); err == nil {
		t.Error("limit 0 accepted")
	}
}
