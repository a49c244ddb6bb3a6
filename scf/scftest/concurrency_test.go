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

// 600 simultaneous cold invocations in one minute: the burst starts
// exactly 500 instances and the other 100 get 429; the next minute's burst
// takes them.
func TestBurstStartsAtMost500InstancesPerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "burst", Timeout: 300 * time.Second, Handler: g.handler})
		ctx := t.Context()

		var wg sync.WaitGroup
		statuses := make(chan int, 600)
		for range 600 {
			wg.Go(func() {
				_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "burst"})
				statuses <- status(t, err)
			})
		}
		synctest.Wait() // every call is either running (blocked in the handler) or answered
		if n := len(g.invocations()); n != 500 {
			t.Fatalf("%d executions running, want 500", n)
		}
		cnt := srv.Counters()
		if cnt.ElasticStarts != 500 || cnt.Throttled429 != 100 || cnt.ByStatus[scf.StatusResourceLimit] != 100 {
			t.Fatalf("counters %+v: want 500 instances started and 100 × 429", cnt)
		}
		if n := len(srv.Instances("burst")); n != 500 {
			t.Fatalf("%d instances, want 500", n)
		}
		if len(statuses) != 100 {
			t.Fatalf("%d calls answered, want the 100 throttled ones", len(statuses))
		}
		for range 100 {
			if s := <-statuses; s != scf.StatusResourceLimit {
				t.Fatalf("answer %d, want 429", s)
			}
		}

		// Still in the first minute, nothing more can start.
		if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "burst"}); status(t, err) != scf.StatusResourceLimit {
			t.Fatalf("a 601st call in the first minute: %v, want 429", err)
		}
		// The next minute's burst starts more.
		time.Sleep(time.Minute)
		wg.Go(func() {
			_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "burst"})
			statuses <- status(t, err)
		})
		synctest.Wait()
		if n := srv.Counters().ElasticStarts; n != 501 {
			t.Fatalf("after a minute %d instances started, want 501", n)
		}
		close(g.release)
		wg.Wait()
		for range 501 {
			if s := <-statuses; s != scf.StatusSuccess {
				t.Fatalf("a running call ended with %d", s)
			}
		}
	})
}

// Reserved 0 disables the function: every way of calling it gets 432.
// Deleting the reservation gives it back the shared pool.
func TestReservedZeroDisablesTheFunction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "off"})
		addFunction(t, srv, scftest.FunctionConfig{Name: "web", Type: scf.FunctionTypeHTTP})
		ctx := t.Context()
		for _, fn := range []string{"off", "web"} {
			if _, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: fn, ReservedConcurrencyMem: 0}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.GetReservedConcurrencyConfig(ctx, &scf.GetReservedConcurrencyConfigInput{FunctionName: "off"})
		if err != nil || got.ReservedMem == nil || *got.ReservedMem != 0 {
			t.Fatalf("GetReserved: %+v, %v; want a pointer to 0", got, err)
		}

		for i := range 3 {
			_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "off"})
			var fe *scf.FunctionError
			if !errors.As(err, &fe) || fe.StatusCode != scf.StatusResourceLimitReached || fe.API == nil || fe.API.Code != scf.CodeQuota {
				t.Fatalf("InvokeFunction %d: %v; want 432 as LimitExceeded.Quota", i, err)
			}
			_, err = c.Invoke(ctx, &scf.InvokeInput{FunctionName: "off"})
			if !errors.As(err, &fe) || fe.StatusCode != scf.StatusResourceLimitReached || fe.API != nil || fe.FunctionRequestId == "" {
				t.Fatalf("Invoke %d: %v; want 432 in the Result", i, err)
			}
			if !strings.Contains(fe.Message, "reserved quota 0 MB") {
				t.Fatalf("message %q", fe.Message)
			}
		}
		if r := post(t, srv.HTTPClient(), srv.FunctionURL("web"), "{}"); r.status != scf.StatusResourceLimitReached || !strings.Contains(r.body, `"statusCode":432`) {
			t.Fatalf("HTTP function: %+v", r)
		}
		if n := srv.Counters().Invocations; n != 0 {
			t.Fatalf("%d executions ran", n)
		}

		if _, err := c.DeleteReservedConcurrencyConfig(ctx, &scf.DeleteReservedConcurrencyConfigInput{FunctionName: "off"}); err != nil {
			t.Fatal(err)
		}
		got, _ = c.GetReservedConcurrencyConfig(ctx, &scf.GetReservedConcurrencyConfigInput{FunctionName: "off"})
		if got.ReservedMem != nil {
			t.Fatalf("after Delete ReservedMem = %d, want null", *got.ReservedMem)
		}
		if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "off"}); err != nil {
			t.Fatalf("after Delete: %v", err)
		}
	})
}

// The reservation is a hard cap: with 256 MB of 128 MB instances, two run
// and the third gets 432, while an unreserved function is untouched.
func TestReservedQuotaIsAHardCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "capped", Timeout: 60 * time.Second, Handler: g.handler})
		addFunction(t, srv, scftest.FunctionConfig{Name: "free", Timeout: 60 * time.Second, Handler: g.handler})
		ctx := t.Context()
		if _, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "capped", ReservedConcurrencyMem: 256}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, fn := range []string{"capped", "capped", "free", "free", "free"} {
			wg.Go(func() {
				if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: fn}); err != nil {
					t.Errorf("%s: %v", fn, err)
				}
			})
		}
		synctest.Wait()
		_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "capped"})
		var fe *scf.FunctionError
		if !errors.As(err, &fe) || fe.StatusCode != scf.StatusResourceLimitReached || !strings.Contains(fe.Message, "reserved quota 256 MB") {
			t.Fatalf("third call: %v", err)
		}
		close(g.release)
		wg.Wait()
	})
}

// The documented errors of the quota settings.
func TestQuotaSettingErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithAccountQuota(scf.SmallRegionQuotaMB))
		addFunction(t, srv, scftest.FunctionConfig{Name: "fa"})
		addFunction(t, srv, scftest.FunctionConfig{Name: "fb"})
		ctx := t.Context()
		put := func(fn string, mb uint64) error {
			_, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: fn, ReservedConcurrencyMem: mb})
			return err
		}
		// 64,000 − 12,800 = 51,200 MB can be reserved in all.
		if err := put("fa", 51200+128); apiCode(err) != scf.CodeReservedMemory {
			t.Fatalf("over the reservable quota: %v", err)
		}
		if err := put("fa", 40000); err != nil {
			t.Fatal(err)
		}
		if err := put("fb", 11200+1); apiCode(err) != scf.CodeReservedMemory {
			t.Fatalf("fb over what fa left: %v", err)
		}
		if err := put("fb", 11200); err != nil {
			t.Fatal(err)
		}
		if err := put("nope", 128); apiCode(err) != scf.CodeFunctionNotFound {
			t.Fatalf("unknown function: %v", err)
		}
		acct, err := c.GetAccount(ctx, nil)
		if err != nil || acct.AccountUsage.TotalAllocatedConcurrencyMem != 51200 || acct.AccountUsage.TotalConcurrencyMem != 64000 {
			t.Fatalf("GetAccount: %+v %v", acct.AccountUsage, err)
		}
		total := func(mb uint64) error {
			_, err := c.PutTotalConcurrencyConfig(ctx, &scf.PutTotalConcurrencyConfigInput{TotalConcurrencyMem: mb})
			return err
		}
		if err := total(64000 + 1); apiCode(err) != scf.CodeTotalConcurrencyMemory {
			t.Fatalf("total over the region's limit: %v", err)
		}
		if err := total(51200 + 12800 - 1); apiCode(err) != scf.CodeReservedExceedTotal {
			t.Fatalf("total under allocated + 12800: %v", err)
		}
		if _, err := c.DeleteReservedConcurrencyConfig(ctx, &scf.DeleteReservedConcurrencyConfigInput{FunctionName: "fb"}); err != nil {
			t.Fatal(err)
		}
		if err := total(40000 + 12800); err != nil {
			t.Fatal(err)
		}
		acct, _ = c.GetAccount(ctx, nil)
		if acct.AccountUsage.UserConcurrencyMemLimit != 52800 || acct.AccountUsage.TotalAllocatedConcurrencyMem != 40000 {
			t.Fatalf("after PutTotal: %+v", acct.AccountUsage)
		}
		// Nothing reservable is left beyond fa's 40,000.
		if err := put("fb", 128); apiCode(err) != scf.CodeReservedMemory {
			t.Fatalf("fb with nothing left: %v", err)
		}
	})
}

// Provisioned concurrency 250 starts 100 instances a minute and is Done
// after three minutes; it is never reclaimed.
func TestProvisionedRampsAt100PerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "warm"})
		ctx := t.Context()
		if _, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "warm"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: "warm", Qualifier: "1", VersionProvisionedConcurrencyNum: 250,
		}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		check := func(at time.Duration, available uint64, status string) {
			t.Helper()
			time.Sleep(time.Until(t0.Add(at)))
			synctest.Wait() // let the model clock's timers due now run first
			out, err := c.GetProvisionedConcurrencyConfig(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "warm", Qualifier: "1"})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Allocated) != 1 {
				t.Fatalf("at %v: %+v", at, out)
			}
			a := out.Allocated[0]
			if a.AllocatedProvisionedConcurrencyNum != 250 || a.AvailableProvisionedConcurrencyNum != available || a.Status != status {
				t.Fatalf("at %v: %+v; want %d available, %s", at, a, available, status)
			}
		}
		check(0, 0, scf.ProvisionedStatusInProgress)
		check(time.Minute-time.Second, 0, scf.ProvisionedStatusInProgress)
		check(time.Minute, 100, scf.ProvisionedStatusInProgress)
		check(2*time.Minute, 200, scf.ProvisionedStatusInProgress)
		check(3*time.Minute-time.Second, 200, scf.ProvisionedStatusInProgress)
		check(3*time.Minute, 250, scf.ProvisionedStatusDone)
		check(5*time.Hour, 250, scf.ProvisionedStatusDone) // never reclaimed, unlike idle elastic instances
		for _, inst := range srv.Instances("warm") {
			if inst.State != scftest.StateProvisioned || inst.Qualifier != "1" {
				t.Fatalf("instance %+v", inst)
			}
		}
		if cnt := srv.Counters(); cnt.ProvisionedStarts != 250 || cnt.ElasticStarts != 0 || cnt.InstancesStopped != 0 {
			t.Fatalf("counters %+v", cnt)
		}
	})
}

// Requests of a provisioned version use its instances first; the overflow
// goes to elastic instances. $LATEST runs on elastic ones only.
func TestProvisionedOverflowGoesElastic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "mixed", Timeout: 300 * time.Second, Handler: g.handler})
		ctx := t.Context()
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "mixed"})
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: "mixed", Qualifier: "1", VersionProvisionedConcurrencyNum: 3,
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "mixed", Qualifier: "1"}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, q := range []string{"1", "1", "1", "1", "$LATEST"} {
			wg.Go(func() {
				if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "mixed", Qualifier: q}); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		var prov, elastic1, latest int
		for _, inst := range srv.Instances("mixed") {
			switch {
			case inst.State != scftest.StateBusy:
				t.Fatalf("instance %+v not busy", inst)
			case inst.Provisioned:
				prov++
			case inst.Qualifier == "1":
				elastic1++
			default:
				latest++
			}
		}
		if prov != 3 || elastic1 != 1 || latest != 1 {
			t.Fatalf("provisioned %d, elastic v1 %d, $LATEST %d; want 3, 1, 1", prov, elastic1, latest)
		}
		close(g.release)
		wg.Wait()
	})
}

// The documented errors of provisioned concurrency.
func TestProvisionedErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "pv", MemorySizeMB: 256})
		ctx := t.Context()
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "pv"})
		put := func(q string, n uint64) error {
			return c.Call(ctx, "PutProvisionedConcurrencyConfig", map[string]any{
				"FunctionName": "pv", "Qualifier": q, "VersionProvisionedConcurrencyNum": n}, nil)
		}
		if err := put("$LATEST", 1); apiCode(err) != scf.CodeInvalidQualifier {
			t.Fatalf("$LATEST: %v", err)
		}
		if err := put("$DEFAULT", 1); apiCode(err) != scf.CodeInvalidQualifier {
			t.Fatalf("alias: %v", err)
		}
		if err := put("7", 1); apiCode(err) != scf.CodeVersionNotFound {
			t.Fatalf("unknown version: %v", err)
		}
		// Unreserved: at most (128,000 − 12,800) ÷ 256 = 450 instances.
		if err := put("1", 451); apiCode(err) != scf.CodeProvisionedExceedAvail {
			t.Fatalf("over the allocatable quota: %v", err)
		}
		if _, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "pv", ReservedConcurrencyMem: 1024}); err != nil {
			t.Fatal(err)
		}
		if err := put("1", 5); apiCode(err) != scf.CodeProvisionedExceedRes {
			t.Fatalf("over the reservation: %v", err)
		}
		if err := put("1", 4); err != nil {
			t.Fatal(err)
		}
		if err := put("1", 2); apiCode(err) != scf.CodeProvisionedInProgress {
			t.Fatalf("while in progress: %v", err)
		}
		if _, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "pv", ReservedConcurrencyMem: 512}); apiCode(err) != scf.CodeProvisionedExceedRes {
			t.Fatalf("reservation below the provisioned memory: %v", err)
		}
		time.Sleep(time.Minute + time.Second) // the ramp's step at 1 min, not the same instant
		synctest.Wait()
		list, err := c.ListFunctions(ctx, nil)
		if err != nil || len(list.Functions) != 1 || *list.Functions[0].ReservedConcurrencyMem != 1024 || *list.Functions[0].TotalProvisionedConcurrencyMem != 1024 {
			t.Fatalf("ListFunctions: %+v %v", list, err)
		}
		if _, err := c.DeleteProvisionedConcurrencyConfig(ctx, &scf.DeleteProvisionedConcurrencyConfigInput{FunctionName: "pv", Qualifier: "1"}); err != nil {
			t.Fatal(err)
		}
		// The instances are reclaimed like idle elastic ones.
		for _, inst := range srv.Instances("pv") {
			if inst.Provisioned || inst.State != scftest.StateIdle {
				t.Fatalf("after Delete: %+v", inst)
			}
		}
		time.Sleep(scftest.DefaultIdleRetention)
		synctest.Wait()
		if n := len(srv.Instances("pv")); n != 0 {
			t.Fatalf("%d instances left after the retention time", n)
		}
	})
}

// A provisioning task that cannot get its instances because elastic ones
// hold the reservation becomes Failed with a reason.
func TestProvisionedFailsWithoutQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "tight", Timeout: 600 * time.Second, Handler: g.handler})
		ctx := t.Context()
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "tight"})
		c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "tight", ReservedConcurrencyMem: 256})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "tight"}) })
		}
		synctest.Wait()
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: "tight", Qualifier: "1", VersionProvisionedConcurrencyNum: 2}); err != nil {
			t.Fatal(err)
		}
		_, err := c.WaitProvisionedConcurrencyReady(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "tight", Qualifier: "1"})
		var pe *scf.ProvisionedConcurrencyError
		if !errors.As(err, &pe) || !strings.Contains(pe.StatusReason, "only 0 of 2") || pe.Info.Status != scf.ProvisionedStatusFailed {
			t.Fatalf("wait: %v", err)
		}
		close(g.release)
		wg.Wait()
	})
}

// Utilization tracking scales out at once and in after the cool-down.
func TestProvisionedTracking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "track", Timeout: 300 * time.Second, Handler: g.handler})
		ctx := t.Context()
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "track"})
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: "track", Qualifier: "1", ProvisionedType: scf.ProvisionedTypeTracking,
			TrackingTarget: 0.5, MinCapacity: 1, MaxCapacity: 10,
		}); err != nil {
			t.Fatal(err)
		}
		get := func() scf.VersionProvisionedConcurrencyInfo {
			out, err := c.GetProvisionedConcurrencyConfig(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "track"})
			if err != nil || len(out.Allocated) != 1 {
				t.Fatalf("%+v %v", out, err)
			}
			return out.Allocated[0]
		}
		if a := get(); a.AllocatedProvisionedConcurrencyNum != 1 {
			t.Fatalf("initial target %+v, want MinCapacity 1", a)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "track", Qualifier: "1"}) })
		}
		time.Sleep(11 * time.Second)
		if a := get(); a.AllocatedProvisionedConcurrencyNum != 8 {
			t.Fatalf("4 in flight at 0.5: target %d, want 8", a.AllocatedProvisionedConcurrencyNum)
		}
		close(g.release)
		wg.Wait()
		time.Sleep(5 * time.Minute)
		if a := get(); a.AllocatedProvisionedConcurrencyNum != 8 {
			t.Fatalf("scaled in during the cool-down: %+v", a)
		}
		time.Sleep(6 * time.Minute)
		if a := get(); a.AllocatedProvisionedConcurrencyNum != 1 || a.Status != scf.ProvisionedStatusDone {
			t.Fatalf("after the cool-down: %+v, want 1 Done", a)
		}
	})
}

// Scheduled provisioning: each action sets the target from its fire time
// on (cron in China Standard Time: the bubble starts at 08:00 CST).
func TestProvisionedTriggerActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		addFunction(t, srv, scftest.FunctionConfig{Name: "sched"})
		ctx := t.Context()
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "sched"})
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: "sched", Qualifier: "1",
			TriggerActions: []scf.TriggerAction{
				{TriggerName: "morning", TriggerProvisionedConcurrencyNum: 2, TriggerCronConfig: "0 5 8 * * * *"},
				{TriggerName: "end", TriggerProvisionedConcurrencyNum: 0, TriggerCronConfig: "0 10 8 * * * *"},
			},
		}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		get := func(at time.Duration) scf.VersionProvisionedConcurrencyInfo {
			time.Sleep(time.Until(t0.Add(at)))
			synctest.Wait() // let the model clock's timers due now run first
			out, err := c.GetProvisionedConcurrencyConfig(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "sched", Qualifier: "1"})
			if err != nil || len(out.Allocated) != 1 {
				t.Fatalf("%+v %v", out, err)
			}
			return out.Allocated[0]
		}
		if a := get(4 * time.Minute); a.AllocatedProvisionedConcurrencyNum != 0 || len(a.TriggerActions) != 2 {
			t.Fatalf("before 08:05: %+v", a)
		}
		if a := get(5*time.Minute + time.Second); a.AllocatedProvisionedConcurrencyNum != 2 || a.Status != scf.ProvisionedStatusInProgress {
			t.Fatalf("after 08:05: %+v", a)
		}
		if a := get(6*time.Minute + time.Second); a.AvailableProvisionedConcurrencyNum != 2 || a.Status != scf.ProvisionedStatusDone {
			t.Fatalf("a minute later: %+v", a)
		}
		if a := get(10*time.Minute + time.Second); a.AllocatedProvisionedConcurrencyNum != 0 || a.AvailableProvisionedConcurrencyNum != 0 {
			t.Fatalf("after 08:10: %+v", a)
		}
		// The next day it runs again.
		if a := get(24*time.Hour + 6*time.Minute + time.Second); a.AvailableProvisionedConcurrencyNum != 2 {
			t.Fatalf("the next morning: %+v", a)
		}
		for _, bad := range []struct{ cron, code string }{
			{"0 5 8 * *", scf.CodeInvalidTriggerCron},
			{"0 61 8 * * * *", scf.CodeInvalidTriggerCron},
			{"0 5 8 1 1 * 1999", ""}, // never fires again: accepted, inert
		} {
			err := c.Call(ctx, "PutProvisionedConcurrencyConfig", map[string]any{
				"FunctionName": "sched", "Qualifier": "1", "VersionProvisionedConcurrencyNum": 0,
				"TriggerActions": []map[string]any{{"TriggerName": "x", "TriggerProvisionedConcurrencyNum": 1, "TriggerCronConfig": bad.cron}},
			}, nil)
			if apiCode(err) != bad.code {
				t.Errorf("cron %q: %v, want %q", bad.cron, err, bad.code)
			}
		}
	})
}

// An out-of-memory recycles its instance and aborts exactly the requests
// in flight on it; the other instance's requests go on.
func TestOutOfMemoryAbortsOnlyItsInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, _ := start(t, scftest.WithColdStart(0))
		g := newGate()
		addFunction(t, srv, scftest.FunctionConfig{Name: "web", Type: scf.FunctionTypeHTTP, MaxConcurrency: 3,
			Timeout: 60 * time.Second, Handler: g.handler})
		hc := srv.HTTPClient()
		results := make(chan httpResult, 6)
		for range 6 {
			go func() { results <- post(t, hc, srv.FunctionURL("web"), "{}") }()
		}
		synctest.Wait()
		invs := g.invocations()
		byInstance := map[string][]*scftest.Invocation{}
		for _, inv := range invs {
			if got := inv.Header.Get("X-Scf-Request-Id"); got != inv.RequestID || got == "" {
				t.Fatalf("X-Scf-Request-Id %q, request id %q", got, inv.RequestID)
			}
			byInstance[inv.InstanceID] = append(byInstance[inv.InstanceID], inv)
		}
		if len(invs) != 6 || len(byInstance) != 2 {
			t.Fatalf("%d requests on %d instances, want 6 on 2", len(invs), len(byInstance))
		}
		victim := invs[0]
		doomed := map[string]bool{}
		for _, inv := range byInstance[victim.InstanceID] {
			doomed[inv.RequestID] = true
		}
		victim.ReportMemory(129 << 20) // the function has 128 MB
		synctest.Wait()
		if len(results) != 3 {
			t.Fatalf("%d requests ended, want the 3 of the instance", len(results))
		}
		for range 3 {
			r := <-results
			if r.status != scf.StatusMemoryLimitReached || !doomed[r.id] || !strings.Contains(r.body, `"statusCode":434`) {
				t.Fatalf("aborted request: %+v", r)
			}
		}
		left := srv.Instances("web")
		if len(left) != 1 || left[0].ID == victim.InstanceID || left[0].InFlight != 3 {
			t.Fatalf("instances after the OOM: %+v", left)
		}
		close(g.release)
		for range 3 {
			if r := <-results; r.status != 200 || doomed[r.id] || r.body != "ok" {
				t.Fatalf("surviving request: %+v", r)
			}
		}
	})
}

// A timeout aborts only its own request: on a multi-concurrency instance
// the other request finishes and the instance stays; a single-request
// instance is recycled.
func TestTimeoutAbortsOnlyItsRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t)
		handler := func(ctx context.Context, inv *scftest.Invocation) (string, error) {
			d := 500 * time.Millisecond
			if strings.Contains(inv.Event, "slow") {
				d = 5 * time.Second
			}
			if err := inv.Sleep(ctx, d); err != nil {
				return "", err
			}
			return "done", nil
		}
		addFunction(t, srv, scftest.FunctionConfig{Name: "web", Type: scf.FunctionTypeHTTP, MaxConcurrency: 2, Timeout: time.Second, Handler: handler})
		addFunction(t, srv, scftest.FunctionConfig{Name: "ev", Timeout: time.Second, Handler: handler})
		hc := srv.HTTPClient()
		var slow, fast httpResult
		var wg sync.WaitGroup
		wg.Go(func() { slow = post(t, hc, srv.FunctionURL("web"), `"slow"`) })
		wg.Go(func() { fast = post(t, hc, srv.FunctionURL("web"), `"fast"`) })
		wg.Wait()
		if slow.status != scf.StatusTimeLimitReached || !strings.Contains(slow.body, `"errorCode":-1`) ||
			!strings.Contains(slow.body, "timed out after 1 seconds") || fast.status != 200 {
			t.Fatalf("slow %+v, fast %+v", slow, fast)
		}
		if in := srv.Instances("web"); len(in) != 1 || in[0].State != scftest.StateIdle {
			t.Fatalf("the multi-concurrency instance should stay: %+v", in)
		}
		_, err := c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: "ev", Event: `"slow"`})
		var fe *scf.FunctionError
		if !errors.As(err, &fe) || fe.StatusCode != scf.StatusTimeLimitReached || fe.ErrorCode != -1 || fe.Result == nil || fe.Result.Duration != 1000 {
			t.Fatalf("event function: %v (%+v)", err, fe)
		}
		if in := srv.Instances("ev"); len(in) != 0 {
			t.Fatalf("the single-request instance should be recycled: %+v", in)
		}
	})
}

// Idle elastic instances are reused first and recycled after the
// retention time.
func TestIdleRetentionAndReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithIdleRetention(5*time.Minute))
		addFunction(t, srv, scftest.FunctionConfig{Name: "fn"})
		ctx := t.Context()
		call := func() {
			t.Helper()
			if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"}); err != nil {
				t.Fatal(err)
			}
		}
		call()
		time.Sleep(4 * time.Minute)
		call()
		if cnt := srv.Counters(); cnt.ElasticStarts != 1 {
			t.Fatalf("the idle instance was not reused: %+v", cnt)
		}
		time.Sleep(5*time.Minute - time.Second)
		if n := len(srv.Instances("fn")); n != 1 {
			t.Fatalf("recycled before its retention: %d", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(srv.Instances("fn")); n != 0 {
			t.Fatalf("kept after its retention: %d", n)
		}
		call()
		if cnt := srv.Counters(); cnt.ElasticStarts != 2 || cnt.InstancesStopped != 1 {
			t.Fatalf("counters %+v", cnt)
		}
	})
}

// A synchronous API invocation is cut at 300 s whatever the Timeout (here
// through the $DEFAULT alias); an asynchronous one gets the full Timeout.
func TestSyncInvocationCappedAt300Seconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := start(t, scftest.WithColdStart(0))
		var a attempts
		addFunction(t, srv, scftest.FunctionConfig{Name: "long", Timeout: 900 * time.Second, Handler: func(ctx context.Context, inv *scftest.Invocation) (string, error) {
			if err := inv.Sleep(ctx, 400*time.Second); err != nil {
				return "", err
			}
			a.add(inv)
			return "finished", nil
		}})
		start := time.Now()
		_, err := c.InvokeFunction(t.Context(), &scf.InvokeFunctionInput{FunctionName: "long"})
		if scf.FunctionStatus(err) != scf.StatusTimeLimitReached || !strings.Contains(err.Error(), "after 300 seconds") || time.Since(start) != 300*time.Second {
			t.Fatalf("sync: %v after %v", err, time.Since(start))
		}
		id := invokeAsync(t, c, "long", "{}")
		time.Sleep(401 * time.Second)
		if st := requestStatus(t, c, "long", id); st.RetCode != scf.RetCodeSucceeded || st.RetMsg != "finished" || st.Duration != 400000 {
			t.Fatalf("async: %+v", st)
		}
	})
}
