package scf

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// PlanInput describes a workload to size.
type PlanInput struct {
	// QPS is the peak rate of invocations per second. Required, > 0.
	QPS float64
	// AverageDuration is the average run time of one invocation. Required,
	// > 0 and at most 900 s (the longest Timeout).
	AverageDuration time.Duration
	// MemorySizeMB is the function's memory: 64, or 128–3072 in steps of
	// 128. Required.
	MemorySizeMB int64
	// Region is the region the function runs in, e.g. "ap-mumbai"; its
	// account's documented quota (RegionQuotaMB) is the default of
	// AccountQuotaMB. Empty means a 128,000 MB region. It must be one of
	// Regions.
	Region string
	// AccountQuotaMB is the account's quota in the region (what GetAccount
	// reports as UserConcurrencyMemLimit); 0 means the region's documented
	// quota. At least 12,800.
	AccountQuotaMB int64
	// BurstPerMinute is how many new instances the region's account may
	// start in any 60 s; 0 means ScaleOutPerMinute (500). At least 0.
	BurstPerMinute int64
	// AllocatedMB is what other functions already hold (reservations,
	// provisioned memory); GetAccount reports it as
	// TotalAllocatedConcurrencyMem. At least 0.
	AllocatedMB int64
	// WarmInstances is how many instances already run (provisioned or
	// warm elastic ones); only the rest start cold. At least 0.
	WarmInstances int64
}

// Plan is the sizing of a workload. The formula is SCF's own: concurrency
// = QPS × average duration (2,000 QPS × 0.02 s = 40 instances), and the
// quota it takes is concurrency × memory.
type Plan struct {
	// AccountQuotaMB is the quota the plan used: PlanInput.AccountQuotaMB
	// or the region's.
	AccountQuotaMB int64
	// Concurrency is the number of instances busy at the peak, rounded up.
	Concurrency int64
	// QuotaMB is Concurrency × MemorySizeMB: the quota those instances take.
	QuotaMB int64
	// ReservableMB is what a reservation could take: the account quota −
	// 12,800 MB (never reservable) − AllocatedMB.
	ReservableMB int64
	// SharedMB is what a function without a reservation may use: the
	// account quota − AllocatedMB (the 12,800 MB floor included).
	SharedMB int64
	// Fits reports QuotaMB ≤ ReservableMB: the workload can have a
	// reservation (and provisioned concurrency) of its own.
	Fits bool
	// FitsShared reports QuotaMB ≤ SharedMB: the shared pool can hold it
	// when nothing else runs.
	FitsShared bool
	// MaxInstances is the most instances a reservation could give:
	// ReservableMB ÷ MemorySizeMB.
	MaxInstances int64
	// ColdInstances is Concurrency − WarmInstances (at least 0): the
	// instances that must start cold.
	ColdInstances int64
	// ScaleOutMinutes is how many rolling minutes the cold start spans at
	// the burst (500 new instances in any 60 s): the first burst starts at
	// once, each next one when the one before is a minute old (50,000
	// instances: 100 bursts). 1 means at once; 0 that none is cold.
	ScaleOutMinutes int64
	// ColdScaleOut is how long after the first cold instance the last one
	// starts: ScaleOutMinutes − 1 minutes (0 when it fits in one burst;
	// 50,000 instances: 99 minutes). Calls meanwhile beyond the burst get
	// 429.
	ColdScaleOut time.Duration
	// WarmUpMinutes is how long provisioning Concurrency instances takes
	// at 100 per minute (250: 3 minutes).
	WarmUpMinutes int64
	// ProvisionedWarmUp is WarmUpMinutes as a duration.
	ProvisionedWarmUp time.Duration
	// Explanation says the above in a few sentences.
	Explanation string
}

// PlanConcurrency sizes a workload: the concurrency it needs, the quota
// that takes in its region, whether the quota fits given that 12,800 MB of
// the account quota can never be reserved, how long a cold scale-out takes
// at 500 new instances in any 60 s (a rolling minute), and how long a
// provisioned warm-up takes at 100 per minute. Invalid input is a
// *ValidationError naming the field.
func PlanConcurrency(in PlanInput) (*Plan, error) {
	if f, r := in.rule(); f != "" {
		return nil, &ValidationError{Service: Service, Action: "PlanConcurrency", Field: f, Rule: r}
	}
	quota := in.AccountQuotaMB
	if quota == 0 {
		quota = AccountQuotaMB
		if in.Region != "" {
			quota, _ = RegionQuotaMB(in.Region)
		}
	}
	burst := in.BurstPerMinute
	if burst == 0 {
		burst = ScaleOutPerMinute
	}
	p := &Plan{AccountQuotaMB: quota}
	p.Concurrency = int64(math.Ceil(in.QPS*in.AverageDuration.Seconds() - 1e-9))
	if p.Concurrency < 1 {
		p.Concurrency = 1
	}
	p.QuotaMB = p.Concurrency * in.MemorySizeMB
	p.ReservableMB = max(quota-UnreservableMB-in.AllocatedMB, 0)
	p.SharedMB = max(quota-in.AllocatedMB, 0)
	p.Fits = p.QuotaMB <= p.ReservableMB
	p.FitsShared = p.QuotaMB <= p.SharedMB
	p.MaxInstances = p.ReservableMB / in.MemorySizeMB
	p.ColdInstances = max(p.Concurrency-in.WarmInstances, 0)
	p.ScaleOutMinutes = ceilDiv(p.ColdInstances, burst)
	p.ColdScaleOut = time.Duration(max(p.ScaleOutMinutes-1, 0)) * time.Minute
	p.WarmUpMinutes = ceilDiv(p.Concurrency, ProvisionPerMinute)
	p.ProvisionedWarmUp = time.Duration(p.WarmUpMinutes) * time.Minute
	p.Explanation = p.explain(in, quota, burst)
	return p, nil
}

func (in PlanInput) rule() (string, string) {
	switch {
	case math.IsNaN(in.QPS) || math.IsInf(in.QPS, 0) || in.QPS <= 0:
		return "QPS", "must be a number > 0"
	case in.QPS > 1e7:
		return "QPS", "must be at most 10,000,000"
	case in.AverageDuration <= 0:
		return "AverageDuration", "must be > 0"
	case in.AverageDuration > MaxTimeoutSeconds*time.Second:
		return "AverageDuration", "must be at most 900 s (the longest Timeout)"
	case !ValidMemorySize(in.MemorySizeMB):
		return "MemorySizeMB", memorySizeRule
	case in.Region != "" && !knownRegion(in.Region):
		return "Region", "must be an SCF region: " + strings.Join(Regions(), ", ")
	case in.AccountQuotaMB != 0 && in.AccountQuotaMB < UnreservableMB:
		return "AccountQuotaMB", "must be 0 (the region's quota) or at least 12,800"
	case in.BurstPerMinute < 0:
		return "BurstPerMinute", "must not be negative"
	case in.AllocatedMB < 0:
		return "AllocatedMB", "must not be negative"
	case in.WarmInstances < 0:
		return "WarmInstances", "must not be negative"
	}
	return "", ""
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

func knownRegion(region string) bool {
	_, ok := RegionQuotaMB(region)
	return ok
}

func (p *Plan) explain(in PlanInput, quota, burst int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%g QPS × %v = %d concurrent instances × %d MB = %d MB of quota. ",
		in.QPS, in.AverageDuration, p.Concurrency, in.MemorySizeMB, p.QuotaMB)
	q := fmt.Sprintf("%d MB quota", quota)
	if in.Region != "" {
		q += " in " + in.Region
	}
	switch {
	case p.Fits:
		fmt.Fprintf(&b, "It fits: %d MB can be reserved (%s − 12800 MB never reservable − %d MB allocated). ",
			p.ReservableMB, q, in.AllocatedMB)
	case p.FitsShared:
		fmt.Fprintf(&b, "It cannot be reserved (only %d MB is reservable: %s − 12800 MB − %d MB allocated, at most %d instances), but the shared pool of %d MB can hold it if nothing else runs. ",
			p.ReservableMB, q, in.AllocatedMB, p.MaxInstances, p.SharedMB)
	default:
		fmt.Fprintf(&b, "It does not fit the %s: only %d MB can be reserved (at most %d instances) and the shared pool has %d MB; raise the quota (PutTotalConcurrencyConfig, a ticket) or lower memory or duration. ",
			q, p.ReservableMB, p.MaxInstances, p.SharedMB)
	}
	switch {
	case p.ColdInstances == 0:
		fmt.Fprintf(&b, "All %d instances are warm already. ", p.Concurrency)
	case p.ScaleOutMinutes <= 1:
		fmt.Fprintf(&b, "A cold scale-out of %d instances fits in one burst of %d: they all start at once. ", p.ColdInstances, burst)
	default:
		fmt.Fprintf(&b, "A cold scale-out of %d instances at %d new instances in any 60 s: %d start at once, the next %d when those are a minute old, the last %v after the first; calls beyond the burst get 429 meanwhile. ",
			p.ColdInstances, burst, burst, min(burst, p.ColdInstances-burst), p.ColdScaleOut)
	}
	fmt.Fprintf(&b, "Provisioning %d instances at 100 per minute takes %d minute(s).", p.Concurrency, p.WarmUpMinutes)
	return b.String()
}

// RegionQuotaMB returns the documented default concurrency quota of a
// region's account, and whether SCF serves the region: 128,000 MB
// ([AccountQuotaMB]) in Guangzhou, Shanghai, Beijing, Chengdu and Hong
// Kong, 64,000 MB ([SmallRegionQuotaMB]) in Mumbai, Singapore, Tokyo,
// Toronto, Silicon Valley, Frankfurt, Shenzhen Finance and Shanghai
// Finance. Each region's account is separate: its own quota, burst and
// functions.
func RegionQuotaMB(region string) (int64, bool) {
	switch region {
	case "ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu", "ap-hongkong":
		return AccountQuotaMB, true
	case "ap-mumbai", "ap-singapore", "ap-tokyo", "na-toronto", "na-siliconvalley", "eu-frankfurt",
		"ap-shenzhen-fsi", "ap-shanghai-fsi":
		return SmallRegionQuotaMB, true
	}
	return 0, false
}

// Regions returns the region codes RegionQuotaMB knows, the large regions
// first.
func Regions() []string {
	return []string{
		"ap-guangzhou", "ap-shanghai", "ap-beijing", "ap-chengdu", "ap-hongkong",
		"ap-mumbai", "ap-singapore", "ap-tokyo", "na-toronto", "na-siliconvalley", "eu-frankfurt",
		"ap-shenzhen-fsi", "ap-shanghai-fsi",
	}
}
