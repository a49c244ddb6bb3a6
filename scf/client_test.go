package scf_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/memnet"
	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

const fakeID, fakeKey = "AKIDscfclienttest", "scf-client-test-secret"

type captured struct {
	action, body string
}

// fake is a scripted SCF endpoint on an in-memory network: reply gives
// the status and body for each action.
type fake struct {
	mu    sync.Mutex
	calls []captured
}

func (f *fake) recorded() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.calls...)
}

func setupFake(t *testing.T, reply func(action string) (int, string), opts ...scf.Option) (*scf.Client, *fake) {
	t.Helper()
	f := &fake{}
	l := memnet.Listen("scf.fake")
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		action := r.Header.Get("X-TC-Action")
		f.mu.Lock()
		f.calls = append(f.calls, captured{action: action, body: string(body)})
		f.mu.Unlock()
		status, out := reply(action)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	})}
	go hs.Serve(l)
	t.Cleanup(func() { hs.Close() })
	base := []scf.Option{
		scf.WithEndpoint("http://scf.fake"), scf.WithCredentials(scf.StaticCredentials(fakeID, fakeKey)),
		scf.WithHTTPClient(&http.Client{Transport: &http.Transport{DialContext: l.DialContext}}),
		scf.WithRetry(scf.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: time.Millisecond}),
	}
	c, err := scf.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, f
}

func okReply(string) (int, string) { return 200, `{"Response":{"RequestId":"req-1"}}` }

// Every method sends its action with the API's field names; required
// numbers where 0 means something are always sent.
func TestRequestShapes(t *testing.T) {
	c, f := setupFake(t, okReply)
	ctx := context.Background()
	cases := []struct {
		call   func() error
		action string
		body   string
	}{
		{func() error {
			_, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "fn", ReservedConcurrencyMem: 0})
			return err
		}, "PutReservedConcurrencyConfig", `{"FunctionName":"fn","ReservedConcurrencyMem":0}`},
		{func() error {
			_, err := c.GetReservedConcurrencyConfig(ctx, &scf.GetReservedConcurrencyConfigInput{FunctionName: "fn", Namespace: "ns"})
			return err
		}, "GetReservedConcurrencyConfig", `{"FunctionName":"fn","Namespace":"ns"}`},
		{func() error {
			_, err := c.DeleteReservedConcurrencyConfig(ctx, &scf.DeleteReservedConcurrencyConfigInput{FunctionName: "fn"})
			return err
		}, "DeleteReservedConcurrencyConfig", `{"FunctionName":"fn"}`},
		{func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1", VersionProvisionedConcurrencyNum: 0,
				TriggerActions: []scf.TriggerAction{{TriggerName: "off", TriggerProvisionedConcurrencyNum: 0, TriggerCronConfig: "0 0 20 * * * *"}}})
			return err
		}, "PutProvisionedConcurrencyConfig", `{"FunctionName":"fn","Qualifier":"1","VersionProvisionedConcurrencyNum":0,"TriggerActions":[{"TriggerName":"off","TriggerProvisionedConcurrencyNum":0,"TriggerCronConfig":"0 0 20 * * * *"}]}`},
		{func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "2",
				ProvisionedType: scf.ProvisionedTypeTracking, TrackingTarget: 0.8, MinCapacity: 1, MaxCapacity: 10})
			return err
		}, "PutProvisionedConcurrencyConfig", `{"FunctionName":"fn","Qualifier":"2","VersionProvisionedConcurrencyNum":0,"ProvisionedType":"ConcurrencyUtilizationTracking","TrackingTarget":0.8,"MinCapacity":1,"MaxCapacity":10}`},
		{func() error {
			_, err := c.GetProvisionedConcurrencyConfig(ctx, &scf.GetProvisionedConcurrencyConfigInput{FunctionName: "fn"})
			return err
		}, "GetProvisionedConcurrencyConfig", `{"FunctionName":"fn"}`},
		{func() error {
			_, err := c.DeleteProvisionedConcurrencyConfig(ctx, &scf.DeleteProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "3"})
			return err
		}, "DeleteProvisionedConcurrencyConfig", `{"FunctionName":"fn","Qualifier":"3"}`},
		{func() error {
			_, err := c.PutTotalConcurrencyConfig(ctx, &scf.PutTotalConcurrencyConfigInput{TotalConcurrencyMem: 128000})
			return err
		}, "PutTotalConcurrencyConfig", `{"TotalConcurrencyMem":128000}`},
		{func() error { _, err := c.GetAccount(ctx, nil); return err }, "GetAccount", `{}`},
		{func() error {
			_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn", InvocationType: scf.InvocationEvent, ClientContext: `{"k":1}`})
			return err
		}, "Invoke", `{"FunctionName":"fn","InvocationType":"Event","ClientContext":"{\"k\":1}"}`},
		{func() error {
			_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn", Qualifier: "$DEFAULT", Event: `{}`, LogType: scf.LogTypeTail, RoutingKey: `{"u":"1"}`})
			return err
		}, "InvokeFunction", `{"FunctionName":"fn","Qualifier":"$DEFAULT","Event":"{}","LogType":"Tail","RoutingKey":"{\"u\":\"1\"}"}`},
		{func() error {
			_, err := c.GetRequestStatus(ctx, &scf.GetRequestStatusInput{FunctionName: "fn", FunctionRequestId: "fr"})
			return err
		}, "GetRequestStatus", `{"FunctionName":"fn","FunctionRequestId":"fr"}`},
		{func() error {
			_, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "web", Type: scf.FunctionTypeHTTP, MemorySize: 256,
				InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{DynamicEnabled: scf.EnableFalse, MaxConcurrency: 20}})
			return err
		}, "CreateFunction", `{"FunctionName":"web","MemorySize":256,"Type":"HTTP","InstanceConcurrencyConfig":{"DynamicEnabled":"FALSE","MaxConcurrency":20}}`},
		{func() error {
			_, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "fn", Qualifier: "1"})
			return err
		}, "GetFunction", `{"FunctionName":"fn","Qualifier":"1"}`},
		{func() error {
			_, err := c.UpdateFunctionConfiguration(ctx, &scf.UpdateFunctionConfigurationInput{FunctionName: "web", InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{}})
			return err
		}, "UpdateFunctionConfiguration", `{"FunctionName":"web","InstanceConcurrencyConfig":{}}`},
		{func() error {
			_, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "fn", Description: "v"})
			return err
		}, "PublishVersion", `{"FunctionName":"fn","Description":"v"}`},
		{func() error { _, err := c.ListFunctions(ctx, nil); return err }, "ListFunctions", `{}`},
		{func() error {
			_, err := c.DeleteFunction(ctx, &scf.DeleteFunctionInput{FunctionName: "fn", Qualifier: "2"})
			return err
		}, "DeleteFunction", `{"FunctionName":"fn","Qualifier":"2"}`},
		{func() error {
			return c.Call(ctx, "ListAliases", map[string]string{"FunctionName": "fn"}, nil)
		}, "ListAliases", `{"FunctionName":"fn"}`},
	}
	for i, tc := range cases {
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.action, err)
		}
		got := f.recorded()
		if len(got) != i+1 || got[i].action != tc.action || got[i].body != tc.body {
			t.Fatalf("%s: sent %+v\nwant %s", tc.action, got[len(got)-1], tc.body)
		}
	}
}

// Bad input is rejected before anything is sent, naming the field and
// the rule.
func TestValidationSendsNothing(t *testing.T) {
	c, f := setupFake(t, okReply)
	ctx := context.Background()
	big := `"` + strings.Repeat("x", scf.MaxAsyncEventBytes) + `"`
	cases := []struct {
		field string
		call  func() error
	}{
		{"input", func() error { _, err := c.PutReservedConcurrencyConfig(ctx, nil); return err }},
		{"FunctionName", func() error {
			_, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{})
			return err
		}},
		{"FunctionName", func() error {
			_, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "9lives"})
			return err
		}},
		{"FunctionName", func() error {
			_, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "trailing-"})
			return err
		}},
		{"Qualifier", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "$LATEST", VersionProvisionedConcurrencyNum: 1})
			return err
		}},
		{"VersionProvisionedConcurrencyNum", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1", VersionProvisionedConcurrencyNum: 5,
				ProvisionedType: scf.ProvisionedTypeTracking, TrackingTarget: 0.5, MinCapacity: 1, MaxCapacity: 2})
			return err
		}},
		{"TrackingTarget", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1",
				ProvisionedType: scf.ProvisionedTypeTracking, TrackingTarget: 1, MinCapacity: 1, MaxCapacity: 2})
			return err
		}},
		{"TrackingTarget", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1",
				ProvisionedType: scf.ProvisionedTypeTracking, TrackingTarget: 0.555, MinCapacity: 1, MaxCapacity: 2})
			return err
		}},
		{"MaxCapacity", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1",
				ProvisionedType: scf.ProvisionedTypeTracking, TrackingTarget: 0.5, MinCapacity: 3, MaxCapacity: 2})
			return err
		}},
		{"MinCapacity", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1", MinCapacity: 3})
			return err
		}},
		{"TriggerActions[1].TriggerName", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1",
				TriggerActions: []scf.TriggerAction{{TriggerName: "a", TriggerCronConfig: "0 0 8 * * * *"}, {TriggerName: "a", TriggerCronConfig: "0 0 9 * * * *"}}})
			return err
		}},
		{"TriggerActions[0].TriggerCronConfig", func() error {
			_, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{FunctionName: "fn", Qualifier: "1",
				TriggerActions: []scf.TriggerAction{{TriggerName: "a", TriggerCronConfig: "0 0 8 * *"}}})
			return err
		}},
		{"TotalConcurrencyMem", func() error {
			_, err := c.PutTotalConcurrencyConfig(ctx, &scf.PutTotalConcurrencyConfigInput{TotalConcurrencyMem: 1000})
			return err
		}},
		{"InvocationType", func() error {
			_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn", InvocationType: "Async"})
			return err
		}},
		{"ClientContext", func() error {
			_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn", InvocationType: scf.InvocationEvent, ClientContext: big})
			return err
		}},
		{"ClientContext", func() error {
			_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn", ClientContext: "not json"})
			return err
		}},
		{"LogType", func() error {
			_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn", InvocationType: scf.InvocationEvent, LogType: scf.LogTypeTail})
			return err
		}},
		{"RoutingKey", func() error {
			_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn", RoutingKey: `{"n":1}`})
			return err
		}},
		{"Event", func() error {
			_, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn", Event: "{"})
			return err
		}},
		{"FunctionRequestId", func() error {
			_, err := c.GetRequestStatus(ctx, &scf.GetRequestStatusInput{FunctionName: "fn"})
			return err
		}},
		{"MemorySize", func() error {
			_, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "fn", MemorySize: 1000})
			return err
		}},
		{"Timeout", func() error {
			_, err := c.UpdateFunctionConfiguration(ctx, &scf.UpdateFunctionConfigurationInput{FunctionName: "fn", Timeout: 901})
			return err
		}},
		{"InstanceConcurrencyConfig", func() error {
			_, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "fn", InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{MaxConcurrency: 2}})
			return err
		}},
		{"InstanceConcurrencyConfig.MaxConcurrency", func() error {
			_, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "fn", Type: scf.FunctionTypeHTTP,
				InstanceConcurrencyConfig: &scf.InstanceConcurrencyConfig{MaxConcurrency: 101}})
			return err
		}},
		{"Type", func() error {
			_, err := c.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "fn", Type: "Web"})
			return err
		}},
		{"Limit", func() error {
			_, err := c.ListFunctions(ctx, &scf.ListFunctionsInput{Limit: 500})
			return err
		}},
		{"Qualifier", func() error {
			_, err := c.DeleteFunction(ctx, &scf.DeleteFunctionInput{FunctionName: "fn", Qualifier: "$LATEST"})
			return err
		}},
	}
	for _, tc := range cases {
		err := tc.call()
		var ve *scf.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || ve.Rule == "" || !scf.IsInvalidInput(err) ||
			!strings.Contains(err.Error(), tc.field) {
			t.Errorf("want a ValidationError for %s, got %v", tc.field, err)
		}
	}
	if n := len(f.recorded()); n != 0 {
		t.Fatalf("%d requests were sent", n)
	}
}

// Invoke and InvokeFunction are never retried once they may have reached
// the server; other actions are. A throttled Invoke is retried: the server
// did not run it.
func TestInvokeIsNeverRetriedOnceSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // the retry waits pass in fake time
		c, f := setupFake(t, func(string) (int, string) {
			return 503, `{"Response":{"Error":{"Code":"InternalError","Message":"unavailable"},"RequestId":"r"}}`
		})
		ctx := context.Background()
		count := func(action string) int {
			n := 0
			for _, call := range f.recorded() {
				if call.action == action {
					n++
				}
			}
			return n
		}
		if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"}); apiCode(err) != "InternalError" {
			t.Fatalf("InvokeFunction: %v", err)
		}
		c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn"})
		c.Call(ctx, "Invoke", map[string]string{"FunctionName": "fn"}, nil)
		c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "fn"})
		c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "fn"})
		if count("InvokeFunction") != 1 || count("Invoke") != 2 || count("PublishVersion") != 1 || count("GetFunction") != 3 {
			t.Fatalf("attempts: %+v", f.recorded())
		}

		throttled := 0
		c2, f2 := setupFake(t, func(string) (int, string) {
			if throttled++; throttled == 1 {
				return 200, `{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"slow down"},"RequestId":"r"}}`
			}
			return 200, `{"Response":{"Result":{"FunctionRequestId":"fr","RetMsg":"ok"},"RequestId":"r2"}}`
		})
		out, err := c2.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"})
		if err != nil || out.Result.RetMsg != "ok" || len(f2.recorded()) != 2 {
			t.Fatalf("throttled InvokeFunction: %+v %v (%d attempts)", out, err, len(f2.recorded()))
		}
	})
}

// How failures reach the caller: in the Result (ErrMsg) or, for
// InvokeFunction's request-level failures, as API errors; both become a
// *FunctionError, which also unwraps to the *APIError.
func TestFunctionErrorWireShapes(t *testing.T) {
	replies := map[string]string{
		"Invoke":         `{"Response":{"Result":{"FunctionRequestId":"fr-433","Duration":3000.2,"BillDuration":3001,"MemUsage":3207168,"RetMsg":"","ErrMsg":"{\"errorCode\":-1,\"errorMessage\":\"Invoking task timed out after 3 seconds\",\"requestId\":\"fr-433\",\"statusCode\":433}","Log":"","InvokeResult":-1},"RequestId":"r1"}}`,
		"InvokeFunction": `{"Response":{"Error":{"Code":"LimitExceeded.Quota","Message":"Function [fn] concurrency exceeded region unreserved quota 115200 MB"},"RequestId":"r2"}}`,
		"GetFunction":    `{"Response":{"Error":{"Code":"ResourceNotFound.Function","Message":"no"},"RequestId":"r3"}}`,
	}
	c, _ := setupFake(t, func(action string) (int, string) { return 200, replies[action] })
	ctx := context.Background()

	_, err := c.Invoke(ctx, &scf.InvokeInput{FunctionName: "fn", Qualifier: "1"})
	var fe *scf.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("Invoke: %v", err)
	}
	if fe.StatusCode != scf.StatusTimeLimitReached || fe.Name != "TimeLimitReached" || fe.ErrorCode != -1 || fe.FunctionRequestId != "fr-433" ||
		fe.RequestId != "r1" || fe.Action != "Invoke" || fe.FunctionName != "fn" || fe.Qualifier != "1" || fe.Result.MemUsage != 3207168 || fe.API != nil {
		t.Fatalf("Invoke: %+v", fe)
	}
	_, err = c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"})
	var apiErr *scf.APIError
	if !errors.As(err, &fe) || fe.StatusCode != scf.StatusResourceLimitReached || !errors.As(err, &apiErr) || apiErr.Code != scf.CodeQuota || fe.RequestId != "r2" {
		t.Fatalf("InvokeFunction: %v", err)
	}
	_, err = c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "fn"})
	if errors.As(err, &fe) || !scf.IsNotFound(err) {
		t.Fatalf("GetFunction: %v", err)
	}
}

// Secrets stay out of errors and logs.
func TestSecretsStayOut(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, _ := setupFake(t, func(string) (int, string) {
		return 200, `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad"},"RequestId":"r"}}`
	}, scf.WithLogger(logger))
	_, err := c.GetAccount(context.Background(), nil)
	if err == nil || strings.Contains(err.Error(), fakeKey) || strings.Contains(logs.String(), fakeKey) || !strings.Contains(logs.String(), "GetAccount") {
		t.Fatalf("error %v, logs %s", err, logs.String())
	}
}

func apiCode(err error) string {
	var e *scf.APIError
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

// Against the reference server: a connection dropped after the request
// was read is not retried for InvokeFunction (the function may have run),
// and is for GetFunction.
func TestDroppedInvokeIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, c := startServer(t)
		if err := srv.AddFunction(scftest.FunctionConfig{Name: "fn"}); err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		srv.InjectFault("InvokeFunction", scftest.Fault{Drop: true, Times: 3})
		srv.InjectFault("GetFunction", scftest.Fault{Drop: true, Times: 2})
		if _, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "fn"}); err == nil {
			t.Fatal("a dropped InvokeFunction succeeded")
		}
		if _, err := c.GetFunction(ctx, &scf.GetFunctionInput{FunctionName: "fn"}); err != nil {
			t.Fatalf("GetFunction after two drops: %v", err)
		}
		dropped := map[string]int{}
		for _, e := range srv.Events() {
			if e.Kind == "call" && e.Code == "(dropped)" {
				dropped[e.Action]++
			}
		}
		if dropped["InvokeFunction"] != 1 || dropped["GetFunction"] != 2 {
			t.Fatalf("dropped attempts %v", dropped)
		}
	})
}
