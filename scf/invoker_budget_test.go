package scf_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// invokeAll runs n calls of in through iv at once and returns their
// latencies, failing the test on any error.
func invokeAll(t *testing.T, iv *scf.Invoker, n int, in scf.InvokerInput) []time.Duration {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var out []time.Duration
	t0 := time.Now()
	for range n {
		wg.Go(func() {
			_, err := iv.Invoke(t.Context(), &in)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("%s: %v", in.FunctionName, err)
				return
			}
			out = append(out, time.Since(t0))
		})
	}
	wg.Wait()
	return out
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func addTenSecond(t *testing.T, srv *scftest.Server, name string) {
	t.Helper()
	if err := srv.AddFunction(scftest.FunctionConfig{Name: name, Timeout: time.Minute,
		Behavior: &scftest.Behavior{Duration: 10 * time.Second, Result: `"ok"`}}); err != nil {
		t.Fatal(err)
	}
}

// Someone else spent 300 of the account's 500 starts: of the Invoker's 400
// calls, 200 meet 429. Each goes back to the head of the line and takes
// an instance one of the Invoker's own calls frees 10 s later, instead of
// waiting for the next minute; the probes of the budget meanwhile go one
// at a time.
func TestInvokerAfter429WaitsForAWarmInstance(t *testing.T) {
	t.Parallel() // the heaviest tests of the package overlap
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "other", Timeout: 300 * time.Second, Handler: g.handler})
		addTenSecond(t, srv, "work")
		var others sync.WaitGroup
		for range 300 {
			others.Go(func() { c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: "other"}) })
		}
		time.Sleep(5 * time.Second) // past any cold start
		synctest.Wait()
		if g.count() != 300 {
			t.Fatalf("%d others running", g.count())
		}

		iv, _ := scf.NewInvoker(c)
		lat := invokeAll(t, iv, 400, scf.InvokerInput{FunctionName: "work"})
		st := iv.Stats()
		if len(lat) != 400 || st.Succeeded != 400 {
			t.Fatalf("%d done, stats %+v", len(lat), st)
		}
		// Two runs of 10 s and a cold start, against 55 s to the minute.
		if m := maxOf(lat); m > 25*time.Second {
			t.Errorf("the last call took %v: the calls turned away did not take the instances freed at 10 s", m)
		}
		// At most the 200 the server could not start (fewer if the first
		// 429 came back before the last calls were sent), then a few probes
		// before the instances freed.
		if st.Met429 == 0 || st.Met429 > 205 || st.Absorbed429 != st.Met429 {
			t.Errorf("%d × 429 (%d absorbed), want at most 200 and a probe per second or so", st.Met429, st.Absorbed429)
		}
		if n := srv.Counters().ElasticStarts; n != 500 {
			t.Errorf("%d instances started, want the 500 of the burst", n)
		}
		close(g.release)
		others.Wait()
	})
}

// After a 429 with nothing of its own running, the Invoker does not send
// the calls waiting for the budget into more 429s: it probes one call at a
// time, with growing pauses, until the account's burst has room again.
func TestInvokerProbesTheBudgetAfter429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t, scftest.WithScaleOutRate(10))
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "other", Timeout: 300 * time.Second, Handler: g.handler})
		addTenSecond(t, srv, "work")
		var others sync.WaitGroup
		for range 10 {
			others.Go(func() { c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: "other"}) })
		}
		synctest.Wait()

		iv, _ := scf.NewInvoker(c) // its budget (500) is not the server's (10)
		t0 := time.Now()
		var lat []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			lat = invokeAll(t, iv, 20, scf.InvokerInput{FunctionName: "work"})
		}()
		synctest.Wait()
		// The Invoker thinks it has 500 starts: it sends calls until the
		// first 429 comes back, and then none.
		first := iv.Stats()
		if first.Met429 == 0 || first.Met429 > 20 || first.Waiting != 20 || first.InFlight != 0 {
			t.Fatalf("at once: %+v", first)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		probes := iv.Stats().Met429 - first.Met429
		if probes < 3 || probes > 8 || iv.Stats().InFlight != 0 {
			t.Errorf("%d probes in 59 s, want one at a time with growing pauses (1 s, 2 s, 4 s … up to 30 s), %+v", probes, iv.Stats())
		}
		<-done
		st := iv.Stats()
		if len(lat) != 20 || st.Succeeded != 20 {
			t.Fatalf("stats %+v", st)
		}
		// The server opened 10 starts at 60 s, which the next probe finds
		// (at most MaxWait, 30 s, later) and holds ReplyWindow; the calls
		// beyond those 10 then take the instances they free, 10 s (and a
		// cold start) later.
		if m := maxOf(lat); m > 60*time.Second+30*time.Second+scf.ReplyWindow+20*time.Second+5*time.Second {
			t.Errorf("the last call took %v", m)
		}
		t.Logf("%d × 429 in all (%d probes before 59 s); last call %v after %v", st.Met429, probes, maxOf(lat), time.Since(t0))
		close(g.release)
		others.Wait()
	})
}

// The start budget is the account's, shared by all functions: 300 calls of
// each of two functions start 500 instances between them, and the other
// 100 wait without being sent.
func TestInvokerBudgetSharedByFunctions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		g := newGate()
		for _, name := range []string{"fa", "fb"} {
			srv.AddFunction(scftest.FunctionConfig{Name: name, Timeout: 300 * time.Second, Handler: g.handler})
		}
		iv, _ := scf.NewInvoker(c)
		var wg sync.WaitGroup
		for _, name := range []string{"fa", "fb"} {
			for range 300 {
				wg.Go(func() {
					if _, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: name}); err != nil {
						t.Error(err)
					}
				})
			}
		}
		time.Sleep(5 * time.Second) // past any cold start
		synctest.Wait()
		if st := iv.Stats(); g.count() != 500 || st.Starts != 500 || st.Waiting != 100 || st.Met429 != 0 {
			t.Fatalf("%d running, stats %+v", g.count(), st)
		}
		close(g.release)
		wg.Wait()
		if st := iv.Stats(); st.Succeeded != 600 || st.Met429 != 0 || srv.Counters().Throttled429 != 0 {
			t.Fatalf("stats %+v, counters %+v", st, srv.Counters())
		}
	})
}

// A published version's available provisioned instances are warm for the
// Invoker: with 100 of them, 700 calls of 10 s put 100 on them, start 500,
// and give the last 100 the first instances freed (the provisioned ones,
// which have no cold start); all done at 20 s.
func TestInvokerUsesProvisionedInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		addTenSecond(t, srv, "api")
		ctx := t.Context()
		v, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "api"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: "api", Qualifier: v.FunctionVersion, VersionProvisionedConcurrencyNum: 100}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "api", Qualifier: v.FunctionVersion}); err != nil {
			t.Fatal(err)
		}
		iv, _ := scf.NewInvoker(c)
		lat := invokeAll(t, iv, 700, scf.InvokerInput{FunctionName: "api", Qualifier: v.FunctionVersion})
		st := iv.Stats()
		if len(lat) != 700 || st.Starts != 500 || st.WarmSends != 200 || st.Met429 != 0 || maxOf(lat) != 20*time.Second {
			t.Fatalf("stats %+v, last call %v", st, maxOf(lat))
		}
		if n := srv.Counters().ElasticStarts; n != 500 {
			t.Fatalf("%d elastic instances started", n)
		}
		if n := iv.WarmInstances("api"); n != 600 {
			t.Fatalf("%d warm instances counted, want 100 provisioned + 500 idle", n)
		}
	})
}

// The warm estimate: a finished call leaves its instance idle for the next
// call, until WithWarmRetention passes; a call that recycles its instance
// (439) or fails with 433 leaves none; a user-code error leaves it up.
func TestInvokerWarmEstimate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		srv.AddFunction(scftest.FunctionConfig{Name: "fn", Timeout: 5 * time.Second, Handler: func(ctx context.Context, inv *scftest.Invocation) (string, error) {
			switch inv.Event {
			case `"exit"`:
				return "", scftest.Fail(scf.StatusUserProcessExit, "exit 1")
			case `"bug"`:
				return "", errors.New("user bug")
			case `"hang"`:
				<-ctx.Done()
				return "", ctx.Err()
			}
			return `"ok"`, nil
		}})
		iv, _ := scf.NewInvoker(c, scf.WithWarmRetention(30*time.Second))
		call := func(event string) {
			t.Helper()
			iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "fn", Event: event})
		}
		check := func(step string, starts, warm int64, idle int) {
			t.Helper()
			if st := iv.Stats(); st.Starts != starts || st.WarmSends != warm || iv.WarmInstances("fn") != idle {
				t.Fatalf("%s: %d starts, %d warm sends, %d warm instances; want %d, %d, %d",
					step, st.Starts, st.WarmSends, iv.WarmInstances("fn"), starts, warm, idle)
			}
		}
		call(`1`)
		check("first call", 1, 0, 1)
		time.Sleep(20 * time.Second)
		call(`2`)
		check("20 s later", 1, 1, 1)
		time.Sleep(31 * time.Second)
		check("retention passed", 1, 1, 0)
		call(`3`) // the server still has it (10 minutes), the Invoker spends a start
		check("after the retention", 2, 1, 1)
		if n := srv.Counters().ElasticStarts; n != 1 {
			t.Fatalf("%d instances started", n)
		}
		call(`"bug"`)
		check("user-code error", 2, 2, 1)
		call(`"exit"`)
		check("process exit", 2, 3, 0)
		call(`4`)
		check("after the exit", 3, 3, 1)
		call(`"hang"`)
		check("timeout", 3, 4, 0)
		if n := srv.Counters().ElasticStarts; n != 2 {
			t.Fatalf("%d instances started", n)
		}
	})
}

// A call waiting for the start budget holds nothing: when its context
// ends it leaves the line at once, having sent nothing, and the next call
// takes the instance a finished call frees.
func TestInvokerWaitingForTheBudgetEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		g := newGate()
		srv.AddFunction(scftest.FunctionConfig{Name: "slow", Timeout: 300 * time.Second, Handler: g.handler})
		iv, _ := scf.NewInvoker(c, scf.WithScaleOutRate(1))
		first := make(chan error, 1)
		go func() {
			_, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "slow"})
			first <- err
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := iv.Invoke(ctx, &scf.InvokerInput{FunctionName: "slow"})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 5*time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		if st := iv.Stats(); st.Attempts != 1 || st.Waiting != 0 || st.InFlight != 1 || srv.Counters().Invocations != 1 {
			t.Fatalf("stats %+v, counters %+v", st, srv.Counters())
		}
		close(g.release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, err := iv.Invoke(t.Context(), &scf.InvokerInput{FunctionName: "slow"}); err != nil || time.Since(start) != 0 {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		if st := iv.Stats(); st.Starts != 1 || st.WarmSends != 1 || srv.Counters().Throttled429 != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}
