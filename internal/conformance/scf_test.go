package conformance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	tcscf "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/scf/v20180416"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// officialSCF returns the official typed SCF client pointed at srv.
func officialSCF(t *testing.T, srv *scftest.Server) *tcscf.Client {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	c, err := tcscf.NewClient(common.NewCredential(srv.Credentials().SecretId, srv.Credentials().SecretKey), "ap-guangzhou", cpf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdkCode returns the code of the official SDK's error type.
func scfCode(t *testing.T, err error) string {
	t.Helper()
	var e *tcerr.TencentCloudSDKError
	if !errors.As(err, &e) {
		t.Fatalf("want a *TencentCloudSDKError, got %T: %v", err, err)
	}
	if e.RequestId == "" {
		t.Fatalf("error without a RequestId: %v", err)
	}
	return e.Code
}

func scfStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func scfU64(p *uint64) uint64 {
	if p == nil {
		return 1<<64 - 1
	}
	return *p
}

func scfI64(p *int64) int64 {
	if p == nil {
		return -1 << 63
	}
	return *p
}

// The official SDK's typed SCF client runs every action the scf package
// covers against scftest, and parses every response and error.
func TestOfficialSDKAgainstSCFReferenceServer(t *testing.T) {
	srv := scftest.Start(t, scftest.WithManualClock(time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC)), scftest.WithColdStart(0))
	c := officialSCF(t, srv)
	ctx := context.Background()
	failing := func(_ context.Context, inv *scftest.Invocation) (string, error) {
		switch inv.Event {
		case `"oom"`:
			return "", scftest.Fail(scf.StatusMemoryLimitReached, "used 300 MB")
		case `"bug"`:
			return "", errors.New("ZeroDivisionError")
		}
		return "hello from scf", nil
	}

	// CreateFunction, Event and HTTP with multi-concurrency.
	cf := tcscf.NewCreateFunctionRequest()
	cf.FunctionName = common.StringPtr("conf")
	cf.MemorySize = common.Int64Ptr(256)
	cf.Timeout = common.Int64Ptr(10)
	cf.Runtime = common.StringPtr("Go1")
	cf.Handler = common.StringPtr("main")
	cf.Code = &tcscf.Code{CosBucketName: common.StringPtr("bucket"), CosObjectName: common.StringPtr("/code.zip")}
	cf.Environment = &tcscf.Environment{Variables: []*tcscf.Variable{{Key: common.StringPtr("STAGE"), Value: common.StringPtr("test")}}}
	cf.Tags = []*tcscf.Tag{{Key: common.StringPtr("team"), Value: common.StringPtr("sdk")}}
	cf.AsyncRunEnable = common.StringPtr("FALSE")
	if _, err := c.CreateFunctionWithContext(ctx, cf); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetHandler("conf", failing); err != nil {
		t.Fatal(err)
	}
	web := tcscf.NewCreateFunctionRequest()
	web.FunctionName = common.StringPtr("web")
	web.Type = common.StringPtr("HTTP")
	web.InstanceConcurrencyConfig = &tcscf.InstanceConcurrencyConfig{DynamicEnabled: common.StringPtr("FALSE"), MaxConcurrency: common.Uint64Ptr(20)}
	if _, err := c.CreateFunctionWithContext(ctx, web); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunctionWithContext(ctx, cf); scfCode(t, err) != scf.CodeFunctionExists {
		t.Fatalf("duplicate CreateFunction: %v", err)
	}

	// GetFunction.
	gf := tcscf.NewGetFunctionRequest()
	gf.FunctionName = common.StringPtr("web")
	got, err := c.GetFunctionWithContext(ctx, gf)
	if err != nil {
		t.Fatal(err)
	}
	r := got.Response
	if scfStr(r.FunctionName) != "web" || scfI64(r.MemorySize) != 128 || scfI64(r.Timeout) != 3 || scfStr(r.Type) != "HTTP" || scfStr(r.Qualifier) != "$LATEST" ||
		r.InstanceConcurrencyConfig == nil || scfU64(r.InstanceConcurrencyConfig.MaxConcurrency) != 20 || scfStr(r.Status) != "Active" || scfStr(r.RequestId) == "<nil>" {
		t.Fatalf("GetFunction: %s", got.ToJsonString())
	}

	// UpdateFunctionConfiguration.
	uf := tcscf.NewUpdateFunctionConfigurationRequest()
	uf.FunctionName = common.StringPtr("web")
	uf.Timeout = common.Int64Ptr(20)
	uf.InstanceConcurrencyConfig = &tcscf.InstanceConcurrencyConfig{MaxConcurrency: common.Uint64Ptr(50)}
	if _, err := c.UpdateFunctionConfigurationWithContext(ctx, uf); err != nil {
		t.Fatal(err)
	}
	got, _ = c.GetFunctionWithContext(ctx, gf)
	if scfI64(got.Response.Timeout) != 20 || scfU64(got.Response.InstanceConcurrencyConfig.MaxConcurrency) != 50 {
		t.Fatalf("after UpdateFunctionConfiguration: %s", got.ToJsonString())
	}
	bad := tcscf.NewUpdateFunctionConfigurationRequest()
	bad.FunctionName = common.StringPtr("conf")
	bad.MemorySize = common.Int64Ptr(100)
	if _, err := c.UpdateFunctionConfigurationWithContext(ctx, bad); scfCode(t, err) != scf.CodeInvalidMemorySize {
		t.Fatalf("bad MemorySize: %v", err)
	}

	// PublishVersion, three times (static, scheduled, tracking).
	for want := range []string{"1", "2", "3"} {
		pv := tcscf.NewPublishVersionRequest()
		pv.FunctionName = common.StringPtr("conf")
		pv.Description = common.StringPtr("release")
		out, err := c.PublishVersionWithContext(ctx, pv)
		if err != nil || scfStr(out.Response.FunctionVersion) != []string{"1", "2", "3"}[want] || scfI64(out.Response.MemorySize) != 256 {
			t.Fatalf("PublishVersion: %v %v", err, out)
		}
	}

	// Reserved concurrency: Put, Get, errors, Delete.
	pr := tcscf.NewPutReservedConcurrencyConfigRequest()
	pr.FunctionName = common.StringPtr("conf")
	pr.ReservedConcurrencyMem = common.Uint64Ptr(2048)
	if _, err := c.PutReservedConcurrencyConfigWithContext(ctx, pr); err != nil {
		t.Fatal(err)
	}
	gr := tcscf.NewGetReservedConcurrencyConfigRequest()
	gr.FunctionName = common.StringPtr("conf")
	res, err := c.GetReservedConcurrencyConfigWithContext(ctx, gr)
	if err != nil || scfU64(res.Response.ReservedMem) != 2048 {
		t.Fatalf("GetReservedConcurrencyConfig: %v %v", err, res)
	}
	over := tcscf.NewPutReservedConcurrencyConfigRequest()
	over.FunctionName = common.StringPtr("web")
	over.ReservedConcurrencyMem = common.Uint64Ptr(128000)
	if _, err := c.PutReservedConcurrencyConfigWithContext(ctx, over); scfCode(t, err) != scf.CodeReservedMemory {
		t.Fatalf("over-reservation: %v", err)
	}

	// Provisioned concurrency: static, scheduled, tracking; Get; errors; Delete.
	pp := tcscf.NewPutProvisionedConcurrencyConfigRequest()
	pp.FunctionName = common.StringPtr("conf")
	pp.Qualifier = common.StringPtr("1")
	pp.VersionProvisionedConcurrencyNum = common.Uint64Ptr(2)
	if _, err := c.PutProvisionedConcurrencyConfigWithContext(ctx, pp); err != nil {
		t.Fatal(err)
	}
	sched := tcscf.NewPutProvisionedConcurrencyConfigRequest()
	sched.FunctionName = common.StringPtr("conf")
	sched.Qualifier = common.StringPtr("2")
	sched.VersionProvisionedConcurrencyNum = common.Uint64Ptr(0)
	sched.ProvisionedType = common.StringPtr("Default")
	sched.TriggerActions = []*tcscf.TriggerAction{
		{TriggerName: common.StringPtr("am"), TriggerProvisionedConcurrencyNum: common.Uint64Ptr(1), TriggerCronConfig: common.StringPtr("0 0 9 * * * *"), ProvisionedType: common.StringPtr("Default")},
		{TriggerName: common.StringPtr("pm"), TriggerProvisionedConcurrencyNum: common.Uint64Ptr(0), TriggerCronConfig: common.StringPtr("0 0 18 * * * *")},
	}
	if _, err := c.PutProvisionedConcurrencyConfigWithContext(ctx, sched); err != nil {
		t.Fatal(err)
	}
	track := tcscf.NewPutProvisionedConcurrencyConfigRequest()
	track.FunctionName = common.StringPtr("conf")
	track.Qualifier = common.StringPtr("3")
	track.VersionProvisionedConcurrencyNum = common.Uint64Ptr(0)
	track.ProvisionedType = common.StringPtr("ConcurrencyUtilizationTracking")
	track.TrackingTarget = common.Float64Ptr(0.8)
	track.MinCapacity = common.Uint64Ptr(1)
	track.MaxCapacity = common.Uint64Ptr(4)
	if _, err := c.PutProvisionedConcurrencyConfigWithContext(ctx, track); err != nil {
		t.Fatal(err)
	}
	latest := tcscf.NewPutProvisionedConcurrencyConfigRequest()
	latest.FunctionName = common.StringPtr("conf")
	latest.Qualifier = common.StringPtr("$LATEST")
	latest.VersionProvisionedConcurrencyNum = common.Uint64Ptr(1)
	if _, err := c.PutProvisionedConcurrencyConfigWithContext(ctx, latest); scfCode(t, err) != scf.CodeInvalidQualifier {
		t.Fatalf("$LATEST: %v", err)
	}
	tooMany := tcscf.NewPutProvisionedConcurrencyConfigRequest()
	tooMany.FunctionName = common.StringPtr("conf")
	tooMany.Qualifier = common.StringPtr("1")
	tooMany.VersionProvisionedConcurrencyNum = common.Uint64Ptr(5)
	if _, err := c.PutProvisionedConcurrencyConfigWithContext(ctx, tooMany); scfCode(t, err) != scf.CodeProvisionedInProgress {
		t.Fatalf("while in progress: %v", err)
	}
	gp := tcscf.NewGetProvisionedConcurrencyConfigRequest()
	gp.FunctionName = common.StringPtr("conf")
	prov, err := c.GetProvisionedConcurrencyConfigWithContext(ctx, gp)
	if err != nil || len(prov.Response.Allocated) != 3 {
		t.Fatalf("GetProvisionedConcurrencyConfig: %v %v", err, prov)
	}
	a := prov.Response.Allocated
	if scfStr(a[0].Qualifier) != "1" || scfU64(a[0].AllocatedProvisionedConcurrencyNum) != 2 || scfU64(a[0].AvailableProvisionedConcurrencyNum) != 0 ||
		scfStr(a[0].Status) != "InProgress" || len(a[1].TriggerActions) != 2 || scfStr(a[1].TriggerActions[0].TriggerCronConfig) != "0 0 9 * * * *" ||
		scfU64(a[2].AllocatedProvisionedConcurrencyNum) != 1 {
		t.Fatalf("GetProvisionedConcurrencyConfig: %s", prov.ToJsonString())
	}
	// 2048 MB reserved − (2 + 0 + 4 max) × 256 MB = 512 MB = 2 more instances.
	if scfU64(prov.Response.UnallocatedConcurrencyNum) != 2 {
		t.Fatalf("UnallocatedConcurrencyNum %d", scfU64(prov.Response.UnallocatedConcurrencyNum))
	}
	srv.Advance(time.Minute)
	gp.Qualifier = common.StringPtr("1")
	prov, _ = c.GetProvisionedConcurrencyConfigWithContext(ctx, gp)
	if len(prov.Response.Allocated) != 1 || scfStr(prov.Response.Allocated[0].Status) != "Done" || scfU64(prov.Response.Allocated[0].AvailableProvisionedConcurrencyNum) != 2 {
		t.Fatalf("a minute later: %s", prov.ToJsonString())
	}

	// Account: PutTotalConcurrencyConfig, GetAccount.
	pt := tcscf.NewPutTotalConcurrencyConfigRequest()
	pt.TotalConcurrencyMem = common.Uint64Ptr(100000)
	if _, err := c.PutTotalConcurrencyConfigWithContext(ctx, pt); err != nil {
		t.Fatal(err)
	}
	pt.TotalConcurrencyMem = common.Uint64Ptr(200000)
	if _, err := c.PutTotalConcurrencyConfigWithContext(ctx, pt); scfCode(t, err) != scf.CodeTotalConcurrencyMemory {
		t.Fatalf("PutTotal over the region's limit: %v", err)
	}
	acct, err := c.GetAccountWithContext(ctx, tcscf.NewGetAccountRequest())
	if err != nil {
		t.Fatal(err)
	}
	u := acct.Response.AccountUsage
	if scfI64(u.TotalConcurrencyMem) != 128000 || scfI64(u.UserConcurrencyMemLimit) != 100000 || scfI64(u.TotalAllocatedConcurrencyMem) != 2048 ||
		len(u.Namespace) != 1 || scfI64(u.Namespace[0].FunctionsCount) != 2 || scfI64(acct.Response.AccountLimit.Namespace[0].MaxMsgTTL) != 21600 {
		t.Fatalf("GetAccount: %s", acct.ToJsonString())
	}

	// ListFunctions.
	lf := tcscf.NewListFunctionsRequest()
	lf.Limit = common.Int64Ptr(10)
	lf.Order = common.StringPtr("ASC")
	lf.Orderby = common.StringPtr("FunctionName")
	list, err := c.ListFunctionsWithContext(ctx, lf)
	if err != nil || scfI64(list.Response.TotalCount) != 2 || scfStr(list.Response.Functions[0].FunctionName) != "conf" ||
		scfU64(list.Response.Functions[0].ReservedConcurrencyMem) != 2048 || scfU64(list.Response.Functions[0].TotalProvisionedConcurrencyMem) != 6*256 ||
		list.Response.Functions[1].ReservedConcurrencyMem != nil {
		t.Fatalf("ListFunctions: %v %s", err, list.ToJsonString())
	}

	// Invocations: Invoke (sync and async), InvokeFunction, GetRequestStatus.
	inv := tcscf.NewInvokeRequest()
	inv.FunctionName = common.StringPtr("conf")
	inv.InvocationType = common.StringPtr("RequestResponse")
	inv.ClientContext = common.StringPtr(`{"k":1}`)
	inv.LogType = common.StringPtr("Tail")
	out, err := c.InvokeWithContext(ctx, inv)
	if err != nil || scfStr(out.Response.Result.RetMsg) != "hello from scf" || scfStr(out.Response.Result.ErrMsg) != "" || out.Response.Result.MemUsage == nil {
		t.Fatalf("Invoke: %v %v", err, out)
	}
	firstID := scfStr(out.Response.Result.FunctionRequestId)
	async := tcscf.NewInvokeRequest()
	async.FunctionName = common.StringPtr("conf")
	async.InvocationType = common.StringPtr("Event")
	async.Qualifier = common.StringPtr("1")
	aout, err := c.InvokeWithContext(ctx, async)
	if err != nil || scfStr(aout.Response.Result.FunctionRequestId) == "" {
		t.Fatalf("async Invoke: %v %v", err, aout)
	}
	ivf := tcscf.NewInvokeFunctionRequest()
	ivf.FunctionName = common.StringPtr("conf")
	ivf.Qualifier = common.StringPtr("1")
	ivf.Event = common.StringPtr(`{"n":2}`)
	ivf.RoutingKey = common.StringPtr(`{"user":"a"}`)
	fout, err := c.InvokeFunctionWithContext(ctx, ivf)
	if err != nil || scfStr(fout.Response.Result.RetMsg) != "hello from scf" || scfI64(fout.Response.Result.InvokeResult) != 0 {
		t.Fatalf("InvokeFunction: %v %v", err, fout)
	}
	grs := tcscf.NewGetRequestStatusRequest()
	grs.FunctionName = common.StringPtr("conf")
	grs.FunctionRequestId = common.StringPtr(firstID)
	status, err := c.GetRequestStatusWithContext(ctx, grs)
	if err != nil || scfI64(status.Response.TotalCount) != 1 || scfI64(status.Response.Data[0].RetCode) != 0 || scfStr(status.Response.Data[0].RequestId) != firstID ||
		status.Response.Data[0].MemUsage == nil || status.Response.Data[0].Duration == nil {
		t.Fatalf("GetRequestStatus: %v %v", err, status)
	}
	grs.FunctionRequestId = aout.Response.Result.FunctionRequestId
	if status, err := c.GetRequestStatusWithContext(ctx, grs); err != nil || scfI64(status.Response.Data[0].RetCode) != 0 {
		t.Fatalf("GetRequestStatus of the async event: %v %v", err, status)
	}

	// Execution failures arrive in the Result; the scf parser reads what the
	// official SDK parsed.
	for _, tc := range []struct {
		event  string
		status int
	}{{`"oom"`, scf.StatusMemoryLimitReached}, {`"bug"`, scf.StatusUserCodeException}} {
		inv.ClientContext = common.StringPtr(tc.event)
		out, err := c.InvokeWithContext(ctx, inv)
		if err != nil {
			t.Fatal(err)
		}
		rr := out.Response.Result
		ours := scf.Result{FunctionRequestId: scfStr(rr.FunctionRequestId), RetMsg: scfStr(rr.RetMsg), ErrMsg: scfStr(rr.ErrMsg), InvokeResult: scfI64(rr.InvokeResult)}
		if got := scf.FunctionStatus(ours.Err()); got != tc.status || !strings.Contains(scfStr(rr.ErrMsg), `"requestId":"`+scfStr(rr.FunctionRequestId)) {
			t.Fatalf("%s: status %d from %s", tc.event, got, out.ToJsonString())
		}
	}

	// Request-level failures are API errors with the documented codes.
	ivf.Qualifier = common.StringPtr("9")
	if _, err := c.InvokeFunctionWithContext(ctx, ivf); scfCode(t, err) != scf.CodeQualifierNotFound {
		t.Fatalf("unknown qualifier: %v", err)
	}
	ivf.Qualifier = nil
	pr.ReservedConcurrencyMem = common.Uint64Ptr(0)
	pr.FunctionName = common.StringPtr("web")
	if _, err := c.PutReservedConcurrencyConfigWithContext(ctx, pr); err != nil {
		t.Fatal(err)
	}
	webCall := tcscf.NewInvokeFunctionRequest()
	webCall.FunctionName = common.StringPtr("web")
	if _, err := c.InvokeFunctionWithContext(ctx, webCall); scfCode(t, err) != scf.CodeInvalidFunctionType {
		t.Fatalf("InvokeFunction of an HTTP function: %v", err)
	}
	pr.FunctionName = common.StringPtr("conf")
	pr.ReservedConcurrencyMem = common.Uint64Ptr(2048)
	dr := tcscf.NewDeleteReservedConcurrencyConfigRequest()
	dr.FunctionName = common.StringPtr("conf")
	if _, err := c.DeleteReservedConcurrencyConfigWithContext(ctx, dr); err != nil {
		t.Fatal(err)
	}
	res, _ = c.GetReservedConcurrencyConfigWithContext(ctx, gr)
	if res.Response.ReservedMem != nil {
		t.Fatalf("after DeleteReserved: %s", res.ToJsonString())
	}
	pr.ReservedConcurrencyMem = common.Uint64Ptr(0)
	if _, err := c.PutReservedConcurrencyConfigWithContext(ctx, pr); scfCode(t, err) != scf.CodeProvisionedExceedRes {
		t.Fatalf("reserving less than the provisioned memory: %v", err)
	}
	zero := tcscf.NewCreateFunctionRequest()
	zero.FunctionName = common.StringPtr("zero")
	if _, err := c.CreateFunctionWithContext(ctx, zero); err != nil {
		t.Fatal(err)
	}
	pr.FunctionName = common.StringPtr("zero")
	if _, err := c.PutReservedConcurrencyConfigWithContext(ctx, pr); err != nil {
		t.Fatal(err)
	}
	ivf.FunctionName = common.StringPtr("zero")
	if _, err := c.InvokeFunctionWithContext(ctx, ivf); scfCode(t, err) != scf.CodeQuota {
		t.Fatalf("reserved 0, InvokeFunction: %v", err)
	}
	inv.ClientContext = nil
	inv.FunctionName = common.StringPtr("zero")
	out, err = c.InvokeWithContext(ctx, inv)
	if err != nil || !strings.Contains(scfStr(out.Response.Result.ErrMsg), `"statusCode":432`) {
		t.Fatalf("reserved 0, Invoke: %v %v", err, out)
	}
	gf.FunctionName = common.StringPtr("missing")
	if _, err := c.GetFunctionWithContext(ctx, gf); scfCode(t, err) != scf.CodeFunctionNotFound {
		t.Fatalf("unknown function: %v", err)
	}

	// DeleteProvisionedConcurrencyConfig, DeleteFunction.
	srv.Advance(time.Minute)
	for _, q := range []string{"1", "2", "3"} {
		dp := tcscf.NewDeleteProvisionedConcurrencyConfigRequest()
		dp.FunctionName = common.StringPtr("conf")
		dp.Qualifier = common.StringPtr(q)
		if _, err := c.DeleteProvisionedConcurrencyConfigWithContext(ctx, dp); err != nil {
			t.Fatalf("DeleteProvisioned %s: %v", q, err)
		}
	}
	dv := tcscf.NewDeleteFunctionRequest()
	dv.FunctionName = common.StringPtr("conf")
	dv.Qualifier = common.StringPtr("3")
	if _, err := c.DeleteFunctionWithContext(ctx, dv); err != nil {
		t.Fatal(err)
	}
	df := tcscf.NewDeleteFunctionRequest()
	df.FunctionName = common.StringPtr("conf")
	if _, err := c.DeleteFunctionWithContext(ctx, df); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteFunctionWithContext(ctx, df); scfCode(t, err) != scf.CodeFunctionNotFound {
		t.Fatalf("second DeleteFunction: %v", err)
	}
}

// Throttling answers are the official RequestLimitExceeded error.
func TestOfficialSDKSeesSCFRateLimit(t *testing.T) {
	srv := scftest.Start(t, scftest.WithRateLimit("GetAccount", 1))
	c := officialSCF(t, srv)
	var err error
	for i := 0; i < 50 && err == nil; i++ {
		_, err = c.GetAccountWithContext(context.Background(), tcscf.NewGetAccountRequest())
	}
	if scfCode(t, err) != scf.CodeRequestLimitExceeded {
		t.Fatalf("want RequestLimitExceeded, got %v", err)
	}
}

// The alias and asynchronous-retry actions scftest models parse too.
func TestOfficialSDKAliasesAndAsyncConfig(t *testing.T) {
	srv := scftest.Start(t)
	c := officialSCF(t, srv)
	ctx := context.Background()
	if err := srv.AddFunction(scftest.FunctionConfig{Name: "aliased"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		pv := tcscf.NewPublishVersionRequest()
		pv.FunctionName = common.StringPtr("aliased")
		if _, err := c.PublishVersionWithContext(ctx, pv); err != nil {
			t.Fatal(err)
		}
	}
	ca := tcscf.NewCreateAliasRequest()
	ca.FunctionName = common.StringPtr("aliased")
	ca.Name = common.StringPtr("live")
	ca.FunctionVersion = common.StringPtr("1")
	ca.Description = common.StringPtr("canary")
	ca.RoutingConfig = &tcscf.RoutingConfig{
		AdditionalVersionWeights: []*tcscf.VersionWeight{{Version: common.StringPtr("2"), Weight: common.Float64Ptr(0.1)}},
		AddtionVersionMatchs: []*tcscf.VersionMatch{{Version: common.StringPtr("2"), Key: common.StringPtr("user"),
			Method: common.StringPtr("exact"), Expression: common.StringPtr("beta")}},
	}
	if _, err := c.CreateAliasWithContext(ctx, ca); err != nil {
		t.Fatal(err)
	}
	ga := tcscf.NewGetAliasRequest()
	ga.FunctionName = common.StringPtr("aliased")
	ga.Name = common.StringPtr("live")
	alias, err := c.GetAliasWithContext(ctx, ga)
	if err != nil || scfStr(alias.Response.FunctionVersion) != "1" || len(alias.Response.RoutingConfig.AdditionalVersionWeights) != 1 ||
		*alias.Response.RoutingConfig.AdditionalVersionWeights[0].Weight != 0.1 || scfStr(alias.Response.Description) != "canary" {
		t.Fatalf("GetAlias: %v %v", err, alias)
	}
	la := tcscf.NewListAliasesRequest()
	la.FunctionName = common.StringPtr("aliased")
	list, err := c.ListAliasesWithContext(ctx, la)
	if err != nil || scfU64(list.Response.TotalCount) != 2 || len(list.Response.Aliases) != 2 {
		t.Fatalf("ListAliases: %v %v", err, list)
	}
	ivf := tcscf.NewInvokeFunctionRequest()
	ivf.FunctionName = common.StringPtr("aliased")
	ivf.Qualifier = common.StringPtr("live")
	ivf.RoutingKey = common.StringPtr(`{"user":"beta"}`)
	if _, err := c.InvokeFunctionWithContext(ctx, ivf); err != nil {
		t.Fatal(err)
	}
	ua := tcscf.NewUpdateAliasRequest()
	ua.FunctionName = common.StringPtr("aliased")
	ua.Name = common.StringPtr("live")
	ua.FunctionVersion = common.StringPtr("2")
	if _, err := c.UpdateAliasWithContext(ctx, ua); err != nil {
		t.Fatal(err)
	}
	da := tcscf.NewDeleteAliasRequest()
	da.FunctionName = common.StringPtr("aliased")
	da.Name = common.StringPtr("$DEFAULT")
	if _, err := c.DeleteAliasWithContext(ctx, da); scfCode(t, err) != "InvalidParameterValue.Alias" {
		t.Fatalf("deleting $DEFAULT: %v", err)
	}
	da.Name = common.StringPtr("live")
	if _, err := c.DeleteAliasWithContext(ctx, da); err != nil {
		t.Fatal(err)
	}

	ue := tcscf.NewUpdateFunctionEventInvokeConfigRequest()
	ue.FunctionName = common.StringPtr("aliased")
	ue.AsyncTriggerConfig = &tcscf.AsyncTriggerConfig{RetryConfig: []*tcscf.RetryConfig{{RetryNum: common.Int64Ptr(1)}}, MsgTTL: common.Int64Ptr(600)}
	if _, err := c.UpdateFunctionEventInvokeConfigWithContext(ctx, ue); err != nil {
		t.Fatal(err)
	}
	ge := tcscf.NewGetFunctionEventInvokeConfigRequest()
	ge.FunctionName = common.StringPtr("aliased")
	cfg, err := c.GetFunctionEventInvokeConfigWithContext(ctx, ge)
	if err != nil || scfI64(cfg.Response.AsyncTriggerConfig.MsgTTL) != 600 || scfI64(cfg.Response.AsyncTriggerConfig.RetryConfig[0].RetryNum) != 1 {
		t.Fatalf("GetFunctionEventInvokeConfig: %v %v", err, cfg)
	}
}
