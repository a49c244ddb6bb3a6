package replicascale

// The child processes: how the benchmark starts them (its own executable
// again, with the role and its configuration in the environment) and talks
// to their control APIs.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
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
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	waited chan error
	addr   string
	http   *http.Client
}

// startProc starts this executable again as a child with role and cfg, and
// reads the address it listens on ("listening ADDR", its first line).
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
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, stdoutW, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return nil, err
	}
	cmd.Stdout = stdoutW
	err = cmd.Start()
	stdoutW.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{
		name: name, cmd: cmd, stdin: stdin, waited: make(chan error, 1),
		http: &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, DisableCompression: true},
			Timeout:   5 * time.Minute,
		},
	}
	line := make(chan string, 1)
	go func() {
		defer stdout.Close()
		br := bufio.NewReader(stdout)
		l, _ := br.ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, br)
	}()
	go func() { p.waited <- cmd.Wait() }()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			return nil, errors.Join(fmt.Errorf("%s said %q, not its address", name, l), p.stop())
		}
		p.addr = addr
		return p, nil
	case <-timer.C:
		return nil, errors.Join(fmt.Errorf("%s did not report its address within 20s", name), p.stop())
	case <-ctx.Done():
		return nil, errors.Join(context.Cause(ctx), p.stop())
	}
}

// stop closes the child's stdin and waits for it to exit; it kills it if
// it has not exited within 10 s.
func (p *proc) stop() error {
	p.http.CloseIdleConnections()
	p.stdin.Close()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case err := <-p.waited:
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.waited
		return fmt.Errorf("%s did not exit within 10s of its stdin closing; killed", p.name)
	}
}

// call sends a control request (body JSON-encoded unless nil) and decodes
// the answer into out.
func (p *proc) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.addr+controlPrefix+path, rd)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s: %s: %s", p.name, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", p.name, path, err)
	}
	return nil
}

func (p *proc) get(ctx context.Context, path string, out any) error {
	return p.call(ctx, http.MethodGet, path, nil, out)
}

// reply writes v as JSON, or err as a 500.
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // an error means the benchmark went away
}

// decodeBody decodes a control request's JSON body into v.
func decodeBody(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(v)
}

// serveChild listens on 127.0.0.1:0, announces the address on stdout
// ("listening ADDR") and serves h until stdin reaches EOF (the benchmark
// closed it, or died) or ctx ends.
func serveChild(ctx context.Context, h http.Handler, stdin io.Reader, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		close(eof)
	}()
	if _, err := fmt.Fprintf(stdout, "listening %s\n", ln.Addr()); err != nil {
		hs.Close()
		<-served
		return fmt.Errorf("announce address: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-eof:
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	// No graceful shutdown: the process exits right after, and the kernel
	// closes the sockets. The stdin reader ends with the process.
	hs.Close()
	<-served
	return nil
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

// vmRSS reads the resident set size from /proc/self/status.
func vmRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// fdLimit is the process's limit of open files (the soft limit, which the
// Go runtime raises to the hard one at start-up).
func fdLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	return rl.Cur, nil
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
