package apiserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/internal/tc3"
)

// The attack tests serve on loopback, as the reference servers do, and
// measure a well-behaved client twice in the same run: alone (the
// baseline), then while the attack runs. Each asserts that the client's
// p99 stays within maxSlowdown of its baseline and that the heap stays
// within a stated bound above where it started.

// maxSlowdown bounds a well-behaved client's p99 under attack, as a
// multiple of its p99 alone. Before the limits, the amplification request
// and the 10 MB bodies took it from about 1 ms to seconds (thousands of
// times).
const maxSlowdown = 50

type target struct {
	s    *Server
	hs   *http.Server
	ln   *Listener
	addr string
}

func startTarget(t *testing.T, limits Limits) *target {
	t.Helper()
	if raceEnabled {
		t.Skip("an attack test measures latency and memory; under -race it would measure the race detector (it runs without -race in CI's first test pass)")
	}
	s := demoServer(t, limits)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limits.Listener(l)
	hs := limits.HTTPServer(s, nil, ln)
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return &target{s: s, hs: hs, ln: ln, addr: l.Addr().String()}
}

// wellBehaved makes n signed calls one after the other, on fresh
// connections when fresh is set, and returns their latencies; every call
// must succeed.
func (tg *target) wellBehaved(t *testing.T, n int, fresh bool) []time.Duration {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: fresh}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	out := make([]time.Duration, 0, n)
	for range n {
		r := signedPing(tg.addr, []byte("{}"), key)
		r.RequestURI = ""
		start := time.Now()
		resp, err := c.Do(r)
		if err != nil {
			t.Fatalf("a well-behaved call failed: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, time.Since(start))
		if bytes.Contains(b, []byte(`"Error"`)) {
			t.Fatalf("a well-behaved call was refused: %s", b)
		}
	}
	return out
}

func p99(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// heapWatch samples the live heap (runtime/metrics) until stopped and
// reports the peak above the level at its start.
type heapWatch struct {
	base uint64
	peak uint64
	stop chan struct{}
	done chan struct{}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func watchHeap() *heapWatch {
	runtime.GC()
	h := &heapWatch{base: heapBytes(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			h.peak = max(h.peak, heapBytes())
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// growth stops the watch and returns the peak growth of the heap.
func (h *heapWatch) growth() uint64 {
	close(h.stop)
	<-h.done
	if h.peak < h.base {
		return 0
	}
	return h.peak - h.base
}

func mb(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// underAttack measures the baseline, starts the attacker process (this
// test binary, running TestAttacker, so that the attack's own CPU and
// memory are not the server's), measures again while it runs, stops it,
// measures the baseline again, and checks the bounds against the larger
// baseline (the host's load may drift meanwhile).
func underAttack(t *testing.T, tg *target, calls int, fresh bool, heapBound uint64, mode string, during func()) {
	underAttackWithin(t, tg, calls, fresh, maxSlowdown, heapBound, mode, during)
}

// underAttackWithin is underAttack with its own latency bound. The host
// is shared (CI runs packages in parallel on two cores), so a latency
// over the bound is measured once more, attack and baselines anew, and
// fails only if it is over again; the heap bound has no second chance.
func underAttackWithin(t *testing.T, tg *target, calls int, fresh bool, maxSlowdown time.Duration, heapBound uint64, mode string, during func()) {
	t.Helper()
	if measureAttack(t, tg, calls, fresh, maxSlowdown, heapBound, mode, during) {
		return
	}
	t.Logf("the p99 was over the bound: measuring again")
	if !measureAttack(t, tg, calls, fresh, maxSlowdown, heapBound, mode, during) {
		t.Errorf("the p99 under attack was more than %d× the baseline twice", int(maxSlowdown))
	}
}

// measureAttack runs one measurement; it reports whether the latency
// bound held.
func measureAttack(t *testing.T, tg *target, calls int, fresh bool, maxSlowdown time.Duration, heapBound uint64, mode string, during func()) bool {
	t.Helper()
	tg.wellBehaved(t, 20, fresh) // warm up
	before := p99(tg.wellBehaved(t, calls, fresh))
	h := watchHeap()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttacker$", "-test.v")
	cmd.Env = append(os.Environ(), "APISERVER_ATTACK="+mode, "APISERVER_ATTACK_ADDR="+tg.addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "attacker ready" {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatalf("the attacker did not start: %s", out.String())
	}
	lat := tg.wellBehaved(t, calls, fresh)
	if during != nil {
		during()
	}
	stdin.Close() // the attacker stops
	if err := cmd.Wait(); err != nil {
		t.Errorf("the attacker: %v\n%s", err, out.String())
	}
	pw.Close()
	grown := h.growth()
	after := p99(tg.wellBehaved(t, calls, fresh))
	base := max(before, after)
	got := p99(lat)
	t.Logf("well-behaved p99 %v alone (%v before, %v after), %v under attack (%.1f×); server heap peak +%s (bound %s)", base, before, after, got, float64(got)/float64(base), mb(grown), mb(heapBound))
	if grown > heapBound {
		t.Errorf("the heap grew by %s, bound %s", mb(grown), mb(heapBound))
	}
	return got <= maxSlowdown*base
}

// TestAttacker is the attacker process of the attack tests; it does
// nothing unless APISERVER_ATTACK names an attack. It attacks until its
// stdin closes (or, for the bodies, until all are answered).
func TestAttacker(t *testing.T) {
	mode, addr := os.Getenv("APISERVER_ATTACK"), os.Getenv("APISERVER_ATTACK_ADDR")
	if mode == "" {
		t.Skip("the attacker process of the attack tests")
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	attacks[mode](t, addr, stop)
}

var attacks = map[string]func(t *testing.T, addr string, stop <-chan struct{}){
	"amplification": func(t *testing.T, addr string, stop <-chan struct{}) {
		date := tc3.Date(time.Now().Unix())
		answers := make(map[string]bool)
		var mu sync.Mutex
		send := func(c *http.Client, names, size int) {
			r := signedPing(addr, []byte("{}"), key)
			r.RequestURI = ""
			r.Header.Set("X-A", strings.Repeat("a", size))
			list := "content-type;host" + strings.Repeat(";x-a", names)
			r.Header.Set("Authorization", tc3.Authorization(id, tc3.Scope(date, "car"), list, strings.Repeat("0", 64)))
			resp, err := c.Do(r)
			if err != nil {
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answer := strconv.Itoa(resp.StatusCode)
			if i := bytes.Index(b, []byte(`"Code":"`)); i >= 0 {
				answer += " " + string(b[i+8:])[:strings.IndexByte(string(b[i+8:]), '"')]
			}
			mu.Lock()
			answers[fmt.Sprintf("%d×%d: %s", names, size, answer)] = true
			mu.Unlock()
		}
		fmt.Println("attacker ready")
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				c := &http.Client{Transport: &http.Transport{}}
				defer c.CloseIdleConnections()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if i == 0 {
						send(c, 5000, 40<<10)
					} else {
						send(c, 75000, 310<<10)
					}
				}
			})
		}
		wg.Wait()
		var got []string
		for a := range answers {
			got = append(got, a)
		}
		slices.Sort(got)
		want := []string{"5000×40960: 200 AuthFailure.InvalidAuthorization", "75000×317440: 431"}
		if !slices.Equal(got, want) {
			t.Errorf("answers %q, want %q", got, want)
		}
	},
	"bodies": func(t *testing.T, addr string, stop <-chan struct{}) {
		body := bytes.Repeat([]byte(" "), MaxRequestBytes) // one buffer, shared by the 300 senders
		codes := make(map[string]int)
		var mu sync.Mutex
		fmt.Println("attacker ready")
		var wg sync.WaitGroup
		for range 300 {
			wg.Go(func() {
				c := &http.Client{Transport: &http.Transport{}}
				defer c.CloseIdleConnections()
				r := signedPing(addr, []byte("{}"), "not-the-key")
				r.RequestURI = ""
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
				resp, err := c.Do(r)
				code := "error"
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if i := bytes.Index(b, []byte(`"Code":"`)); i >= 0 {
						code = string(b[i+8:])
						code = code[:strings.IndexByte(code, '"')]
					}
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		t.Logf("answers to the 10 MB bodies: %v", codes)
		if codes["AuthFailure.SignatureFailure"]+codes["RequestLimitExceeded"] != 300 {
			t.Errorf("answers %v, want each SignatureFailure (read) or RequestLimitExceeded (refused unread)", codes)
		}
	},
	"slow": func(t *testing.T, addr string, stop <-chan struct{}) {
		conns := dialMany(t, addr, 2000, func(c net.Conn) {
			r := signedPing(addr, []byte("{}"), key)
			var b bytes.Buffer
			r.Header.Write(&b)
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n%s\r\n{", addr, b.String())
		})
		defer closeAll(conns)
		fmt.Println("attacker ready")
		drip := time.NewTicker(time.Second)
		defer drip.Stop()
		for {
			select {
			case <-stop:
				return
			case <-drip.C:
				for _, c := range conns {
					c.Write([]byte(" "))
				}
			}
		}
	},
	"idle": func(t *testing.T, addr string, stop <-chan struct{}) {
		conns := dialMany(t, addr, 2000, func(c net.Conn) {
			r := signedPing(addr, []byte("{}"), key)
			r.Write(c)
		})
		defer closeAll(conns)
		fmt.Println("attacker ready")
		<-stop
	},
}

// TestAttackAmplification: one header listed thousands of times in
// SignedHeaders plus one large header, signed with the public SecretId
// only, sent over and over on two connections. Before the caps, one
// 610 KB request cost minutes of CPU and gigabytes. Within the 64 KB
// header limit (5,000 names in 20 KB, and a 40 KB header) it reaches the
// verifier and is refused at the parse; the 610 KB one is refused by the
// header limit (431) before any of it is parsed. The bound: 32 MB of
// heap.
func TestAttackAmplification(t *testing.T) {
	tg := startTarget(t, Limits{})
	underAttack(t, tg, 300, false, 16<<20, "amplification", nil)
}

// TestAttackLargeBodies: 300 parallel 10 MB bodies, with the public
// SecretId (so they pass every check that needs no body, and are read
// for the signature). Before the budget they took 5.9 GB. The bound:
// twice (the GC lets the heap grow to twice what is live) the body
// budget, set to 32 MB here, plus 32 MB for the connections' buffers on
// both sides.
func TestAttackLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("3 GB through loopback")
	}
	tg := startTarget(t, Limits{})
	// The server must take in 3 GB on the two cores it shares with the
	// attacker: the well-behaved client waits behind that work, so its
	// bound is wider (before the budget it was about 5,000×).
	underAttackWithin(t, tg, 300, false, 200, uint64(DefaultLimits.BodyBytesInFlight)+32<<20, "bodies", nil)
}

// TestAttackSlowBodies: 2,000 connections send their headers (with the
// public SecretId) and then a body one byte at a time. They are cut at
// ReadTimeout (TestTimeouts); meanwhile they cost a goroutine and a
// small buffer each, on both sides of this test. Each drips a byte a
// second. The bound: 64 MB for 2,000 connections.
func TestAttackSlowBodies(t *testing.T) {
	tg := startTarget(t, Limits{})
	underAttack(t, tg, 300, false, 64<<20, "slow", nil)
}

// TestAttackIdleConnections: 2,000 keep-alive connections, each idle
// after one call, against a cap of 500, while the well-behaved client
// opens a fresh connection for every call. The longest-idle connection
// makes room each time; before the cap they were all held (18,709 in the
// issue's run). The bound: 64 MB for 2,000 connections on both sides
// of this test.
func TestAttackIdleConnections(t *testing.T) {
	tg := startTarget(t, Limits{MaxConns: 500})
	underAttack(t, tg, 300, true, 32<<20, "idle", func() {
		if n := tg.ln.Open(); n > 500 || n < 400 {
			t.Errorf("%d connections open under attack, want the cap of 500 nearly full", n)
		}
	})
}

func dialMany(t *testing.T, addr string, n int, first func(net.Conn)) []net.Conn {
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("dial: %v", err)
			break
		}
		first(c)
		go io.Copy(io.Discard, c) // reads the answers and notices the close
		conns = append(conns, c)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}
