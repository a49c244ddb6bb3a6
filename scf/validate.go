package scf

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Documented SCF limits used by validation, the planner and scftest.
const (
	// AccountQuotaMB is the default concurrency quota of an account in a
	// region (Guangzhou, Shanghai, Beijing, Chengdu, Hong Kong): 1,000
	// instances of 128 MB.
	AccountQuotaMB = 128000
	// SmallRegionQuotaMB is the quota in the smaller regions (Mumbai,
	// Singapore, Tokyo, Toronto, Silicon Valley, Frankfurt, …).
	SmallRegionQuotaMB = 64000
	// UnreservableMB of every account quota can never be reserved or
	// provisioned: it is kept for functions without a reservation.
	UnreservableMB = 12800
	// ScaleOutPerMinute is the burst: at most this many new elastic
	// instances per minute per account and region; beyond it, 429.
	ScaleOutPerMinute = 500
	// ProvisionPerMinute is how fast provisioned instances start.
	ProvisionPerMinute = 100
	// MaxSyncInvokeTime bounds a synchronous Invoke.
	MaxSyncInvokeTime = 300 * time.Second
	// MaxSyncEventBytes bounds a synchronous event (6 MB).
	MaxSyncEventBytes = 6 << 20
	// MaxAsyncEventBytes bounds an asynchronous event (128 KB).
	MaxAsyncEventBytes = 128 << 10
	// MaxInstanceConcurrency is the most requests one instance of an HTTP
	// function may run at once.
	MaxInstanceConcurrency = 100
	// MaxTimeoutSeconds is the longest function Timeout.
	MaxTimeoutSeconds = 900
	// MaxRoutingKeyBytes bounds Invoke's RoutingKey.
	MaxRoutingKeyBytes = 1024
)

// Values of the function settings.
const (
	FunctionTypeEvent = "Event" // triggered by events and the Invoke API (default)
	FunctionTypeHTTP  = "HTTP"  // a web function, reached over HTTP

	InvocationRequestResponse = "RequestResponse" // synchronous (default)
	InvocationEvent           = "Event"           // asynchronous: queued, returns at once

	LogTypeNone = "None"
	LogTypeTail = "Tail" // return up to 4 KB of log in Result.Log

	QualifierLatest = "$LATEST"  // the editable head; Invoke's default
	AliasDefault    = "$DEFAULT" // the alias every function has; InvokeFunction's default

	DefaultNamespace = "default"

	ProvisionedTypeDefault  = "Default"                        // a static count
	ProvisionedTypeTracking = "ConcurrencyUtilizationTracking" // follows utilization

	ProvisionedStatusDone       = "Done"
	ProvisionedStatusInProgress = "InProgress"
	ProvisionedStatusFailed     = "Failed"

	EnableTrue  = "TRUE"
	EnableFalse = "FALSE"
)

// ValidMemorySize reports whether mb is a memory size SCF offers: 64, or
// 128 to 3072 in steps of 128.
func ValidMemorySize(mb int64) bool {
	return mb == 64 || (mb >= 128 && mb <= 3072 && mb%128 == 0)
}

const memorySizeRule = "must be 64 or 128–3072 MB in steps of 128"

// functionNameRule returns the rule a function name breaks, or "".
func functionNameRule(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) < 2 || len(name) > 60:
		return "must be 2–60 characters"
	case !isLetter(name[0]):
		return "must start with a letter"
	case name[len(name)-1] == '-' || name[len(name)-1] == '_':
		return "must not end with - or _"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' {
			return "may hold only letters, digits, - and _"
		}
	}
	return ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// requireFunction checks FunctionName.
func requireFunction(name string) (string, string) {
	if r := functionNameRule(name); r != "" {
		return "FunctionName", r
	}
	return "", ""
}

// requireFunctionVersion checks a function name and a Qualifier that must
// be a published version: provisioned concurrency lives only on those.
func requireFunctionVersion(name, qualifier string) (string, string) {
	if f, r := requireFunction(name); f != "" {
		return f, r
	}
	if qualifier == "" {
		return "Qualifier", "is required"
	}
	if !isVersion(qualifier) {
		return "Qualifier", "must be a published version number (not $LATEST or an alias)"
	}
	return "", ""
}

// isVersion reports a published version number ("1", "2", …).
func isVersion(q string) bool {
	if q == "" || q[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(q, 10, 32)
	return err == nil
}

// eventRule checks an event: JSON, at most max bytes.
func eventRule(event string, max int) string {
	if event == "" {
		return ""
	}
	if len(event) > max {
		return "must be at most " + sizeText(max) + " (it is " + strconv.Itoa(len(event)) + " bytes)"
	}
	if !json.Valid([]byte(event)) {
		return "must be JSON"
	}
	return ""
}

func sizeText(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + " MB"
	}
	return strconv.Itoa(n>>10) + " KB"
}

// routingKeyRule checks a RoutingKey: a JSON object of string values.
func routingKeyRule(key string) string {
	if key == "" {
		return ""
	}
	if len(key) > MaxRoutingKeyBytes {
		return "must be at most 1024 bytes"
	}
	var m map[string]string
	if json.Unmarshal([]byte(key), &m) != nil {
		return `must be a JSON object of strings, e.g. {"userId":"42"}`
	}
	return ""
}

func logTypeRule(t string) string {
	switch t {
	case "", LogTypeNone, LogTypeTail:
		return ""
	}
	return "must be None or Tail"
}

func enableRule(v string) string {
	switch v {
	case "", EnableTrue, EnableFalse:
		return ""
	}
	return "must be TRUE or FALSE"
}

// cronRule checks the shape of a TriggerCronConfig: seven space-separated
// fields (second minute hour day month weekday year) of digits and
// * , - / ?. scftest checks the values.
func cronRule(expr string) string {
	fields := strings.Fields(expr)
	if len(fields) != 7 {
		return "must have 7 space-separated fields (second minute hour day month weekday year), e.g. \"0 30 9 * * * *\""
	}
	for _, f := range fields {
		for i := 0; i < len(f); i++ {
			if c := f[i]; !(c >= '0' && c <= '9') && !strings.ContainsRune("*,-/?", rune(c)) {
				return "field " + strconv.Quote(f) + " may hold only digits and * , - / ?"
			}
		}
	}
	return ""
}

// trackingTargetRule: the open range (0,1) with at most two decimals.
func trackingTargetRule(v float64) string {
	if !(v > 0 && v < 1) {
		return "must be in the open range (0, 1)"
	}
	if c := v * 100; c-float64(int64(c+0.5)) > 1e-9 || float64(int64(c+0.5))-c > 1e-9 {
		return "must have at most two decimals"
	}
	return ""
}
