package scf_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// Size a workload with SCF's formula: concurrency = QPS × duration.
func ExamplePlanConcurrency() {
	p, err := scf.PlanConcurrency(scf.PlanInput{
		QPS:             2000,
		AverageDuration: 20 * time.Millisecond,
		MemorySizeMB:    128,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("instances:", p.Concurrency)
	fmt.Println("quota MB:", p.QuotaMB, "fits:", p.Fits)
	fmt.Println("cold scale-out:", p.ColdScaleOut, "provisioned warm-up:", p.ProvisionedWarmUp)
	// Output:
	// instances: 40
	// quota MB: 5120 fits: true
	// cold scale-out: 0s provisioned warm-up: 1m0s
}

// A failed invocation is a *FunctionError: branch on its status code.
func ExampleClient_InvokeFunction() {
	srv, err := scftest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if err := srv.AddFunction(scftest.FunctionConfig{Name: "hello", Behavior: &scftest.Behavior{Result: "hello from scf"}}); err != nil {
		panic(err)
	}
	c := srv.Client()
	defer c.CloseIdleConnections()
	ctx := context.Background()

	out, err := c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "hello", Event: `{"name":"scf"}`})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Result.RetMsg)

	// Reserved concurrency 0 disables the function.
	c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "hello", ReservedConcurrencyMem: 0})
	_, err = c.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "hello"})
	var fe *scf.FunctionError
	if errors.As(err, &fe) {
		switch fe.StatusCode {
		case scf.StatusResourceLimitReached:
			fmt.Println("432: over the concurrency quota, class", fe.Class())
		case scf.StatusResourceLimit:
			fmt.Println("429: scaling out too fast")
		}
	}
	// Output:
	// hello from scf
	// 432: over the concurrency quota, class overrun
}

// The Invoker keeps calls within the function's quota and absorbs
// overruns.
func ExampleInvoker() {
	srv, err := scftest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.AddFunction(scftest.FunctionConfig{Name: "work", MemorySizeMB: 256})
	c := srv.Client()
	defer c.CloseIdleConnections()
	ctx := context.Background()
	c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{FunctionName: "work", ReservedConcurrencyMem: 1024})

	iv, err := scf.NewInvoker(c)
	if err != nil {
		panic(err)
	}
	for i := range 3 {
		out, err := iv.Invoke(ctx, &scf.InvokerInput{FunctionName: "work", Event: fmt.Sprintf(`{"n":%d}`, i)})
		if err != nil {
			panic(err)
		}
		fmt.Println(out.Result.RetMsg)
	}
	limit, _ := iv.Limit("work")
	fmt.Println("in-flight limit:", limit, "(1024 MB reserved ÷ 256 MB)")
	// Output:
	// {"n":0}
	// {"n":1}
	// {"n":2}
	// in-flight limit: 4 (1024 MB reserved ÷ 256 MB)
}

// modelClock lets the waiter's pauses move a manual model clock, so the
// three-minute ramp takes no real time.
type modelClock struct{ srv *scftest.Server }

func (m modelClock) Now() time.Time { return m.srv.Now() }

func (m modelClock) Sleep(ctx context.Context, d time.Duration) error {
	m.srv.Advance(d)
	return ctx.Err()
}

// Wait for provisioned concurrency: 250 instances start at 100 per minute.
func ExampleClient_WaitProvisionedConcurrencyReady() {
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	srv, err := scftest.NewServer(scftest.WithManualClock(start))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.AddFunction(scftest.FunctionConfig{Name: "api"})
	c := srv.Client()
	defer c.CloseIdleConnections()
	ctx := context.Background()

	v, _ := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: "api"})
	c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
		FunctionName: "api", Qualifier: v.FunctionVersion, VersionProvisionedConcurrencyNum: 250,
	})
	info, err := c.WaitProvisionedConcurrencyReady(ctx,
		&scf.GetProvisionedConcurrencyConfigInput{FunctionName: "api", Qualifier: v.FunctionVersion},
		scf.WithWaitClock(modelClock{srv}))
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Status, info.AvailableProvisionedConcurrencyNum, "of", info.AllocatedProvisionedConcurrencyNum)
	fmt.Println("took at least 3 minutes:", srv.Now().Sub(start) >= 3*time.Minute)
	// Output:
	// Done 250 of 250
	// took at least 3 minutes: true
}
