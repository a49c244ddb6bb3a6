// Command scfburst plays a traffic spike against an SCF function and shows
// what the concurrency limits do to it, minute by minute: the planner's
// advice, a provisioned warm-up, then a spike of invocations through the
// scf.Invoker, all against the embedded reference server (scftest).
//
//	go run ./examples/scfburst                       # the defaults, a few seconds
//	go run ./examples/scfburst -rate 30 -provisioned 100 -burst 1000
//	go run ./examples/scfburst -region ap-mumbai     # a 64,000 MB region
//
// The server models SCF's limits as the documents give them: the region's
// account quota (RegionQuotaMB), counted for every instance that runs a
// request, warm ones included; at most -burst new instances in any 60 s
// (a rolling minute, so calls turned away wait until the first instance of
// the burst is a minute old); a cold start of scftest.DefaultColdStart for
// each new instance.
//
// The run is time-scaled: the server's model clock is manual, and a ticker
// moves it -scale times faster than real time (one model minute per real
// second by default), so a spike of minutes takes seconds. Latencies are in
// model time; they include a little real scheduling delay × -scale. The
// provisioned warm-up needs no real time at all: the waiter's pauses move
// the model clock.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"
	"github.com/tcconcurrency/sdk-go/scf/scftest"
)

// config is the scenario.
type config struct {
	rate        int           // invocations per second during the spike
	spike       time.Duration // how long the spike lasts
	duration    time.Duration // run time of one invocation
	memoryMB    int64
	provisioned uint64
	region      string
	quotaMB     int64 // 0: the region's
	burst       int
	scale       int           // model time per real time
	tick        time.Duration // real time between clock steps
	listener    net.Listener  // nil: a 127.0.0.1 port
}

func main() {
	var cfg config
	flag.IntVar(&cfg.rate, "rate", 20, "invocations per second during the spike")
	flag.DurationVar(&cfg.spike, "for", time.Minute, "length of the spike")
	flag.DurationVar(&cfg.duration, "duration", time.Minute, "run time of one invocation")
	flag.Int64Var(&cfg.memoryMB, "memory", 64, "function memory in MB (64, or 128–3072 in steps of 128)")
	flag.Uint64Var(&cfg.provisioned, "provisioned", 300, "provisioned instances to warm up before the spike")
	flag.StringVar(&cfg.region, "region", scftest.DefaultRegion, "the region, whose account quota is the default of -quota")
	flag.Int64Var(&cfg.quotaMB, "quota", 0, "account concurrency quota in MB (0: the region's, 128000 or 64000)")
	flag.IntVar(&cfg.burst, "burst", scf.ScaleOutPerMinute, "new elastic instances in any 60 s (the region's scale-out rate)")
	flag.IntVar(&cfg.scale, "scale", 60, "how much faster than real time the model clock runs")
	flag.DurationVar(&cfg.tick, "tick", 5*time.Millisecond, "real time between steps of the model clock")
	flag.Parse()
	if err := run(context.Background(), cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scfburst:", err)
		os.Exit(1)
	}
}

// modelClock lets the waiter's pauses move the manual model clock.
type modelClock struct{ srv *scftest.Server }

func (m modelClock) Now() time.Time { return m.srv.Now() }

func (m modelClock) Sleep(ctx context.Context, d time.Duration) error {
	m.srv.Advance(d)
	return ctx.Err()
}

// minuteStats is one row of the report.
type minuteStats struct {
	arrivals, started, met429, absorbed429 int64
	latencies                              []time.Duration
}

func run(ctx context.Context, cfg config, w io.Writer) error {
	if cfg.rate < 1 || cfg.spike <= 0 || cfg.duration <= 0 || cfg.scale < 1 || cfg.tick <= 0 || cfg.burst < 0 || cfg.quotaMB < 0 {
		return errors.New("-rate, -for, -duration, -scale and -tick must be positive, -burst and -quota not negative")
	}
	if cfg.region == "" {
		cfg.region = scftest.DefaultRegion
	}
	step := cfg.tick * time.Duration(cfg.scale) // model time per tick
	const fn = "report"
	plan, err := scf.PlanConcurrency(scf.PlanInput{
		QPS: float64(cfg.rate), AverageDuration: cfg.duration, MemorySizeMB: cfg.memoryMB,
		Region: cfg.region, AccountQuotaMB: cfg.quotaMB, BurstPerMinute: int64(cfg.burst), WarmInstances: int64(cfg.provisioned),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Plan: %s\n\n", plan.Explanation)

	start := time.Date(2026, 6, 18, 12, 0, 0, 0, time.UTC)
	opts := []scftest.Option{scftest.WithManualClock(start), scftest.WithRegion(cfg.region), scftest.WithScaleOutRate(cfg.burst)}
	if cfg.quotaMB != 0 {
		opts = append(opts, scftest.WithAccountQuota(cfg.quotaMB))
	}
	if cfg.listener != nil {
		opts = append(opts, scftest.WithListener(cfg.listener))
	}
	srv, err := scftest.NewServer(opts...)
	if err != nil {
		return err
	}
	defer srv.Close()
	c := srv.Client()
	defer c.CloseIdleConnections()

	// The function runs for -duration of model time.
	handler := func(ctx context.Context, inv *scftest.Invocation) (string, error) {
		if err := inv.Sleep(ctx, cfg.duration); err != nil {
			return "", err
		}
		return `{"ok":true}`, nil
	}
	timeout := min(cfg.duration.Truncate(time.Second)*2+time.Second, scf.MaxTimeoutSeconds*time.Second)
	if err := srv.AddFunction(scftest.FunctionConfig{Name: fn, MemorySizeMB: cfg.memoryMB, Timeout: timeout, Handler: handler}); err != nil {
		return err
	}
	if plan.Fits {
		if _, err := c.PutReservedConcurrencyConfig(ctx, &scf.PutReservedConcurrencyConfigInput{
			FunctionName: fn, ReservedConcurrencyMem: uint64(plan.QuotaMB)}); err != nil {
			return err
		}
		fmt.Fprintf(w, "Reserved %d MB for %s (%d instances of %d MB).\n", plan.QuotaMB, fn, plan.Concurrency, cfg.memoryMB)
	} else {
		fmt.Fprintf(w, "No reservation: %s draws on the shared pool.\n", fn)
	}
	v, err := c.PublishVersion(ctx, &scf.PublishVersionInput{FunctionName: fn, Description: "spike"})
	if err != nil {
		return err
	}

	// Provisioned warm-up at 100 instances per minute.
	if cfg.provisioned > 0 {
		if _, err := c.PutProvisionedConcurrencyConfig(ctx, &scf.PutProvisionedConcurrencyConfigInput{
			FunctionName: fn, Qualifier: v.FunctionVersion, VersionProvisionedConcurrencyNum: cfg.provisioned}); err != nil {
			return err
		}
		info, err := c.WaitProvisionedConcurrencyReady(ctx,
			&scf.GetProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: v.FunctionVersion}, scf.WithWaitClock(modelClock{srv}))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Provisioned %d instances of version %s: %s after %v of model time.\n",
			info.AvailableProvisionedConcurrencyNum, v.FunctionVersion, info.Status, srv.Now().Sub(start).Round(time.Second))
	}

	// The Invoker's start budget is the account's burst (-burst 0: none).
	rate := cfg.burst
	if rate == 0 {
		rate = math.MaxInt32
	}
	iv, err := scf.NewInvoker(c, scf.WithInvokerClock(srv.Clock()), scf.WithScaleOutRate(rate))
	if err != nil {
		return err
	}
	// Start the spike on a minute boundary, so that the report's rows are
	// clock minutes. The burst window rolls: it opens with the first new
	// instance, not at a boundary.
	srv.Advance(srv.Now().Truncate(time.Minute).Add(time.Minute).Sub(srv.Now()))
	t0 := srv.Now()
	total := int64(float64(cfg.rate) * cfg.spike.Seconds())
	var (
		mu       sync.Mutex
		minutes  []*minuteStats
		launched int64
		done     atomic.Int64
		failed   atomic.Int64
		firstErr error
		wg       sync.WaitGroup
	)
	row := func(at time.Time) *minuteStats {
		m := int(at.Sub(t0) / time.Minute)
		for len(minutes) <= m {
			minutes = append(minutes, &minuteStats{})
		}
		return minutes[m]
	}
	invoke := func() {
		defer wg.Done()
		begin := srv.Now()
		out, err := iv.Invoke(ctx, &scf.InvokerInput{FunctionName: fn, Qualifier: v.FunctionVersion, Event: `{"cart":1}`})
		end := srv.Now()
		mu.Lock()
		r := row(end)
		if err != nil {
			if failed.Add(1) == 1 {
				firstErr = err
			}
		} else {
			r.latencies = append(r.latencies, end.Sub(begin))
			if out.Overruns > 0 {
				r.absorbed429++
			}
		}
		mu.Unlock()
		done.Add(1)
	}
	before, beforeStats := srv.Counters(), iv.Stats()
	snapshot := func(at time.Time) {
		cnt, st := srv.Counters(), iv.Stats()
		mu.Lock()
		r := row(at)
		r.started += cnt.ElasticStarts - before.ElasticStarts
		r.met429 += st.Met429 - beforeStats.Met429
		mu.Unlock()
		before, beforeStats = cnt, st
	}
	arrivalsPerStep := float64(cfg.rate) * step.Seconds()
	ticker := time.NewTicker(cfg.tick)
	defer ticker.Stop()
	for n := 0; done.Load() < total; n++ {
		if at := time.Duration(n) * step; at < cfg.spike {
			k := int64(math.Round(arrivalsPerStep*float64(n+1))) - int64(math.Round(arrivalsPerStep*float64(n)))
			k = min(k, total-launched)
			mu.Lock()
			row(srv.Now()).arrivals += k
			mu.Unlock()
			for range k {
				launched++
				wg.Add(1)
				go invoke()
			}
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		// Close the minute's row before the clock leaves it.
		now := srv.Now()
		if next := now.Add(step); next.Truncate(time.Minute) != now.Truncate(time.Minute) {
			snapshot(now)
		}
		srv.Advance(step)
		if srv.Now().Sub(t0) > time.Hour {
			return errors.New("the spike did not finish within an hour of model time")
		}
	}
	wg.Wait()
	snapshot(srv.Now())

	limit, _ := iv.Limit(fn)
	fmt.Fprintf(w, "Spike: %d invocations at %d/s for %v, each running %v (model time); the Invoker keeps at most %d in flight.\n",
		total, cfg.rate, cfg.spike, cfg.duration, limit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "minute\tarrivals\tnew instances\t429 met\t429 absorbed\tcompleted\tp50\tp90\tp99\t")
	var all []time.Duration
	for i, m := range minutes {
		all = append(all, m.latencies...)
		p := percentiles(m.latencies)
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%v\t%v\t%v\t\n", i, m.arrivals, m.started, m.met429, m.absorbed429, len(m.latencies), p[0], p[1], p[2])
	}
	tw.Flush()
	p := percentiles(all)
	cnt := srv.Counters()
	fmt.Fprintf(w, "\nAll %d completed (%d failed); latency p50 %v, p90 %v, p99 %v, max %v.\n", len(all), failed.Load(), p[0], p[1], p[2], p[3])
	fmt.Fprintf(w, "Server: %d provisioned and %d elastic instances started, %d × 429, %d × 432.\n",
		cnt.ProvisionedStarts, cnt.ElasticStarts, cnt.Throttled429, cnt.Throttled432)
	if failed.Load() > 0 {
		return fmt.Errorf("%d invocations failed, the first with: %w", failed.Load(), firstErr)
	}
	return nil
}

// percentiles returns p50, p90, p99 and the maximum.
func percentiles(d []time.Duration) [4]time.Duration {
	var out [4]time.Duration
	if len(d) == 0 {
		return out
	}
	s := slices.Clone(d)
	slices.Sort(s)
	for i, q := range []float64{0.50, 0.90, 0.99, 1} {
		out[i] = s[min(int(math.Ceil(q*float64(len(s))))-1, len(s)-1)].Round(time.Millisecond)
	}
	return out
}
