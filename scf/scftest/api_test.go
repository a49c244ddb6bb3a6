package scftest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// The shared frame: signatures, strict decoding, rate limits, faults.
func TestFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		ctx := t.Context()
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn"})

		bad := srv.Client(scf.WithCredentials(scf.StaticCredentials(srv.Credentials().SecretId, "wrong-key")))
		defer bad.CloseIdleConnections()
		if _, err := bad.GetAccount(ctx, nil); apiCode(err) != scf.CodeSignatureFailure {
			t.Fatalf("wrong key: %v", err)
		}
		err := c.Call(ctx, "GetReservedConcurrencyConfig", map[string]any{"FunctionName": "fn", "Bogus": 1}, nil)
		if apiCode(err) != scf.CodeUnknownParameter || !strings.Contains(err.Error(), "Bogus") {
			t.Fatalf("unknown parameter: %v", err)
		}
		err = c.Call(ctx, "PutReservedConcurrencyConfig", map[string]any{"FunctionName": "fn", "ReservedConcurrencyMem": "lots"}, nil)
		if apiCode(err) != "InvalidParameterValue" || !strings.Contains(err.Error(), "ReservedConcurrencyMem") {
			t.Fatalf("wrong type: %v", err)
		}
		if err := c.Call(ctx, "PutReservedConcurrencyConfig", map[string]any{"FunctionName": "fn"}, nil); apiCode(err) != scf.CodeMissingParameter {
			t.Fatalf("missing ReservedConcurrencyMem: %v", err)
		}
		if err := c.Call(ctx, "NoSuchAction", nil, nil); apiCode(err) != scf.CodeInvalidAction {
			t.Fatalf("unknown action: %v", err)
		}
		// 20 per second for the configuration actions; time stands still here.
		var throttled int
		for range 25 {
			_, err := c.GetReservedConcurrencyConfig(ctx, &scf.GetReservedConcurrencyConfigInput{FunctionName: "fn"})
			if scf.IsThrottled(err) {
				throttled++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		// The call with the unknown parameter counted too: 26 in the second.
		if throttled != 6 {
			t.Fatalf("%d of 25 throttled, want 6", throttled)
		}
		if err := srv.InjectFault("GetAccount", scftest.Fault{Code: "InternalError", Message: "injected"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetAccount(ctx, nil); apiCode(err) != scf.CodeInternalError {
			t.Fatalf("fault: %v", err)
		}
		if _, err := c.GetAccount(ctx, nil); err != nil {
			t.Fatalf("after the fault: %v", err)
		}
		var calls int
		for _, e := range srv.Events() {
			if e.Kind == "call" {
				calls++
			}
		}
		if calls < 30 {
			t.Fatalf("event log has %d calls", calls)
		}
	})
}

// The documented limits per second: 100 for Invoke, 10,000 for
// InvokeFunction, 20 for the concurrency settings. The fake clock of a
// synctest bubble keeps every call of a burst in one second.
func TestDefaultRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn"})
		ctx := t.Context()
		for _, tc := range []struct {
			action string
			limit  int
			call   func() error
		}{
			{"Invoke", 100, func() error {
				_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn"})
				return err
			}},
			{"InvokeFunction", 10000, func() error {
				_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"})
				return err
			}},
			{"GetReservedConcurrencyConfig", 20, func() error {
				_, err := c.GetReservedConcurrencyConfig(ctx, &scf.GetReservedConcurrencyConfigInput{FunctionName: "fn"})
				return err
			}},
		} {
			time.Sleep(time.Second) // a fresh window
			for i := range tc.limit {
				if err := tc.call(); err != nil {
					t.Fatalf("%s call %d of the %d allowed in a second: %v", tc.action, i+1, tc.limit, err)
				}
			}
			if err := tc.call(); !scf.HasCode(err, scf.CodeRequestLimitExceeded) {
				t.Fatalf("%s call %d in a second: %v, want RequestLimitExceeded", tc.action, tc.limit+1, err)
			}
			time.Sleep(time.Second)
			if err := tc.call(); err != nil {
				t.Fatalf("%s in the next second: %v", tc.action, err)
			}
		}
	})
}

// Rate limits can be changed or removed.
func TestRateLimitOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithRateLimit("InvokeFunction", 2), scftest.WithColdStart(0))
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn"})
		ctx := t.Context()
		var n int
		for range 3 {
			if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"}); scf.IsThrottled(err) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d throttled, want 1", n)
		}
		srv.SetRateLimit("InvokeFunction", 0)
		for range 50 {
			if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"}); err != nil {
				t.Fatal(err)
			}
		}
	})
	if _, err := scftest.NewUnstartedServer(scftest.WithRateLimit("Nope", 1)); err == nil {
		t.Fatal("a rate limit for an unknown action was accepted")
	}
}

// Functions: create, get, update (multi-concurrency), publish, list,
// delete, with the documented errors.
func TestFunctionManagement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := start(t)
		ctx := t.Context()
		create := func(in *scf.CreateFunctionInput) error {
			_, err := c.CreateFunction(ctx, in)
			return err
		}
		if err := create(&scf.CreateFunctionInput{FunctionName: "web", Type: scf.FunctionTypeHTTP, MemorySize: 512, Timeout: 30,
			InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{DynamicEnabled: scf.EnableFalse, MaxConcurrency: 10}}); err != nil {
			t.Fatal(err)
		}
		if err := create(&scf.CreateFunctionInput{FunctionName: "web"}); apiCode(err) != scf.CodeFunctionExists {
			t.Fatalf("duplicate: %v", err)
		}
		for _, bad := range []struct {
			params map[string]any
			code   string
		}{
			{map[string]any{"FunctionName": "x"}, scf.CodeInvalidFunctionName},
			{map[string]any{"FunctionName": "ok-name", "MemorySize": 200}, scf.CodeInvalidMemorySize},
			{map[string]any{"FunctionName": "ok-name", "Timeout": 901}, scf.CodeTimeoutLimit},
			{map[string]any{"FunctionName": "ok-name", "InstanceConcurrencyConfig": map[string]any{"MaxConcurrency": 5}}, scf.CodeInvalidInstanceConc},
			{map[string]any{"FunctionName": "ok-name", "Type": "HTTP", "InstanceConcurrencyConfig": map[string]any{"MaxConcurrency": 101}}, scf.CodeInvalidMaxConcurrency},
			{map[string]any{"FunctionName": "ok-name", "Environment": map[string]any{"Variables": []map[string]string{{"Key": scftest.EnvDuration, "Value": "soon"}}}}, "InvalidParameterValue"},
		} {
			if err := c.Call(ctx, "CreateFunction", bad.params, nil); apiCode(err) != bad.code {
				t.Errorf("%v: %v, want %s", bad.params, err, bad.code)
			}
		}
		fn, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "web"})
		if err != nil || fn.MemorySize != 512 || fn.Timeout != 30 || fn.Type != scf.FunctionTypeHTTP || fn.Qualifier != scf.QualifierLatest ||
			fn.InstanceConcurrencyConfig == nil || fn.InstanceConcurrencyConfig.MaxConcurrency != 10 || fn.Status != "Active" {
			t.Fatalf("GetFunction: %+v %v", fn, err)
		}
		pub, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "web", Description: "v1"})
		if err != nil || pub.FunctionVersion != "1" || pub.MemorySize != 512 {
			t.Fatalf("PublishVersion: %+v %v", pub, err)
		}
		if _, err := c.UpdateFunctionConfiguration(ctx, &scf.UpdateFunctionConfigurationInput{FunctionName: "web", MemorySize: 1024,
			InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{}}); err != nil {
			t.Fatal(err)
		}
		latest, _ := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "web"})
		v1, _ := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "web", Qualifier: "1"})
		if latest.MemorySize != 1024 || latest.InstanceConcurrencyConfig != nil || v1.MemorySize != 512 || v1.InstanceConcurrencyConfig.MaxConcurrency != 10 {
			t.Fatalf("after update: $LATEST %+v, version 1 %+v", latest, v1)
		}
		if _, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "web", Qualifier: "9"}); apiCode(err) != scf.CodeVersionNotFound {
			t.Fatalf("unknown version: %v", err)
		}
		if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "web"}); apiCode(err) != scf.CodeInvalidFunctionType {
			t.Fatalf("InvokeFunction of an HTTP function: %v", err)
		}
		if _, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "web"}); apiCode(err) != scf.CodeInvalidFunctionType || !strings.Contains(err.Error(), "not with Invoke") {
			t.Fatalf("Invoke of an HTTP function: %v", err)
		}
		for i := range 3 {
			if err := create(&scf.CreateFunctionInput{FunctionName: fmt.Sprintf("fn-%d", i), Description: "batch"}); err != nil {
				t.Fatal(err)
			}
		}
		list, err := c.ListFunctions(ctx, &scf.ListFunctionsInput{SearchKey: "fn-", Limit: 2, Orderby: "FunctionName", Order: "DESC"})
		if err != nil || list.TotalCount != 3 || len(list.Functions) != 2 || list.Functions[0].FunctionName != "fn-2" || list.Functions[0].ReservedConcurrencyMem != nil {
			t.Fatalf("ListFunctions: %+v %v", list, err)
		}
		if _, err := c.DeleteFunction(ctx, &scf.DeleteFunctionInput{FunctionName: "web", Qualifier: "1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteFunction(ctx, &scf.DeleteFunctionInput{FunctionName: "web"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "web"}); apiCode(err) != scf.CodeFunctionNotFound || !scf.IsNotFound(err) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

// Invoke's and InvokeFunction's qualifier defaults, aliases with weights
// and rules, and the 442 of an unknown qualifier in both wire shapes.
func TestQualifiersAndAliases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "ver", Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			return inv.Qualifier, nil
		}})
		ctx := t.Context()
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "ver"})
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "ver"})
		ran := func(qualifier, key string) string {
			t.Helper()
			out, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "ver", Qualifier: qualifier, RoutingKey: key})
			if err != nil {
				t.Fatal(err)
			}
			return out.Result.RetMsg
		}
		if got := ran("", ""); got != scf.QualifierLatest {
			t.Fatalf("$DEFAULT ran %s", got)
		}
		if got := ran("2", ""); got != "2" {
			t.Fatalf("version 2 ran %s", got)
		}
		err := c.Call(ctx, "CreateAlias", map[string]any{"FunctionName": "ver", "Name": "live", "FunctionVersion": "1",
			"RoutingConfig": map[string]any{
				"AdditionalVersionWeights": []map[string]any{{"Version": "2", "Weight": 0.5}},
				"AddtionVersionMatchs":     []map[string]any{{"Version": scf.QualifierLatest, "Key": "user", "Method": "exact", "Expression": "tester"}},
			}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for range 200 {
			counts[ran("live", "")]++
		}
		if counts["1"] < 60 || counts["2"] < 60 || counts["1"]+counts["2"] != 200 {
			t.Fatalf("50%% weights: %v", counts)
		}
		if got := ran("live", `{"user":"tester"}`); got != scf.QualifierLatest {
			t.Fatalf("rule routing ran %s", got)
		}
		_, err = c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "ver", Qualifier: "nope"})
		var fe *scf.FunctionError
		if !errors.As(err, &fe) || fe.StatusCode != scf.StatusQualifierNotFound || apiCode(err) != scf.CodeQualifierNotFound {
			t.Fatalf("InvokeFunction of an unknown qualifier: %v", err)
		}
		_, err = c.Invoke(ctx, &scf.InvokeInput{FunctionName: "ver", Qualifier: "nope"})
		if !errors.As(err, &fe) || fe.StatusCode != scf.StatusQualifierNotFound || fe.API != nil {
			t.Fatalf("Invoke of an unknown qualifier: %v", err)
		}
		out, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "ver"})
		if err != nil || out.Result.RetMsg != scf.QualifierLatest {
			t.Fatalf("Invoke's default: %+v %v", out, err)
		}
		if err := c.Call(ctx, "DeleteAlias", map[string]any{"FunctionName": "ver", "Name": scf.AliasDefault}, nil); err == nil {
			t.Fatal("deleted $DEFAULT")
		}
	})
}

// Results carry duration, billed time, memory in bytes and the log; the
// request's status stays queryable.
func TestResultFieldsAndRequestStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "work", MemorySizeMB: 256, Handler: func(ctx context.Context, inv *scftest.Invocation) (string, error) {
			inv.ReportMemory(3 << 20)
			inv.Logf("working on %s", inv.Event)
			if err := inv.Sleep(ctx, 250*time.Millisecond); err != nil {
				return "", err
			}
			return "hello from scf", nil
		}})
		ctx := t.Context()
		out, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "work", Event: `{"job":7}`, LogType: scf.LogTypeTail})
		if err != nil {
			t.Fatal(err)
		}
		r := out.Result
		if r.RetMsg != "hello from scf" || r.Duration != 250 || r.BillDuration != 250 || r.MemUsage != 3<<20 ||
			!strings.Contains(r.Log, `working on {"job":7}`) || r.InvokeResult != 0 {
			t.Fatalf("result %+v", r)
		}
		st := requestStatus(t, c, "work", r.FunctionRequestId)
		if st.RetCode != scf.RetCodeSucceeded || st.Duration != 250 || st.MemUsage != 3 || st.RetMsg != "hello from scf" {
			t.Fatalf("status %+v", st)
		}
		empty, err := c.GetRequestStatus(ctx, &scf.GetRequestStatusInput{FunctionName: "work", FunctionRequestId: "no-such-id"})
		if err != nil || empty.TotalCount != 0 || len(empty.Data) != 0 {
			t.Fatalf("unknown id: %+v %v", empty, err)
		}
	})
}

// A function without Go code behaves as its SCFTEST_* variables say, per
// version; without them it echoes its event.
func TestDeclarativeBehavior(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := start(t)
		ctx := t.Context()
		env := func(kv ...string) *scf.Environment {
			e := &scf.Environment{}
			for i := 0; i < len(kv); i += 2 {
				e.Variables = append(e.Variables, scf.Variable{Key: kv[i], Value: kv[i+1]})
			}
			return e
		}
		if _, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "decl", Environment: env(
			scftest.EnvDuration, "2s", scftest.EnvMemory, "1048576", scftest.EnvResult, "v1 result")}); err != nil {
			t.Fatal(err)
		}
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "decl"})
		c.UpdateFunctionConfiguration(ctx, &scf.UpdateFunctionConfigurationInput{FunctionName: "decl", Environment: env(
			scftest.EnvFailStatus, "439", scftest.EnvFailMessage, "exit 1")})
		out, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "decl", Qualifier: "1"})
		if err != nil || out.Result.RetMsg != "v1 result" || out.Result.Duration != 2000 || out.Result.MemUsage != 1<<20 {
			t.Fatalf("version 1: %+v %v", out, err)
		}
		_, err = c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "decl"})
		if scf.FunctionStatus(err) != scf.StatusUserProcessExit || !strings.Contains(err.Error(), "exit 1") {
			t.Fatalf("$LATEST: %v", err)
		}
		c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "plain"})
		out, err = c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "plain", Event: `{"echo":true}`})
		if err != nil || out.Result.RetMsg != `{"echo":true}` {
			t.Fatalf("echo: %+v %v", out, err)
		}
	})
}

// GetAccount reports the live allocations.
func TestGetAccountCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		ctx := t.Context()
		addFunction(t, srv, scftest.FunctionConfig{Name: "res"})
		addFunction(t, srv, scftest.FunctionConfig{Name: "prov", Namespace: "team", MemorySizeMB: 256})
		c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "res", ReservedConcurrencyMem: 1280})
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "prov", Namespace: "team"})
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "prov", Namespace: "team", Qualifier: "1", VersionProvisionedConcurrencyNum: 2}); err != nil {
			t.Fatal(err)
		}
		acct, err := c.GetAccount(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		u := acct.AccountUsage
		if u.TotalAllocatedConcurrencyMem != 1280+512 || u.NamespacesCount != 2 || len(u.Namespace) != 2 {
			t.Fatalf("usage %+v", u)
		}
		team := u.Namespace[1]
		if team.Namespace != "team" || team.FunctionsCount != 1 || *team.TotalAllocatedProvisionedMem != 512 || team.Functions[0] != "prov" {
			t.Fatalf("namespace team %+v", team)
		}
		if l := acct.AccountLimit.Namespace[0]; l.RetryNumLimit != 2 || l.MaxMsgTTL != 21600 || l.TimeoutLimit != 900 {
			t.Fatalf("limits %+v", l)
		}
	})
}

// Close fails the executions in flight and ends their handlers.
func TestCloseAbortsExecutions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := scftest.NewServer(scftest.WithListener(memnet.Listen("close")))
		if err != nil {
			t.Fatal(err)
		}
		c := srv.Client(scf.WithRetry(scf.RetryPolicy{MaxAttempts: 1}))
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "busy", Timeout: 60 * time.Second, Handler: g.handler})
		var wg sync.WaitGroup
		var callErr error
		wg.Go(func() {
			_, callErr = c.InvokeFunction(context.Background(), &scf.InvokeFunctionInput{FunctionName: "busy"})
		})
		synctest.Wait()
		srv.Close()
		srv.Close() // idempotent
		wg.Wait()
		if callErr == nil {
			t.Fatal("the call in flight succeeded")
		}
		c.CloseIdleConnections()
	})
}

// Server as an http.Handler, mounted in the shared mux.
func TestMountedInMux(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, err := scftest.NewUnstartedServer()
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		mux := apiserver.NewMux()
		mux.Handle(scf.Service, srv, srv)
		l := memnet.Listen("mux")
		hs := &http.Server{Handler: mux}
		go hs.Serve(l)
		defer hs.Close()
		c, _ := scf.NewClient(scf.WithEndpoint("http://mux"), scf.WithRegion(scftest.DefaultRegion), scf.WithCredentials(scf.StaticCredentials(srv.Credentials().SecretId, srv.Credentials().SecretKey)),
			scf.WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: l.DialContext}}))
		defer c.CloseIdleConnections()
		if _, err := c.CreateFunction(t.Context(), &scf.CreateFunctionInput{FunctionName: "web", Type: scf.FunctionTypeHTTP}); err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{DialContext: l.DialContext}}
		defer hc.CloseIdleConnections()
		if r := post(t, hc, "http://mux/scf/http/default/web/path", `{"hi":1}`); r.status != 200 || r.body != `{"hi":1}` {
			t.Fatalf("through the mux: %+v", r)
		}
	})
}

func TestOptionsRejectBadValues(t *testing.T) {
	for _, opt := range []scftest.Option{
		scftest.WithAccountQuota(100), scftest.WithScaleOutRate(-1), scftest.WithProvisionRate(0),
		scftest.WithIdleRetention(0), scftest.WithColdStart(-time.Second), scftest.WithAsyncQueueLimit(0),
		scftest.WithManualClock(time.Time{}), scftest.WithListener(nil), scftest.WithLogger(nil), scftest.WithCredential("", "", ""),
	} {
		if _, err := scftest.NewUnstartedServer(opt); err == nil {
			t.Errorf("an option was accepted: %p", opt)
		}
	}
}

// With the manual clock nothing moves until Advance; a cold start then
// costs the configured time.
func TestManualClockAndColdStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		srv, c := start(t, scftest.WithManualClock(t0), scftest.WithColdStart(300*time.Millisecond))
		addFunction(t, srv, scftest.FunctionConfig{Name: "cold"})
		done := make(chan *scf.InvokeFunctionOutput, 1)
		go func() {
			out, err := c.InvokeFunction(context.Background(), &scf.InvokeFunctionInput{FunctionName: "cold"})
			if err != nil {
				t.Error(err)
			}
			done <- out
		}()
		time.Sleep(time.Hour) // host time passes; the model clock stands
		synctest.Wait()
		if len(done) != 0 || len(srv.Instances("cold")) != 1 {
			t.Fatal("the call finished before the model clock moved")
		}
		srv.Advance(300 * time.Millisecond)
		if out := <-done; out == nil || out.Result.Duration != 0 {
			t.Fatalf("result %+v (the cold start is not run time)", out)
		}
		if !srv.Now().Equal(t0.Add(300 * time.Millisecond)) {
			t.Fatalf("model time %v", srv.Now())
		}
	})
}
