package scftest_test

// The tests of issue 14: each quotes the SCF document it holds scftest to
// (../shared/reference/scf-api.md §3 and the concurrency pages it cites).

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// calls runs n InvokeFunction calls at once and returns their statuses by
// count.
func calls(t *testing.T, c *scf.Client, fn string, n int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: fn})
			st := status(t, err)
			mu.Lock()
			got[st]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

// Point 1, a reservation. "A reserved quota is the upper limit of the
// concurrency quota for all versions of this function": four warm 128 MB
// instances from before a 256 MB reservation run two requests at a time,
// not four.
func TestWarmInstancesCountAgainstTheReservation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn", Timeout: 60 * time.Second,
			Behavior: &scftest.Behavior{Duration: 10 * time.Second, Result: "ok"}})
		if got := calls(t, c, "fn", 4); got[scf.StatusSuccess] != 4 {
			t.Fatalf("warm-up: %v", got)
		}
		if n := len(srv.Instances("fn")); n != 4 {
			t.Fatalf("%d warm instances, want 4", n)
		}
		if _, err := c.PutReservedConcurrencyConfig(t.Context(), &scf.PutReservedConcurrencyConfigInput{FunctionName: "fn", ReservedConcurrencyMem: 256}); err != nil {
			t.Fatal(err)
		}
		got := calls(t, c, "fn", 4)
		if got[scf.StatusSuccess] != 2 || got[scf.StatusResourceLimitReached] != 2 {
			t.Fatalf("4 calls on 4 warm instances under a 256 MB reservation: %v, want 2 × 200 and 2 × 432", got)
		}
		if cnt := srv.Counters(); cnt.ElasticStarts != 4 {
			t.Fatalf("the two that ran should have taken warm instances: %+v", cnt)
		}
	})
}

// Point 1, the account quota. "The SCF concurrency quota is calculated by
// memory": after the quota is lowered to 12,800 MB below the 24,576 MB
// running, the 192 warm 128 MB instances run at most 100 requests
// (12,800 ÷ 128) at a time, and the rest get 432.
func TestWarmInstancesCountAgainstALoweredQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn", Timeout: 60 * time.Second,
			Behavior: &scftest.Behavior{Duration: 10 * time.Second, Result: "ok"}})
		var wg sync.WaitGroup
		var first map[int]int
		wg.Go(func() { first = calls(t, c, "fn", 192) })
		time.Sleep(5 * time.Second) // all 192 running: 24,576 MB
		if _, err := c.PutTotalConcurrencyConfig(t.Context(), &scf.PutTotalConcurrencyConfigInput{TotalConcurrencyMem: scf.UnreservableMB}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: "fn"}); status(t, err) != scf.StatusResourceLimitReached {
			t.Fatalf("a call while 24,576 MB run on a 12,800 MB quota: %v, want 432", err)
		}
		wg.Wait()
		if first[scf.StatusSuccess] != 192 {
			t.Fatalf("the requests running when the quota was lowered: %v, want all 192 to finish", first)
		}
		var peak int
		wg.Go(func() {
			time.Sleep(5 * time.Second)
			for _, inst := range srv.Instances("fn") {
				if inst.State == scftest.StateBusy {
					peak++
				}
			}
		})
		got := calls(t, c, "fn", 192)
		wg.Wait()
		if got[scf.StatusSuccess] != 100 || got[scf.StatusResourceLimitReached] != 92 || peak != 100 {
			t.Fatalf("192 calls on 192 warm instances under 12,800 MB: %v with %d busy, want 100 × 200 and 92 × 432", got, peak)
		}
		if cnt := srv.Counters(); cnt.ElasticStarts != 192 {
			t.Fatalf("no new instance was needed: %+v", cnt)
		}
	})
}

// Point 2. "Multiple concurrent requests increase the probability of OOM.
// If OOM occurs, the instance will restart … the abort error (434
// MemoryLimitReached) will be reported for multiple ongoing requests in
// the instance": three requests of 50 MB on one 128 MB instance add up to
// 150 MB, and all three get 434; two (100 MB) fit.
func TestMemoryAddsUpAcrossConcurrentRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, _ := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "web", Type: scf.FunctionTypeHTTP, MaxConcurrency: 3, Timeout: 60 * time.Second,
			Behavior: &scftest.Behavior{MemoryBytes: 50 << 20, Duration: 10 * time.Second, Result: "ok"}})
		hc := srv.HTTPClient()
		post3 := func(n int) []httpResult {
			out := make([]httpResult, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { out[i] = post(t, hc, srv.FunctionURL("web"), "{}") })
			}
			wg.Wait()
			return out
		}
		for _, r := range post3(3) {
			if r.status != scf.StatusMemoryLimitReached || !strings.Contains(r.body, `"statusCode":434`) || !strings.Contains(r.body, "3 requests in flight") {
				t.Fatalf("3 × 50 MB on 128 MB: %+v, want 434", r)
			}
		}
		cnt := srv.Counters()
		if cnt.ElasticStarts != 1 || cnt.InstancesStopped != 1 || cnt.ByStatus[scf.StatusMemoryLimitReached] != 3 {
			t.Fatalf("one instance should have run the three and been recycled: %+v", cnt)
		}
		if n := len(srv.Instances("web")); n != 0 {
			t.Fatalf("%d instances left after the OOM", n)
		}
		for _, r := range post3(2) {
			if r.status != http.StatusOK || r.body != "ok" {
				t.Fatalf("2 × 50 MB on 128 MB: %+v, want 200", r)
			}
		}
		if cnt := srv.Counters(); cnt.ElasticStarts != 2 {
			t.Fatalf("the two should have shared one new instance: %+v", cnt)
		}
	})
}

// Point 3. "Up to 500 new concurrent instances can be started in one
// minute … If the limit is hit in one minute, no more new instances will
// be started until the minute elapses": a burst starting at :50 gets 500
// instances in its first minute (none at :01:05, after the clock minute
// turned) and 1,000 after its second.
func TestBurstCountedOverARollingMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		g := newGate()
		// 64 MB, so that 1,000 instances (64,000 MB) leave quota to spare.
		addFunction(t, srv, scftest.FunctionConfig{Name: "burst", MemorySizeMB: 64, Timeout: 300 * time.Second, Handler: g.handler})
		time.Sleep(50 * time.Second) // 00:00:50
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[int]int{}
		fire := func(n int) {
			for range n {
				wg.Go(func() {
					_, err := c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: "burst"})
					st := status(t, err)
					mu.Lock()
					got[st]++
					mu.Unlock()
				})
			}
			synctest.Wait()
		}
		fire(600)
		if n := srv.Counters().ElasticStarts; n != 500 || got[scf.StatusResourceLimit] != 100 {
			t.Fatalf("at :50: %d started, answers %v; want 500 and 100 × 429", n, got)
		}
		time.Sleep(15 * time.Second) // 00:01:05: a new clock minute, the same rolling one
		fire(1)
		if n := srv.Counters().ElasticStarts; n != 500 || got[scf.StatusResourceLimit] != 101 {
			t.Fatalf("at 01:05: %d started, want still 500 (429 until 01:50)", n)
		}
		time.Sleep(45*time.Second - time.Millisecond)
		fire(1)
		if n := srv.Counters().ElasticStarts; n != 500 {
			t.Fatalf("just before 01:50: %d started", n)
		}
		time.Sleep(time.Millisecond) // 00:01:50: the first burst is a minute old
		fire(501)
		if n := srv.Counters().ElasticStarts; n != 1000 || got[scf.StatusResourceLimit] != 103 {
			t.Fatalf("at 01:50: %d started, answers %v; want 1000 and one more 429", n, got)
		}
		close(g.release)
		wg.Wait()
		if got[scf.StatusSuccess] != 1000 {
			t.Fatalf("answers %v", got)
		}
	})
}

// Point 4. The account quota is "128,000 MB in Guangzhou, Shanghai,
// Beijing, Chengdu, Hong Kong; 64,000 MB in Mumbai, Singapore, Tokyo,
// Toronto, Silicon Valley, Frankfurt, Shenzhen/Shanghai Finance. Regions
// are independent", and the burst is "per region under each account".
func TestRegionsAreSeparateAccounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, gz := start(t, scftest.WithScaleOutRate(2), scftest.WithColdStart(0))
		ctx := t.Context()
		in := func(region string) *scf.Client {
			c := srv.Client(scf.WithRegion(region), scf.WithRetry(scf.RetryPolicy{MaxAttempts: 1}))
			t.Cleanup(c.CloseIdleConnections)
			return c
		}
		for _, r := range scf.Regions() {
			want, _ := scf.RegionQuotaMB(r)
			acct, err := in(r).GetAccount(ctx, nil)
			if err != nil || acct.AccountUsage.TotalConcurrencyMem != want || acct.AccountUsage.UserConcurrencyMemLimit != want {
				t.Fatalf("%s: %+v %v, want %d MB", r, acct, err, want)
			}
		}
		for r, want := range map[string]int64{"ap-mumbai": 64000, "ap-shanghai-fsi": 64000, "ap-hongkong": 128000} {
			if acct, _ := in(r).GetAccount(ctx, nil); acct.AccountUsage.TotalConcurrencyMem != want {
				t.Fatalf("%s: %d MB, want %d", r, acct.AccountUsage.TotalConcurrencyMem, want)
			}
		}

		// Functions are per region.
		mumbai := in("ap-mumbai")
		if _, err := mumbai.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "fn", Timeout: 60,
			Environment: &scf.Environment{Variables: []scf.Variable{{Key: scftest.EnvDuration, Value: "10s"}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := gz.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "fn"}); apiCode(err) != scf.CodeFunctionNotFound {
			t.Fatalf("ap-mumbai's function seen in ap-guangzhou: %v", err)
		}
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn", Timeout: 60 * time.Second, Behavior: &scftest.Behavior{Duration: 10 * time.Second}})
		// Each region has its own burst (2 here) and quota.
		var got [2]map[int]int
		var wg sync.WaitGroup
		wg.Go(func() { got[0] = calls(t, gz, "fn", 3) })
		wg.Go(func() { got[1] = calls(t, mumbai, "fn", 3) })
		wg.Wait()
		for i, g := range got {
			r := []string{"ap-guangzhou", "ap-mumbai"}[i]
			if g[scf.StatusSuccess] != 2 || g[scf.StatusResourceLimit] != 1 {
				t.Fatalf("%s: %v, want 2 started and 1 × 429 of its own burst", r, g)
			}
		}
		if in := srv.Instances("ap-mumbai/default/fn"); len(in) != 2 || in[0].Region != "ap-mumbai" {
			t.Fatalf("ap-mumbai's instances: %+v", in)
		}
		time.Sleep(time.Minute) // ap-mumbai's burst is free again
		addFunction(t, srv, scftest.FunctionConfig{Name: "web", Region: "ap-mumbai", Type: scf.FunctionTypeHTTP})
		if r := post(t, srv.HTTPClient(), srv.FunctionURL("ap-mumbai/default/web"), `{"in":"mumbai"}`); r.status != 200 || r.body != `{"in":"mumbai"}` {
			t.Fatalf("ap-mumbai's HTTP function: %+v", r)
		}
		if !strings.Contains(srv.FunctionURL("ap-mumbai/default/web"), "/regions/ap-mumbai/http/default/web") {
			t.Fatalf("URL %s", srv.FunctionURL("ap-mumbai/default/web"))
		}

		if _, err := mumbai.PutTotalConcurrencyConfig(ctx, &scf.PutTotalConcurrencyConfigInput{TotalConcurrencyMem: 64001}); apiCode(err) != scf.CodeTotalConcurrencyMemory {
			t.Fatalf("ap-mumbai above its 64,000 MB: %v", err)
		}
		if _, err := gz.PutTotalConcurrencyConfig(ctx, &scf.PutTotalConcurrencyConfigInput{TotalConcurrencyMem: 64001}); err != nil {
			t.Fatalf("ap-guangzhou has 128,000 MB: %v", err)
		}

		// A region SCF does not serve, and none at all, as the API answers.
		if _, err := in("ap-atlantis").GetAccount(ctx, nil); apiCode(err) != "UnsupportedRegion" {
			t.Fatalf("unknown region: %v", err)
		}
		if _, err := in("").GetAccount(ctx, nil); apiCode(err) != "MissingParameter" || !strings.Contains(err.Error(), "Region") {
			t.Fatalf("no region: %v", err)
		}
	})
}

// Point 5. "Concurrent instances launched for elastic concurrency
// scale-out need to be initialized": by default a new instance takes
// DefaultColdStart before its first request, a warm one nothing; a
// function sets its own (FunctionConfig.ColdStart, SCFTEST_COLD_START).
// The cold start is not run time: Result.Duration leaves it out.
func TestColdStartCostsSomethingByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		ctx := t.Context()
		run := &scftest.Behavior{Duration: 10 * time.Millisecond, Result: "ok"}
		addFunction(t, srv, scftest.FunctionConfig{Name: "dflt", Behavior: run})
		addFunction(t, srv, scftest.FunctionConfig{Name: "slow", Behavior: run, ColdStart: 3 * time.Second})
		addFunction(t, srv, scftest.FunctionConfig{Name: "none", Behavior: run, ColdStart: scftest.NoColdStart})
		if _, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "env", Environment: &scf.Environment{Variables: []scf.Variable{
			{Key: scftest.EnvColdStart, Value: "2s"}, {Key: scftest.EnvDuration, Value: "10ms"}}}}); err != nil {
			t.Fatal(err)
		}
		took := func(fn string) time.Duration {
			t.Helper()
			t0 := time.Now()
			out, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: fn})
			if err != nil || out.Result.Duration != 10 {
				t.Fatalf("%s: %+v %v", fn, out, err)
			}
			return time.Since(t0)
		}
		for _, tc := range []struct {
			fn   string
			cold time.Duration
		}{{"dflt", scftest.DefaultColdStart}, {"slow", 3 * time.Second}, {"none", 0}, {"env", 2 * time.Second}} {
			if d := took(tc.fn); d != tc.cold+10*time.Millisecond {
				t.Errorf("%s cold: %v, want %v + 10ms", tc.fn, d, tc.cold)
			}
			if d := took(tc.fn); d != 10*time.Millisecond {
				t.Errorf("%s warm: %v, want 10ms", tc.fn, d)
			}
		}
		if scftest.DefaultColdStart != time.Second {
			t.Fatalf("DefaultColdStart %v: the package doc says 1 s", scftest.DefaultColdStart)
		}
		// A published version keeps its cold start.
		if _, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "env"}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "env", Qualifier: "1"}); err != nil || time.Since(t0) != 2*time.Second+10*time.Millisecond {
			t.Fatalf("version 1: %v after %v", err, time.Since(t0))
		}
		if err := c.Call(ctx, "CreateFunction", map[string]any{"FunctionName": "bad",
			"Environment": map[string]any{"Variables": []map[string]any{{"Key": scftest.EnvColdStart, "Value": "-1s"}}}}, nil); apiCode(err) != scf.CodeInvalidValue {
			t.Fatalf("a negative SCFTEST_COLD_START: %v", err)
		}
		if err := srv.AddFunction(scftest.FunctionConfig{Name: "neg", ColdStart: -2 * time.Second}); err == nil || !strings.Contains(err.Error(), "ColdStart") {
			t.Fatalf("a negative ColdStart: %v", err)
		}
	})
}

// Point 6. X-Scf-Request-Id is a field "in the common request header
// received by the HTTP-triggered function": every request carries it,
// multi-concurrency or not.
func TestRequestIDHeaderOnEveryHTTPRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, _ := start(t)
		var mu sync.Mutex
		seen := map[string]string{}
		h := func(_ context.Context, inv *scftest.Invocation) (string, error) {
			mu.Lock()
			seen[inv.RequestID] = inv.Header.Get("X-Scf-Request-Id")
			mu.Unlock()
			return "ok", nil
		}
		addFunction(t, srv, scftest.FunctionConfig{Name: "single", Type: scf.FunctionTypeHTTP, Handler: h})
		addFunction(t, srv, scftest.FunctionConfig{Name: "multi", Type: scf.FunctionTypeHTTP, MaxConcurrency: 5, Handler: h})
		for _, fn := range []string{"single", "multi"} {
			r := post(t, srv.HTTPClient(), srv.FunctionURL(fn), "{}")
			mu.Lock()
			got := seen[r.id]
			mu.Unlock()
			if r.status != 200 || r.id == "" || got != r.id {
				t.Fatalf("%s: response %+v, the function's header %q; want the request id in both", fn, r, got)
			}
		}
	})
}

// Point 7. The custom (static) mode takes "2–100 requests per instance";
// the API's range is 1–100, so MaxConcurrency 1 is accepted as what it
// means, one request per instance: multi-concurrency off, as if no
// InstanceConcurrencyConfig had been sent.
func TestMaxConcurrencyOneMeansOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		ctx := t.Context()
		one, two := uint64(1), uint64(2)
		create := func(name string, n uint64) error {
			_, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: name, Type: scf.FunctionTypeHTTP,
				InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{DynamicEnabled: scf.EnableFalse, MaxConcurrency: n}})
			return err
		}
		if err := create("one", one); err != nil {
			t.Fatal(err)
		}
		if err := create("two", two); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]*uint64{"one": nil, "two": &two} {
			out, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: name})
			if err != nil {
				t.Fatal(err)
			}
			icc := out.InstanceConcurrencyConfig
			if (want == nil) != (icc == nil) || want != nil && icc.MaxConcurrency != *want {
				t.Fatalf("%s: InstanceConcurrencyConfig %+v, want MaxConcurrency %v", name, icc, want)
			}
		}
		g := newGate()
		for _, name := range []string{"one", "two"} {
			if err := srv.SetHandler(name, g.handler); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, name := range []string{"one", "one", "two", "two"} {
			wg.Go(func() { post(t, srv.HTTPClient(), srv.FunctionURL(name), "{}") })
		}
		synctest.Wait()
		if a, b := len(srv.Instances("one")), len(srv.Instances("two")); a != 2 || b != 1 {
			t.Fatalf("instances: %d of one (MaxConcurrency 1), %d of two; want 2 and 1", a, b)
		}
		close(g.release)
		wg.Wait()
		err := c.Call(ctx, "UpdateFunctionConfiguration", map[string]any{"FunctionName": "two",
			"InstanceConcurrencyConfig": map[string]any{"DynamicEnabled": "FALSE", "MaxConcurrency": 101}}, nil)
		if apiCode(err) != scf.CodeInvalidMaxConcurrency || !strings.Contains(err.Error(), "2–100") {
			t.Fatalf("MaxConcurrency 101: %v", err)
		}
	})
}

// Open behaviour: an asynchronous queue on a capped function. The
// concurrency document has async events taken "in sequence" by pulling
// "sufficient concurrent instances", so the queue is consumed at the
// cap's pace: ten one-second events on a function capped at one instance
// run back to back (10 s plus one cold start), with no 432 and no retry.
// The one-minute overrun retry of §2 is for capacity the function cannot
// see freeing (TestAsyncOverrunRetriedEveryMinuteUntilTTL).
func TestAsyncQueueConsumedAtTheCapsPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		var a attempts
		addFunction(t, srv, scftest.FunctionConfig{Name: "capped", Handler: func(ctx context.Context, inv *scftest.Invocation) (string, error) {
			a.add(inv)
			return "done", inv.Sleep(ctx, time.Second)
		}})
		if _, err := c.PutReservedConcurrencyConfig(t.Context(), &scf.PutReservedConcurrencyConfigInput{FunctionName: "capped", ReservedConcurrencyMem: 128}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		var ids []string
		for range 10 {
			ids = append(ids, invokeAsync(t, c, "capped", "{}"))
		}
		time.Sleep(scftest.DefaultColdStart + 10*time.Second)
		synctest.Wait()
		times, _, _ := a.get()
		if len(times) != 10 {
			t.Fatalf("%d events ran in 11 s, want 10", len(times))
		}
		for i, at := range times {
			if want := scftest.DefaultColdStart + time.Duration(i)*time.Second; at.Sub(t0) != want {
				t.Fatalf("event %d started at %v, want %v", i, at.Sub(t0), want)
			}
		}
		for _, id := range ids {
			if st := requestStatus(t, c, "capped", id); st.RetCode != scf.RetCodeSucceeded || st.RetryNum != 0 {
				t.Fatalf("%s: %+v", id, st)
			}
		}
		if cnt := srv.Counters(); cnt.Throttled432 != 0 || cnt.AsyncRetries != 0 || cnt.ElasticStarts != 1 {
			t.Fatalf("counters %+v", cnt)
		}
	})
}
