package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	scfv "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/scf/v20180416"
)

// startRefserverProcess builds examples/refserver and runs it as a process
// on a free loopback port, as a client in another language would use it.
func startRefserverProcess(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "refserver")
	build := exec.Command("go", "build", "-o", bin, "./examples/refserver")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building refserver: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-secret-id", "AKIDconformance0001", "-secret-key", "conformance-key")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addrRe := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)`)
	lines := bufio.NewScanner(stdout)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := addrRe.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
				return
			}
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("refserver printed no address")
	}
	return ""
}

// TestOfficialSDKAgainstRefserverProcess: the official Go SDK's generic
// client runs the CAR lifecycle, and its typed SCF client an invocation,
// against the standalone reference server.
func TestOfficialSDKAgainstRefserverProcess(t *testing.T) {
	addr := startRefserverProcess(t)
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = addr
	cpf.HttpProfile.Scheme = "HTTP"
	cred := common.NewCredential("AKIDconformance0001", "conformance-key")
	client := common.NewCommonClient(cred, "ap-guangzhou", cpf)

	call := func(action string, params map[string]any) map[string]any {
		t.Helper()
		req := tchttp.NewCommonRequest("car", "2022-01-10", action)
		if err := req.SetActionParameters(params); err != nil {
			t.Fatal(err)
		}
		resp := tchttp.NewCommonResponse()
		if err := client.Send(req, resp); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		var body struct{ Response map[string]any }
		if err := json.Unmarshal(resp.GetBody(), &body); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		return body.Response
	}
	user := map[string]any{"UserId": "official-user", "UserIp": "10.0.0.9"}
	call("ApplyConcurrent", map[string]any{"UserId": "official-user", "UserIp": "10.0.0.9", "ProjectId": "cap-cartest1"})
	if s, _ := call("CreateSession", user)["ServerSession"].(string); s == "" {
		t.Fatal("CreateSession returned no ServerSession")
	}
	if n := call("DescribeConcurrentCount", map[string]any{"ProjectId": "cap-cartest1"}); n["Running"] != 1.0 {
		t.Fatalf("DescribeConcurrentCount: %v", n)
	}
	call("DestroySession", map[string]any{"UserId": "official-user"})

	sc, err := scfv.NewClient(cred, "ap-guangzhou", cpf)
	if err != nil {
		t.Fatal(err)
	}
	create := scfv.NewCreateFunctionRequest()
	create.FunctionName = common.StringPtr("echo")
	create.Environment = &scfv.Environment{Variables: []*scfv.Variable{{Key: common.StringPtr("SCFTEST_RESULT"), Value: common.StringPtr(`"pong"`)}}}
	if _, err := sc.CreateFunctionWithContext(t.Context(), create); err != nil {
		t.Fatal(err)
	}
	inv := scfv.NewInvokeRequest()
	inv.FunctionName = common.StringPtr("echo")
	out, err := sc.InvokeWithContext(t.Context(), inv)
	if err != nil || out.Response.Result == nil || *out.Response.Result.RetMsg != `"pong"` {
		t.Fatalf("Invoke: %v %v", out, err)
	}
}
