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

// The documented burst example: 50,000 instances take 100 minutes at 500
// per minute; provisioning 250 takes 3 minutes at 100 per minute.
func TestPlanScaleOutAndWarmUp(t *testing.T) {
	p, err := scf.PlanConcurrency(scf.PlanInput{QPS: 50000, AverageDuration: time.Second, MemorySizeMB: 64,
		AccountQuotaMB: 5_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if p.Concurrency != 50000 || p.ScaleOutMinutes != 100 || p.ColdScaleOut != 100*time.Minute || p.WarmUpMinutes != 500 {
		t.Fatalf("%+v", p)
	}
	if !strings.Contains(p.Explanation, "takes 100 minutes") {
		t.Fatalf("explanation %q", p.Explanation)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 250, AverageDuration: time.Second, MemorySizeMB: 128})
	if p.ProvisionedWarmUp != 3*time.Minute {
		t.Fatalf("250 instances warm up in %v", p.ProvisionedWarmUp)
	}
	// 600 instances with 100 warm: 500 cold, one minute's burst.
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 600, AverageDuration: time.Second, MemorySizeMB: 128, WarmInstances: 100})
	if p.ColdInstances != 500 || p.ScaleOutMinutes != 1 {
		t.Fatalf("%+v", p)
	}
	p, _ = scf.PlanConcurrency(scf.PlanInput{QPS: 601, AverageDuration: time.Second, MemorySizeMB: 128, WarmInstances: 100})
	if p.ScaleOutMinutes != 2 {
		t.Fatalf("501 cold instances: %d minutes", p.ScaleOutMinutes)
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
