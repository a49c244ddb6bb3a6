package scf

// InvokeInput runs a function through the Invoke action: synchronously
// (RequestResponse, the default) or asynchronously (Event). Invoke is
// limited to 100 calls per second per account; for synchronous calls
// InvokeFunction (10,000/s) is usually better.
type InvokeInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	// InvocationType is InvocationRequestResponse (default) or
	// InvocationEvent.
	InvocationType string `json:"InvocationType,omitempty"`
	// Qualifier is a version or alias; the default is $LATEST.
	Qualifier string `json:"Qualifier,omitempty"`
	// ClientContext is the event, JSON: at most 6 MB synchronously, 128 KB
	// asynchronously.
	ClientContext string `json:"ClientContext,omitempty"`
	// LogType is LogTypeTail to get the log in Result.Log (sync only).
	LogType   string `json:"LogType,omitempty"`
	Namespace string `json:"Namespace,omitempty"`
	// RoutingKey routes by an alias's rules: a JSON object of strings.
	RoutingKey string `json:"RoutingKey,omitempty"`
}

func (in *InvokeInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	limit := MaxSyncEventBytes
	switch in.InvocationType {
	case "", InvocationRequestResponse:
	case InvocationEvent:
		limit = MaxAsyncEventBytes
		if in.LogType == LogTypeTail {
			return "LogType", "must be empty or None for an asynchronous (Event) invocation"
		}
	default:
		return "InvocationType", "must be RequestResponse or Event"
	}
	if r := eventRule(in.ClientContext, limit); r != "" {
		return "ClientContext", r
	}
	if r := logTypeRule(in.LogType); r != "" {
		return "LogType", r
	}
	if r := routingKeyRule(in.RoutingKey); r != "" {
		return "RoutingKey", r
	}
	return "", ""
}

// Result is the outcome of an execution. For an accepted asynchronous
// event only FunctionRequestId is set.
type Result struct {
	// FunctionRequestId identifies the execution.
	FunctionRequestId string `json:"FunctionRequestId"` //nolint:revive
	// Duration is the run time in milliseconds.
	Duration float64 `json:"Duration"`
	// BillDuration is the billed time in milliseconds.
	BillDuration int64 `json:"BillDuration"`
	// MemUsage is the memory used, in bytes.
	MemUsage int64 `json:"MemUsage"`
	// RetMsg is the function's return value.
	RetMsg string `json:"RetMsg"`
	// ErrMsg is the failure, a JSON error body; empty on success. See
	// [Result.Err].
	ErrMsg string `json:"ErrMsg"`
	// Log is the log output, with LogTypeTail (up to 4 KB).
	Log string `json:"Log"`
	// InvokeResult is deprecated: 0 on success, non-zero on failure.
	InvokeResult int64 `json:"InvokeResult"`
}

// InvokeOutput is the reply to Invoke.
type InvokeOutput struct {
	Result    Result `json:"Result"`
	RequestId string `json:"RequestId"` //nolint:revive
}

// InvokeFunctionInput runs a function synchronously through the
// InvokeFunction action (10,000 calls per second per account).
type InvokeFunctionInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	// Qualifier is a version or alias; the default is the $DEFAULT alias.
	Qualifier string `json:"Qualifier,omitempty"`
	// Event is the event, JSON, at most 6 MB.
	Event string `json:"Event,omitempty"`
	// LogType is LogTypeTail to get up to 4 KB of log in Result.Log.
	LogType    string `json:"LogType,omitempty"`
	Namespace  string `json:"Namespace,omitempty"`
	RoutingKey string `json:"RoutingKey,omitempty"`
}

func (in *InvokeFunctionInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	if r := eventRule(in.Event, MaxSyncEventBytes); r != "" {
		return "Event", r
	}
	if r := logTypeRule(in.LogType); r != "" {
		return "LogType", r
	}
	if r := routingKeyRule(in.RoutingKey); r != "" {
		return "RoutingKey", r
	}
	return "", ""
}

// InvokeFunctionOutput is the reply to InvokeFunction.
type InvokeFunctionOutput struct {
	Result    Result `json:"Result"`
	RequestId string `json:"RequestId"` //nolint:revive
}

// GetRequestStatusInput asks for an execution's status.
type GetRequestStatusInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	// FunctionRequestId is Result.FunctionRequestId. Required.
	FunctionRequestId string `json:"FunctionRequestId"` //nolint:revive
	Namespace         string `json:"Namespace,omitempty"`
	// StartTime and EndTime ("2006-01-02 15:04:05") narrow the search.
	StartTime string `json:"StartTime,omitempty"`
	EndTime   string `json:"EndTime,omitempty"`
}

func (in *GetRequestStatusInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	if in.FunctionRequestId == "" {
		return "FunctionRequestId", "is required"
	}
	return "", ""
}

// Values of RequestStatus.RetCode.
const (
	RetCodeSucceeded = 0
	RetCodeRunning   = 1 // queued, running or waiting for a retry
	RetCodeFailed    = -1
)

// RequestStatus is an execution's status.
type RequestStatus struct {
	FunctionName string `json:"FunctionName"`
	// RetMsg is the return value, or the error body of a failure.
	RetMsg    string `json:"RetMsg"`
	RequestId string `json:"RequestId"` //nolint:revive // the FunctionRequestId
	StartTime string `json:"StartTime"`
	// RetCode is RetCodeSucceeded, RetCodeRunning or RetCodeFailed.
	RetCode int64 `json:"RetCode"`
	// Duration is the run time in milliseconds.
	Duration float64 `json:"Duration"`
	// MemUsage is the memory used, in MB (unlike Result.MemUsage, bytes).
	MemUsage float64 `json:"MemUsage"`
	// RetryNum counts the retries made (asynchronous events).
	RetryNum int64 `json:"RetryNum"`
}

// GetRequestStatusOutput is the reply to GetRequestStatus.
type GetRequestStatusOutput struct {
	TotalCount int64           `json:"TotalCount"`
	Data       []RequestStatus `json:"Data"`
	RequestId  string          `json:"RequestId"` //nolint:revive
}
