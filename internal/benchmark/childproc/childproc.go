// Package childproc runs the child processes of the benchmarks that keep
// the server they measure apart from its load (hbscale, replicascale), so
// that one process's memory and CPU are the server's alone.
//
// The protocol is small. The parent starts the child with a pipe on its
// stdin and stdout. The child listens on 127.0.0.1:0, writes
// "listening ADDR" as its first line, and serves its control API (JSON over
// HTTP) until its stdin reaches EOF: the parent closed it, or the parent
// died, so no child outlives its benchmark.
package childproc

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
	"time"
)

// Timings of the protocol.
const (
	announceWithin = 20 * time.Second // the child's first line
	exitWithin     = 10 * time.Second // after its stdin closes, before a kill
	callTimeout    = 5 * time.Minute  // one control call (some wait out a phase)
)

// Proc is a running child process.
type Proc struct {
	Name string // for errors, e.g. "replica r1"
	Addr string // host:port its control API listens on

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	waited chan error // receives cmd.Wait's result
	http   *http.Client
}

// Start starts cmd (its Stdin and Stdout must be unset: Start takes them)
// and waits for the address it announces. On any failure the child is
// stopped before Start returns.
func Start(ctx context.Context, name string, cmd *exec.Cmd) (*Proc, error) {
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
	stdoutW.Close() // the child has its copy
	if err != nil {
		stdin.Close()
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{
		Name: name, cmd: cmd, stdin: stdin, waited: make(chan error, 1),
		http: &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, DisableCompression: true},
			Timeout:   callTimeout,
		},
	}
	line := make(chan string, 1)
	go func() {
		// The first line, then everything else to the end of the process,
		// so that the child never blocks on a full pipe.
		defer stdout.Close()
		br := bufio.NewReader(stdout)
		l, _ := br.ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, br)
	}()
	go func() { p.waited <- cmd.Wait() }()
	timer := time.NewTimer(announceWithin)
	defer timer.Stop()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			return nil, errors.Join(fmt.Errorf("%s said %q, not its address", name, l), p.Stop())
		}
		p.Addr = addr
		return p, nil
	case <-timer.C:
		return nil, errors.Join(fmt.Errorf("%s did not report its address within %v", name, announceWithin), p.Stop())
	case <-ctx.Done():
		return nil, errors.Join(context.Cause(ctx), p.Stop())
	}
}

// Stop closes the child's stdin and waits for it to exit; it kills the
// child if it has not exited within 10 s. It reports a failed exit.
func (p *Proc) Stop() error {
	p.http.CloseIdleConnections()
	p.stdin.Close()
	timer := time.NewTimer(exitWithin)
	defer timer.Stop()
	select {
	case err := <-p.waited:
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.waited
		return fmt.Errorf("%s did not exit within %v of its stdin closing; killed", p.Name, exitWithin)
	}
}

// Call sends a control request to path (body JSON-encoded unless nil) and
// decodes the JSON answer into out. A status other than 200 is an error
// carrying the start of the body.
func (p *Proc) Call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.Addr+path, rd)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.Name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s: %s: %s", p.Name, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", p.Name, path, err)
	}
	return nil
}

// Serve is the child's side: it listens on 127.0.0.1:0, announces the
// address on stdout and serves h until stdin reaches EOF or ctx ends.
func Serve(ctx context.Context, h http.Handler, stdin io.Reader, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	eof := make(chan struct{})
	go func() {
		// Ends with the process: stdin is closed by then, or the process
		// is exiting.
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
	// closes the sockets. Close ends the control connections.
	hs.Close()
	<-served
	return nil
}

// Reply writes v as JSON, or err as a 500.
func Reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // an error means the parent went away
}

// DecodeBody decodes a control request's JSON body (at most 64 MiB) into v.
func DecodeBody(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(v)
}
