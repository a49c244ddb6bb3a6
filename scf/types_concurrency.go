package scf

import "strconv"

// PutReservedConcurrencyConfigInput sets a function's reserved quota: a
// hard cap for the function (all its versions together), carved out of
// the account's shared pool.
type PutReservedConcurrencyConfigInput struct {
	// FunctionName is the function. Required.
	FunctionName string `json:"FunctionName"`
	// ReservedConcurrencyMem is the reserved quota in MB: the function runs
	// at most ReservedConcurrencyMem ÷ MemorySize instances. 0 disables the
	// function (every call fails with 432), so it is always sent. The sum
	// over all functions may not exceed the account quota − 12,800 MB.
	ReservedConcurrencyMem uint64 `json:"ReservedConcurrencyMem"`
	// Namespace defaults to "default".
	Namespace string `json:"Namespace,omitempty"`
}

func (in *PutReservedConcurrencyConfigInput) validate() (string, string) {
	return requireFunction(in.FunctionName)
}

// PutReservedConcurrencyConfigOutput is the reply to
// PutReservedConcurrencyConfig.
type PutReservedConcurrencyConfigOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive // the API's spelling
}

// GetReservedConcurrencyConfigInput names a function.
type GetReservedConcurrencyConfigInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Namespace    string `json:"Namespace,omitempty"`
}

func (in *GetReservedConcurrencyConfigInput) validate() (string, string) {
	return requireFunction(in.FunctionName)
}

// GetReservedConcurrencyConfigOutput carries the reserved quota.
type GetReservedConcurrencyConfigOutput struct {
	// ReservedMem is the reserved quota in MB; nil when none is set (the
	// function draws on the shared pool). A pointer to 0 means disabled.
	ReservedMem *uint64 `json:"ReservedMem"`
	RequestId   string  `json:"RequestId"` //nolint:revive
}

// DeleteReservedConcurrencyConfigInput names a function whose reservation
// goes back to the shared pool (unlike setting 0, which disables it).
type DeleteReservedConcurrencyConfigInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Namespace    string `json:"Namespace,omitempty"`
}

func (in *DeleteReservedConcurrencyConfigInput) validate() (string, string) {
	return requireFunction(in.FunctionName)
}

// DeleteReservedConcurrencyConfigOutput is the reply to
// DeleteReservedConcurrencyConfig.
type DeleteReservedConcurrencyConfigOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// TriggerAction is one scheduled provisioning step: from its fire time on,
// the version's provisioned target is TriggerProvisionedConcurrencyNum. To
// end a window, add a second action with 0.
type TriggerAction struct {
	// TriggerName names the action; unique per version. Required.
	TriggerName string `json:"TriggerName"`
	// TriggerProvisionedConcurrencyNum is the target count of instances
	// from the fire time on. Required; 0 is meaningful.
	TriggerProvisionedConcurrencyNum uint64 `json:"TriggerProvisionedConcurrencyNum"`
	// TriggerCronConfig is a 7-field cron expression: second minute hour
	// day month weekday year, e.g. "0 30 9 * * * *". Required.
	TriggerCronConfig string `json:"TriggerCronConfig"`
	// ProvisionedType is empty or ProvisionedTypeDefault.
	ProvisionedType string `json:"ProvisionedType,omitempty"`
}

// PutProvisionedConcurrencyConfigInput sets a published version's
// provisioned concurrency: a static count, scheduled counts
// (TriggerActions), or utilization tracking. It is applied asynchronously:
// Status goes InProgress → Done as instances start, 100 per minute (see
// [Client.WaitProvisionedConcurrencyReady]).
type PutProvisionedConcurrencyConfigInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	// Qualifier is a published version number; $LATEST and aliases cannot
	// hold provisioned concurrency. Required.
	Qualifier string `json:"Qualifier"`
	// VersionProvisionedConcurrencyNum is the static count of instances.
	// Always sent: 0 is required in tracking mode. The sum over all
	// versions × MemorySize is capped by the reserved quota, or else by
	// the account's reservable quota.
	VersionProvisionedConcurrencyNum uint64 `json:"VersionProvisionedConcurrencyNum"`
	Namespace                        string `json:"Namespace,omitempty"`
	// TriggerActions schedule changes of the count.
	TriggerActions []TriggerAction `json:"TriggerActions,omitempty"`
	// ProvisionedType is ProvisionedTypeDefault (static, the default) or
	// ProvisionedTypeTracking.
	ProvisionedType string `json:"ProvisionedType,omitempty"`
	// TrackingTarget is the target utilization in (0,1), two decimals;
	// tracking mode only.
	TrackingTarget float64 `json:"TrackingTarget,omitempty"`
	// MinCapacity (≥ 1) and MaxCapacity bound the count in tracking mode.
	MinCapacity uint64 `json:"MinCapacity,omitempty"`
	MaxCapacity uint64 `json:"MaxCapacity,omitempty"`
}

func (in *PutProvisionedConcurrencyConfigInput) validate() (string, string) {
	if f, r := requireFunctionVersion(in.FunctionName, in.Qualifier); f != "" {
		return f, r
	}
	switch in.ProvisionedType {
	case "", ProvisionedTypeDefault:
		switch {
		case in.TrackingTarget != 0:
			return "TrackingTarget", "is only for ProvisionedType ConcurrencyUtilizationTracking"
		case in.MinCapacity != 0:
			return "MinCapacity", "is only for ProvisionedType ConcurrencyUtilizationTracking"
		case in.MaxCapacity != 0:
			return "MaxCapacity", "is only for ProvisionedType ConcurrencyUtilizationTracking"
		}
	case ProvisionedTypeTracking:
		if in.VersionProvisionedConcurrencyNum != 0 {
			return "VersionProvisionedConcurrencyNum", "must be 0 with ProvisionedType ConcurrencyUtilizationTracking"
		}
		if len(in.TriggerActions) > 0 {
			return "TriggerActions", "must be empty with ProvisionedType ConcurrencyUtilizationTracking"
		}
		if r := trackingTargetRule(in.TrackingTarget); r != "" {
			return "TrackingTarget", r
		}
		if in.MinCapacity < 1 {
			return "MinCapacity", "must be at least 1"
		}
		if in.MaxCapacity < in.MinCapacity {
			return "MaxCapacity", "must be at least MinCapacity"
		}
	default:
		return "ProvisionedType", "must be Default or ConcurrencyUtilizationTracking"
	}
	names := make(map[string]bool, len(in.TriggerActions))
	for i, a := range in.TriggerActions {
		field := "TriggerActions[" + strconv.Itoa(i) + "]."
		switch {
		case a.TriggerName == "":
			return field + "TriggerName", "is required"
		case names[a.TriggerName]:
			return field + "TriggerName", "must be unique (" + strconv.Quote(a.TriggerName) + " repeats)"
		case a.ProvisionedType != "" && a.ProvisionedType != ProvisionedTypeDefault:
			return field + "ProvisionedType", "must be empty or Default"
		}
		if r := cronRule(a.TriggerCronConfig); r != "" {
			return field + "TriggerCronConfig", r
		}
		names[a.TriggerName] = true
	}
	return "", ""
}

// PutProvisionedConcurrencyConfigOutput is the reply to
// PutProvisionedConcurrencyConfig.
type PutProvisionedConcurrencyConfigOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// GetProvisionedConcurrencyConfigInput names a function and, optionally,
// one version.
type GetProvisionedConcurrencyConfigInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Namespace    string `json:"Namespace,omitempty"`
	// Qualifier selects one version; empty means all versions. The waiter
	// requires it.
	Qualifier string `json:"Qualifier,omitempty"`
}

func (in *GetProvisionedConcurrencyConfigInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	if in.Qualifier != "" && !isVersion(in.Qualifier) {
		return "Qualifier", "must be a published version number (not $LATEST or an alias)"
	}
	return "", ""
}

// VersionProvisionedConcurrencyInfo is one version's provisioned
// concurrency.
type VersionProvisionedConcurrencyInfo struct {
	// AllocatedProvisionedConcurrencyNum is the target count of instances.
	AllocatedProvisionedConcurrencyNum uint64 `json:"AllocatedProvisionedConcurrencyNum"`
	// AvailableProvisionedConcurrencyNum counts the instances started and
	// ready.
	AvailableProvisionedConcurrencyNum uint64 `json:"AvailableProvisionedConcurrencyNum"`
	// Status is ProvisionedStatusDone, ProvisionedStatusInProgress or
	// ProvisionedStatusFailed (partly or fully).
	Status string `json:"Status"`
	// StatusReason explains Status.
	StatusReason   string          `json:"StatusReason"`
	Qualifier      string          `json:"Qualifier"`
	TriggerActions []TriggerAction `json:"TriggerActions"`
}

// GetProvisionedConcurrencyConfigOutput lists the provisioned versions.
type GetProvisionedConcurrencyConfigOutput struct {
	// UnallocatedConcurrencyNum is how many more instances the function
	// may provision.
	UnallocatedConcurrencyNum uint64                              `json:"UnallocatedConcurrencyNum"`
	Allocated                 []VersionProvisionedConcurrencyInfo `json:"Allocated"`
	RequestId                 string                              `json:"RequestId"` //nolint:revive
}

// DeleteProvisionedConcurrencyConfigInput removes a version's provisioned
// concurrency; its instances are reclaimed gradually.
type DeleteProvisionedConcurrencyConfigInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Qualifier    string `json:"Qualifier"`    // Required: a version number.
	Namespace    string `json:"Namespace,omitempty"`
}

func (in *DeleteProvisionedConcurrencyConfigInput) validate() (string, string) {
	if f, r := requireFunctionVersion(in.FunctionName, in.Qualifier); f != "" {
		return f, r
	}
	return "", ""
}

// DeleteProvisionedConcurrencyConfigOutput is the reply to
// DeleteProvisionedConcurrencyConfig.
type DeleteProvisionedConcurrencyConfigOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// PutTotalConcurrencyConfigInput sets the account's concurrency quota in
// the region.
type PutTotalConcurrencyConfigInput struct {
	// TotalConcurrencyMem is the quota in MB; at least what is allocated
	// (reserved and provisioned) + 12,800, at most the region's limit.
	// Required.
	TotalConcurrencyMem uint64 `json:"TotalConcurrencyMem"`
	// Namespace-level quotas exist only with purchased packages.
	Namespace string `json:"Namespace,omitempty"`
}

func (in *PutTotalConcurrencyConfigInput) validate() (string, string) {
	if in.TotalConcurrencyMem < UnreservableMB {
		return "TotalConcurrencyMem", "must be at least 12800 MB (the unreservable floor)"
	}
	return "", ""
}

// PutTotalConcurrencyConfigOutput is the reply to PutTotalConcurrencyConfig.
type PutTotalConcurrencyConfigOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// GetAccountInput has no fields.
type GetAccountInput struct{}

func (in *GetAccountInput) validate() (string, string) { return "", "" }

// GetAccountOutput reports the account's usage and limits in the region.
type GetAccountOutput struct {
	AccountUsage UsageInfo  `json:"AccountUsage"`
	AccountLimit LimitsInfo `json:"AccountLimit"`
	RequestId    string     `json:"RequestId"` //nolint:revive
}

// UsageInfo is the account's usage; quotas in MB.
type UsageInfo struct {
	NamespacesCount int64            `json:"NamespacesCount"`
	Namespace       []NamespaceUsage `json:"Namespace"`
	// TotalConcurrencyMem is the region's upper limit of the quota.
	TotalConcurrencyMem int64 `json:"TotalConcurrencyMem"`
	// TotalAllocatedConcurrencyMem is what reservations (and provisioned
	// concurrency of functions without one) have taken.
	TotalAllocatedConcurrencyMem int64 `json:"TotalAllocatedConcurrencyMem"`
	// UserConcurrencyMemLimit is the quota the user set
	// (PutTotalConcurrencyConfig).
	UserConcurrencyMemLimit int64 `json:"UserConcurrencyMemLimit"`
}

// NamespaceUsage is one namespace's usage; quotas in MB, nil when unset.
type NamespaceUsage struct {
	Functions                    []string `json:"Functions"`
	Namespace                    string   `json:"Namespace"`
	FunctionsCount               int64    `json:"FunctionsCount"`
	TotalConcurrencyMem          *int64   `json:"TotalConcurrencyMem"`
	TotalAllocatedConcurrencyMem *int64   `json:"TotalAllocatedConcurrencyMem"`
	TotalAllocatedProvisionedMem *int64   `json:"TotalAllocatedProvisionedMem"`
}

// LimitsInfo is the account's limits.
type LimitsInfo struct {
	NamespacesCount int64            `json:"NamespacesCount"`
	Namespace       []NamespaceLimit `json:"Namespace"`
}

// NamespaceLimit is one namespace's limits.
type NamespaceLimit struct {
	FunctionsCount       int64        `json:"FunctionsCount"`
	Trigger              TriggerCount `json:"Trigger"`
	Namespace            string       `json:"Namespace"`
	ConcurrentExecutions int64        `json:"ConcurrentExecutions"`
	TimeoutLimit         int64        `json:"TimeoutLimit"`     // seconds
	TestModelLimit       int64        `json:"TestModelLimit"`   // test events
	InitTimeoutLimit     int64        `json:"InitTimeoutLimit"` // seconds
	RetryNumLimit        int64        `json:"RetryNumLimit"`    // async retries
	MinMsgTTL            int64        `json:"MinMsgTTL"`        // seconds
	MaxMsgTTL            int64        `json:"MaxMsgTTL"`        // seconds
}

// TriggerCount is the trigger limit per type.
type TriggerCount struct {
	Cos    int64 `json:"Cos"`
	Timer  int64 `json:"Timer"`
	Cmq    int64 `json:"Cmq"`
	Total  int64 `json:"Total"`
	Ckafka int64 `json:"Ckafka"`
	Apigw  int64 `json:"Apigw"`
	Cls    int64 `json:"Cls"`
	Clb    int64 `json:"Clb"`
	Mps    int64 `json:"Mps"`
	Cm     int64 `json:"Cm"`
	Vod    int64 `json:"Vod"`
	Eb     int64 `json:"Eb"`
}
