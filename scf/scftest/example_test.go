package scftest_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// A function's behaviour comes from Go code; the server models the
// instances it runs on.
func Example() {
	srv, err := scftest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	err = srv.AddFunction(scftest.FunctionConfig{Name: "resize", MemorySizeMB: 256,
		Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			if strings.Contains(inv.Event, "huge") {
				inv.ReportMemory(300 << 20) // over 256 MB: out of memory
			}
			return "resized " + inv.Event, nil
		}})
	if err != nil {
		panic(err)
	}
	c := srv.Client()
	defer c.CloseIdleConnections()
	ctx := context.Background()

	out, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "resize", Event: `"small.png"`})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Result.RetMsg)
	for _, inst := range srv.Instances("resize") {
		fmt.Println(inst.Qualifier, inst.State, inst.MemorySizeMB, "MB")
	}

	_, err = c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "resize", Event: `"huge.png"`})
	fmt.Println(scf.FunctionStatus(err), scf.StatusName(scf.FunctionStatus(err)))
	cnt := srv.Counters()
	fmt.Println("instances started:", cnt.ElasticStarts, "recycled:", cnt.InstancesStopped, "left:", len(srv.Instances("resize")))
	// Output:
	// resized "small.png"
	// $LATEST idle 256 MB
	// 434 MemoryLimitReached
	// instances started: 1 recycled: 1 left: 0
}

// HTTP functions are reached over HTTP; with MaxConcurrency above 1 each
// request carries its own X-Scf-Request-Id.
func ExampleServer_FunctionURL() {
	srv, err := scftest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.AddFunction(scftest.FunctionConfig{Name: "web", Type: scf.FunctionTypeHTTP, MaxConcurrency: 10,
		Handler: func(_ context.Context, inv *scftest.Invocation) (string, error) {
			same := inv.Header.Get("X-Scf-Request-Id") == inv.RequestID
			return fmt.Sprintf("%s %s, request id in header: %v", inv.Method, inv.Path, same), nil
		}})
	hc := srv.HTTPClient()
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.FunctionURL("web") + "/orders/42")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 GET /orders/42, request id in header: true
}
