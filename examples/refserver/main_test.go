package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/car/cartest"
	"github.com/tcconcurrency/sdk-go/scf"
)

// startRefserver runs the process's run function on a free loopback port.
func startRefserver(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), &out, func(a string) { addrs <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return ""
}

func TestCARAndSCFOnOneAddress(t *testing.T) {
	addr := startRefserver(t, "-car-projects", "cap-a,cap-b", "-car-concurrencies", "2", "-car-cleanup", "0s")
	ctx := t.Context()
	creds := car.StaticCredentials(defaultSecretID, defaultSecretKey)

	cc, err := car.NewClient(car.WithEndpoint("http://"+addr), car.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.CloseIdleConnections()
	if _, err := cc.ApplyConcurrent(ctx, &car.ApplyConcurrentInput{UserId: "u1", UserIp: "10.0.0.1", ProjectId: "cap-b"}); err != nil {
		t.Fatal(err)
	}
	cs, err := cc.CreateSession(ctx, &car.CreateSessionInput{UserId: "u1", UserIp: "10.0.0.1", ClientSession: "cs"})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := cartest.DialStream(ctx, websocket.DefaultDialer, cs.ServerSession)
	if err != nil {
		t.Fatalf("client stream: %v", err)
	}
	count, err := cc.DescribeConcurrentCount(ctx, &car.DescribeConcurrentCountInput{ProjectId: "cap-b"})
	if err != nil || count.Total != 2 || count.Running != 1 {
		t.Fatalf("count %+v, %v", count, err)
	}
	if _, err := cc.DestroySession(ctx, &car.DestroySessionInput{UserId: "u1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stream.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("DestroySession did not close the client stream")
	}

	sc, err := scf.NewClient(scf.WithEndpoint("http://"+addr), scf.WithRegion("ap-guangzhou"), scf.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.CloseIdleConnections()
	_, err = sc.CreateFunction(ctx, &scf.CreateFunctionInput{FunctionName: "hello", Environment: &scf.Environment{
		Variables: []scf.Variable{{Key: "SCFTEST_RESULT", Value: `"hello from refserver"`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sc.InvokeFunction(ctx, &scf.InvokeFunctionInput{FunctionName: "hello"})
	if err != nil || !strings.Contains(res.Result.RetMsg, "hello from refserver") {
		t.Fatalf("invoke: %+v, %v", res, err)
	}

	// A wrong key is refused by whichever service the call names.
	bad, _ := car.NewClient(car.WithEndpoint("http://"+addr), car.WithCredentials(car.StaticCredentials(defaultSecretID, "wrong")))
	if _, err := bad.DescribeConcurrentCount(ctx, nil); !car.HasCode(err, car.CodeSignatureFailure) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "0.0.0.0:0"},
		{"-addr", "127.0.0.1:0", "-car-projects", " , "},
		{"-addr", "127.0.0.1:0", "-car-reconnect-wait", "5s"},
		{"-addr", "127.0.0.1:0", "-car-concurrencies", "0"},
	} {
		var out bytes.Buffer
		if err := run(t.Context(), args, &out, nil); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
