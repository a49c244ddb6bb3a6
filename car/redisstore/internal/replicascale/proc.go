package replicascale

// The child processes: how the benchmark starts them (its own executable
// again, with the role and its configuration in the environment) and talks
// to their control APIs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"

	"github.com/tcconcurrency/sdk-go/internal/benchmark/childproc"
)

// Environment variables that make the executable a child process.
const (
	envRole   = "REPLICASCALE_ROLE"   // "replica" or "client"
	envConfig = "REPLICASCALE_CONFIG" // the role's configuration, JSON
)

const controlPrefix = "/ctl/"

// ChildRole reports whether this process was started as a child of the
// benchmark. If so, Child runs it.
func ChildRole() bool { return os.Getenv(envRole) != "" }

// Child runs this process's role until its stdin reaches EOF, and returns
// the exit code. The test binary's TestMain calls it when ChildRole holds.
func Child(ctx context.Context) int {
	role, raw := os.Getenv(envRole), os.Getenv(envConfig)
	var err error
	switch role {
	case "replica":
		var cfg replicaConfig
		if err = json.Unmarshal([]byte(raw), &cfg); err == nil {
			err = runReplica(ctx, cfg, os.Stdin, os.Stdout)
		}
	case "client":
		var cfg clientConfig
		if err = json.Unmarshal([]byte(raw), &cfg); err == nil {
			err = runClient(ctx, cfg, os.Stdin, os.Stdout)
		}
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "replicascale %s: %v\n", role, err)
		return 1
	}
	return 0
}

// proc is a running child process.
type proc struct{ *childproc.Proc }

// startProc starts this executable again as a child with role and cfg, and
// reads the address it listens on.
func startProc(ctx context.Context, name, role string, cfg any, stderr io.Writer) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate own executable: %w", err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envConfig+"="+string(raw))
	cmd.Stderr = stderr
	p, err := childproc.Start(ctx, name, cmd)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

func (p *proc) stop() error { return p.Stop() }

// call sends a control request (body JSON-encoded unless nil) and decodes
// the answer into out.
func (p *proc) call(ctx context.Context, method, path string, body, out any) error {
	return p.Call(ctx, method, controlPrefix+path, body, out)
}

func (p *proc) get(ctx context.Context, path string, out any) error {
	return p.call(ctx, http.MethodGet, path, nil, out)
}

// memSnapshot is a process's memory, taken after runtime.GC (twice, so
// that sync.Pools are emptied) and debug.FreeOSMemory.
type memSnapshot struct {
	HeapInuse  uint64 `json:"heap_inuse_bytes"`
	StackInuse uint64 `json:"stack_inuse_bytes"`
	Sys        uint64 `json:"sys_bytes"`
	RSS        uint64 `json:"rss_bytes"`
	Goroutines int    `json:"goroutines"`
}
