package scftest_test

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

// attempts records when each execution of an asynchronous event ran.
type attempts struct {
	mu    sync.Mutex
	times []time.Time
	nums  []int
	evs   []string
}

func (a *attempts) add(inv *scftest.Invocation) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.times = append(a.times, inv.Now())
	a.nums = append(a.nums, inv.Attempt)
	a.evs = append(a.evs, inv.Event)
}

func (a *attempts) get() ([]time.Time, []int, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times...), append([]int(nil), a.nums...), append([]string(nil), a.evs...)
}

func requestStatus(t *testing.T, c *scf.Client, fn, id string) scf.RequestStatus {
	t.Helper()
	out, err := c.GetRequestStatus(t.Context(), &scf.GetRequestStatusInput{FunctionName: fn, FunctionRequestId: id})
	if err != nil || out.TotalCount != 1 || len(out.Data) != 1 {
		t.Fatalf("GetRequestStatus: %+v %v", out, err)
	}
	return out.Data[0]
}

func invokeAsync(t *testing.T, c *scf.Client, fn, event string) string {
	t.Helper()
	out, err := c.Invoke(t.Context(), &scf.InvokeInput{FunctionName: fn, InvocationType: scf.InvocationEvent, ClientContext: event})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Result
	if r.FunctionRequestId == "" || r.RetMsg != "" || r.ErrMsg != "" || r.Duration != 0 {
		t.Fatalf("an accepted event's Result should carry only its id: %+v", r)
	}
	return r.FunctionRequestId
}

// An asynchronous execution error is retried twice, one minute apart, and
// then dropped.
func TestAsyncExecutionErrorRetriedTwiceThenDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		var a attempts
		addFunction(t, srv, scftest.FunctionConfig{Name: "flaky", Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			a.add(inv)
			return "", errors.New("boom")
		}})
		t0 := time.Now()
		id := invokeAsync(t, c, "flaky", `{"n":1}`)
		time.Sleep(30 * time.Second)
		if st := requestStatus(t, c, "flaky", id); st.RetCode != scf.RetCodeRunning || st.RetryNum != 0 || !strings.Contains(st.RetMsg, `"statusCode":430`) {
			t.Fatalf("while waiting to retry: %+v", st)
		}
		time.Sleep(time.Hour)
		times, nums, _ := a.get()
		want := []time.Duration{0, time.Minute, 2 * time.Minute}
		if len(times) != len(want) {
			t.Fatalf("%d attempts, want 3: %v", len(times), times)
		}
		for i, at := range times {
			if at.Sub(t0) != want[i] || nums[i] != i {
				t.Fatalf("attempt %d (Attempt %d) at %v, want %v", i, nums[i], at.Sub(t0), want[i])
			}
		}
		st := requestStatus(t, c, "flaky", id)
		if st.RetCode != scf.RetCodeFailed || st.RetryNum != 2 || !strings.Contains(st.RetMsg, "boom") {
			t.Fatalf("after the retries: %+v", st)
		}
		if cnt := srv.Counters(); cnt.AsyncQueued != 1 || cnt.AsyncRetries != 2 || cnt.AsyncDropped != 1 || cnt.ByStatus[scf.StatusUserCodeException] != 3 {
			t.Fatalf("counters %+v", cnt)
		}
	})
}

// RetryNum 0 (UpdateFunctionEventInvokeConfig) turns the retries off.
func TestAsyncRetryNumConfigurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		var a attempts
		addFunction(t, srv, scftest.FunctionConfig{Name: "once", Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			a.add(inv)
			return "", scftest.Fail(scf.StatusMemoryLimitReached, "too big")
		}})
		ctx := t.Context()
		err := c.Call(ctx, "UpdateFunctionEventInvokeConfig", map[string]any{"FunctionName": "once",
			"AsyncTriggerConfig": map[string]any{"RetryConfig": []map[string]any{{"RetryNum": 0}}, "MsgTTL": 3600}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Call(ctx, "UpdateFunctionEventInvokeConfig", map[string]any{"FunctionName": "once",
			"AsyncTriggerConfig": map[string]any{"RetryConfig": []map[string]any{{"RetryNum": 3}}}}, nil)
		if apiCode(err) != "LimitExceeded.RetryNum" {
			t.Fatalf("RetryNum 3: %v", err)
		}
		invokeAsync(t, c, "once", "{}")
		time.Sleep(10 * time.Minute)
		if times, _, _ := a.get(); len(times) != 1 {
			t.Fatalf("%d attempts, want 1", len(times))
		}
	})
}

// Overrun errors (here: reserved 0) are retried every minute until the
// event's MsgTTL passes.
func TestAsyncOverrunRetriedEveryMinuteUntilTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "full"})
		ctx := t.Context()
		c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "full", ReservedConcurrencyMem: 0})
		if err := c.Call(ctx, "UpdateFunctionEventInvokeConfig", map[string]any{"FunctionName": "full",
			"AsyncTriggerConfig": map[string]any{"MsgTTL": 300}}, nil); err != nil {
			t.Fatal(err)
		}
		id := invokeAsync(t, c, "full", "{}")
		time.Sleep(150 * time.Second)
		if st := requestStatus(t, c, "full", id); st.RetCode != scf.RetCodeRunning || st.RetryNum != 2 || !strings.Contains(st.RetMsg, `"statusCode":432`) {
			t.Fatalf("after 2m30s: %+v", st)
		}
		time.Sleep(time.Hour)
		st := requestStatus(t, c, "full", id)
		// Tries at 0, 1, 2, 3 and 4 minutes; at 5 minutes the 300 s TTL has passed.
		if st.RetCode != scf.RetCodeFailed || st.RetryNum != 4 {
			t.Fatalf("after the TTL: %+v", st)
		}
		if cnt := srv.Counters(); cnt.ByStatus[scf.StatusResourceLimitReached] != 5 || cnt.AsyncRetries != 4 || cnt.AsyncDropped != 1 || cnt.Invocations != 0 {
			t.Fatalf("counters %+v", cnt)
		}
	})
}

// System errors are retried with exponential backoff (1 s, 2 s, 4 s…).
func TestAsyncSystemErrorBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		var a attempts
		addFunction(t, srv, scftest.FunctionConfig{Name: "sys", Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			a.add(inv)
			if inv.Attempt < 3 {
				return "", scftest.Fail(scf.StatusInternalError, "platform hiccup")
			}
			return "fine", nil
		}})
		t0 := time.Now()
		id := invokeAsync(t, c, "sys", "{}")
		time.Sleep(time.Minute)
		times, _, _ := a.get()
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}
		if len(times) != len(want) {
			t.Fatalf("attempts %v", times)
		}
		for i := range want {
			if times[i].Sub(t0) != want[i] {
				t.Fatalf("attempt %d at %v, want %v", i, times[i].Sub(t0), want[i])
			}
		}
		if st := requestStatus(t, c, "sys", id); st.RetCode != scf.RetCodeSucceeded || st.RetMsg != "fine" || st.RetryNum != 3 {
			t.Fatalf("status %+v", st)
		}
	})
}

// The queue is first in, first out, and holds at most its limit.
func TestAsyncQueueFIFOAndLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithAsyncQueueLimit(2))
		var a attempts
		release := make(chan struct{})
		addFunction(t, srv, scftest.FunctionConfig{Name: "one", Timeout: 300 * time.Second, Handler: func(ctx context.Context, inv *scftest.Invocation) (string, error) {
			a.add(inv)
			if inv.Event == `"first"` {
				<-release
			}
			return "", nil
		}})
		ctx := t.Context()
		c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "one", ReservedConcurrencyMem: 128})
		invokeAsync(t, c, "one", `"first"`) // runs at once, holding the only instance
		synctest.Wait()
		invokeAsync(t, c, "one", `"second"`)
		invokeAsync(t, c, "one", `"third"`)
		if n := srv.QueueLength("one"); n != 2 {
			t.Fatalf("queue length %d, want 2", n)
		}
		_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "one", InvocationType: scf.InvocationEvent, ClientContext: `"fourth"`})
		if apiCode(err) != scf.CodeInvokeFailed || !strings.Contains(err.Error(), "full") {
			t.Fatalf("over the queue limit: %v", err)
		}
		close(release)
		time.Sleep(5 * time.Minute)
		_, _, evs := a.get()
		if strings.Join(evs, " ") != `"first" "second" "third"` {
			t.Fatalf("order %v", evs)
		}
		if n := srv.QueueLength("one"); n != 0 {
			t.Fatalf("queue length %d", n)
		}
	})
}
