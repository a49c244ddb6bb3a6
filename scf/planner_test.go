package scf_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tcconcurrency/sdk-go/scf"
)

// The documented sizing example: 2,000 QPS × 0.02 s = 40 instances.
func TestPlanDocumentedConcurrency(t *testing.T) {
	p, err := scf.PlanConcurrency(scf.PlanInput{QPS: 2000, AverageDuration: 20 * time.Millisecond, MemorySizeMB: 128})
	if err != nil {
		t.Fatal(err)
	}
	if p.Concurrency != 40 || p.QuotaMB != 5120 || !p.Fits || !p.FitsShared || p.ReservableMB != 115200 ||
		p.SharedMB != 128000 || p.MaxInstances != 900 || p.ScaleOutMinutes != 1 || p.WarmUpMinutes != 1 {
		t.Fatalf("%+v", p)
	}
	if !strings.Contains(p.Explanation, "40 concurrent instances") || !strings.Contains(p.Explanation, "It fits") {
		t.Fatalf("explanation %q", p.Explanation)
	}
}

// The documented burst example: 50,000 instances span 100 rolling minutes
// at 500 per minute, the last starting 99 minutes after the first;
// provisioning 250 takes 3 minutes at 100 per minute.
func TestPlanScaleOutAndWarmUp(t *testing.T) {
	p, err := scf.PlanConcurrency(scf.PlanInput{QPS: 50000, AverageDuration: time.Second, MemorySizeMB: 64,
		AccountQuotaMB: 5_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if p.Concurrency != 50000 || p.ScaleOutMinutes != 100 || p.ColdScaleOut != 99*time.Minute || p.WarmUpMinutes != 500 {
		t.Fatalf("%+v", p)
	}
	if !strings.Contains(p.Explanation, "500 start at once") || !strings.Contains(p.Explanation, "the last 1h39m0s after the first") {
		t.Fatalf("explanation %q", p.Explanation)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 250, AverageDuration: time.Second, MemorySizeMB: 128})
	if p.ProvisionedWarmUp != 3*time.Minute {
		t.Fatalf("250 instances warm up in %v", p.ProvisionedWarmUp)
	}
	// 600 instances with 100 warm: 500 cold, one minute's burst.
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 600, AverageDuration: time.Second, MemorySizeMB: 128, WarmInstances: 100})
	if p.ColdInstances != 500 || p.ScaleOutMinutes != 1 || p.ColdScaleOut != 0 || !strings.Contains(p.Explanation, "they all start at once") {
		t.Fatalf("%+v", p)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 601, AverageDuration: time.Second, MemorySizeMB: 128, WarmInstances: 100})
	if p.ScaleOutMinutes != 2 || p.ColdScaleOut != time.Minute {
		t.Fatalf("501 cold instances: %d minutes, the last after %v", p.ScaleOutMinutes, p.ColdScaleOut)
	}
}

// The burst is counted over a rolling minute: "up to 500 new concurrent
// instances can be started in one minute … If the limit is hit in one
// minute, no more new instances will be started until the minute
// elapses". 1,000 cold instances: 500 at once, 500 a minute later (not
// "2 minutes", as counting clock minutes had it); a raised burst of 1,000
// starts them all at once.
func TestPlanRollingBurst(t *testing.T) {
	p, _ := scf.PlanConcurrency(scf.PlanInput{QPS: 1000, AverageDuration: time.Second, MemorySizeMB: 64})
	if p.ColdInstances != 1000 || p.ScaleOutMinutes != 2 || p.ColdScaleOut != time.Minute ||
		!strings.Contains(p.Explanation, "500 start at once, the next 500 when those are a minute old, the last 1m0s after the first") {
		t.Fatalf("%+v", p)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 1000, AverageDuration: time.Second, MemorySizeMB: 64, BurstPerMinute: 1000})
	if p.ScaleOutMinutes != 1 || p.ColdScaleOut != 0 || !strings.Contains(p.Explanation, "one burst of 1000") {
		t.Fatalf("burst 1000: %+v", p)
	}
}

// The region picks the quota: "128,000 MB in Guangzhou, Shanghai, Beijing,
// Chengdu, Hong Kong; 64,000 MB in Mumbai, Singapore, Tokyo, Toronto,
// Silicon Valley, Frankfurt, Shenzhen/Shanghai Finance".
func TestPlanRegionQuota(t *testing.T) {
	for _, r := range scf.Regions() {
		want := int64(scf.SmallRegionQuotaMB)
		switch r {
		case "ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu", "ap-hongkong":
			want = scf.AccountQuotaMB
		}
		if got, ok := scf.RegionQuotaMB(r); !ok || got != want {
			t.Errorf("%s: %d %v, want %d", r, got, ok, want)
		}
	}
	if n := len(scf.Regions()); n != 13 {
		t.Errorf("%d regions, want the document's 13", n)
	}
	if _, ok := scf.RegionQuotaMB("ap-atlantis"); ok {
		t.Error("an unknown region has a quota")
	}
	// 450 × 128 MB = 57,600 MB: reservable in Guangzhou; in Mumbai only the
	// shared pool (64,000 MB) holds it, 51,200 MB being reservable.
	in := scf.PlanInput{QPS: 450, AverageDuration: time.Second, MemorySizeMB: 128, Region: "ap-guangzhou"}
	if p, _ := scf.PlanConcurrency(in); !p.Fits || p.AccountQuotaMB != 128000 {
		t.Fatalf("ap-guangzhou: %+v", p)
	}
	in.Region = "ap-mumbai"
	p, _ := scf.PlanConcurrency(in)
	if p.Fits || !p.FitsShared || p.AccountQuotaMB != 64000 || p.ReservableMB != 51200 || !strings.Contains(p.Explanation, "12800 MB − 0 MB allocated") || !strings.Contains(p.Explanation, "64000 MB quota in ap-mumbai") {
		t.Fatalf("ap-mumbai: %+v", p)
	}
	in.AccountQuotaMB = 200000 // a raised quota wins over the region's default
	if p, _ := scf.PlanConcurrency(in); p.AccountQuotaMB != 200000 || !p.Fits {
		t.Fatalf("raised quota: %+v", p)
	}
}

// The 12,800 MB floor can never be reserved.
func TestPlanQuotaFit(t *testing.T) {
	// 900 × 128 MB = 115,200 MB: exactly the reservable part of 128,000.
	p, _ := scf.PlanConcurrency(scf.PlanInput{QPS: 900, AverageDuration: time.Second, MemorySizeMB: 128})
	if !p.Fits {
		t.Fatalf("%+v", p)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 901, AverageDuration: time.Second, MemorySizeMB: 128})
	if p.Fits || !p.FitsShared || !strings.Contains(p.Explanation, "cannot be reserved") {
		t.Fatalf("%+v", p)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 600, AverageDuration: time.Second, MemorySizeMB: 128,
		AccountQuotaMB: scf.SmallRegionQuotaMB, AllocatedMB: 20000})
	// 64,000 − 12,800 − 20,000 = 31,200 MB reservable; 600 × 128 = 76,800.
	if p.Fits || p.FitsShared || p.ReservableMB != 31200 || p.MaxInstances != 243 || !strings.Contains(p.Explanation, "does not fit") {
		t.Fatalf("%+v", p)
	}
}

func TestPlanValidatesInput(t *testing.T) {
	ok := scf.PlanInput{QPS: 10, AverageDuration: time.Second, MemorySizeMB: 128}
	for _, tc := range []struct {
		field string
		edit  func(*scf.PlanInput)
	}{
		{"QPS", func(p *scf.PlanInput) { p.QPS = 0 }},
		{"QPS", func(p *scf.PlanInput) { p.QPS = math.NaN() }},
		{"QPS", func(p *scf.PlanInput) { p.QPS = math.Inf(1) }},
		{"AverageDuration", func(p *scf.PlanInput) { p.AverageDuration = 0 }},
		{"AverageDuration", func(p *scf.PlanInput) { p.AverageDuration = 901 * time.Second }},
		{"MemorySizeMB", func(p *scf.PlanInput) { p.MemorySizeMB = 100 }},
		{"MemorySizeMB", func(p *scf.PlanInput) { p.MemorySizeMB = 3200 }},
		{"AccountQuotaMB", func(p *scf.PlanInput) { p.AccountQuotaMB = 1000 }},
		{"Region", func(p *scf.PlanInput) { p.Region = "ap-atlantis" }},
		{"BurstPerMinute", func(p *scf.PlanInput) { p.BurstPerMinute = -1 }},
		{"AllocatedMB", func(p *scf.PlanInput) { p.AllocatedMB = -1 }},
		{"WarmInstances", func(p *scf.PlanInput) { p.WarmInstances = -1 }},
	} {
		in := ok
		tc.edit(&in)
		_, err := scf.PlanConcurrency(in)
		var ve *scf.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || !scf.IsInvalidInput(err) {
			t.Errorf("%+v: %v, want a ValidationError for %s", in, err, tc.field)
		}
	}
	for _, mb := range []int64{64, 128, 256, 3072} {
		in := ok
		in.MemorySizeMB = mb
		if _, err := scf.PlanConcurrency(in); err != nil {
			t.Errorf("%d MB: %v", mb, err)
		}
	}
}
