package scf

import "strconv"

// Code is where a function's code comes from (one of COS, a zip file or a
// demo).
type Code struct {
	CosBucketName   string `json:"CosBucketName,omitempty"`
	CosObjectName   string `json:"CosObjectName,omitempty"`
	ZipFile         string `json:"ZipFile,omitempty"` // base64 of the zip
	CosBucketRegion string `json:"CosBucketRegion,omitempty"`
	DemoId          string `json:"DemoId,omitempty"` //nolint:revive
}

// Environment holds a function's environment variables.
type Environment struct {
	Variables []Variable `json:"Variables"`
}

// Variable is one environment variable.
type Variable struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// StatusReason explains a function status.
type StatusReason struct {
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// MixNodeConfig is the GPU mixed-node concurrency of a node type.
type MixNodeConfig struct {
	NodeSpec string `json:"NodeSpec,omitempty"`
	Num      uint64 `json:"Num,omitempty"`
}

// SessionConfig configures session-based concurrency.
type SessionConfig struct {
	SessionSource                        string `json:"SessionSource,omitempty"` // HEADER, COOKIE or QUERY_STRING
	SessionName                          string `json:"SessionName,omitempty"`
	MaximumConcurrencySessionPerInstance uint64 `json:"MaximumConcurrencySessionPerInstance,omitempty"`
	MaximumTTLInSeconds                  uint64 `json:"MaximumTTLInSeconds,omitempty"`
	MaximumIdleTimeInSeconds             uint64 `json:"MaximumIdleTimeInSeconds,omitempty"`
	SessionPath                          string `json:"SessionPath,omitempty"`
	IdleTimeoutStrategy                  string `json:"IdleTimeoutStrategy,omitempty"`
}

// InstanceConcurrencyConfig lets one instance of an HTTP (web) function
// run several requests at once. Each request then carries its own
// X-Scf-Request-Id header.
type InstanceConcurrencyConfig struct {
	// DynamicEnabled is "FALSE" for a static count (TRUE, smart dynamic
	// concurrency, is announced but not available); sending the config
	// with neither field removes multi-concurrency.
	DynamicEnabled string `json:"DynamicEnabled,omitempty"`
	// MaxConcurrency is the most requests per instance, 1–100 (the console
	// offers 2–100).
	MaxConcurrency           uint64          `json:"MaxConcurrency,omitempty"`
	InstanceIsolationEnabled string          `json:"InstanceIsolationEnabled,omitempty"`
	Type                     string          `json:"Type,omitempty"` // Session-Based or Request-Based
	MixNodeConfig            []MixNodeConfig `json:"MixNodeConfig,omitempty"`
	SessionConfig            *SessionConfig  `json:"SessionConfig,omitempty"`
}

func (c *InstanceConcurrencyConfig) rule() (string, string) {
	if c == nil {
		return "", ""
	}
	if c.MaxConcurrency > MaxInstanceConcurrency {
		return "InstanceConcurrencyConfig.MaxConcurrency", "must be 1–100"
	}
	if r := enableRule(c.DynamicEnabled); r != "" {
		return "InstanceConcurrencyConfig.DynamicEnabled", r
	}
	if r := enableRule(c.InstanceIsolationEnabled); r != "" {
		return "InstanceConcurrencyConfig.InstanceIsolationEnabled", r
	}
	switch c.Type {
	case "", "Session-Based", "Request-Based":
	default:
		return "InstanceConcurrencyConfig.Type", "must be Session-Based or Request-Based"
	}
	return "", ""
}

// functionSettings checks the settings CreateFunction and
// UpdateFunctionConfiguration share.
func functionSettings(memory, timeout, initTimeout int64, asyncRun string, icc *InstanceConcurrencyConfig) (string, string) {
	if memory != 0 && !ValidMemorySize(memory) {
		return "MemorySize", memorySizeRule
	}
	if timeout != 0 && (timeout < 1 || timeout > MaxTimeoutSeconds) {
		return "Timeout", "must be 1–900 seconds"
	}
	if initTimeout != 0 && (initTimeout < 1 || initTimeout > 300) {
		return "InitTimeout", "must be 1–300 seconds"
	}
	if r := enableRule(asyncRun); r != "" {
		return "AsyncRunEnable", r
	}
	return icc.rule()
}

// CreateFunctionInput creates a function. Only the settings that matter for
// concurrency are typed here; use [Client.Call] for the others.
type CreateFunctionInput struct {
	FunctionName string `json:"FunctionName"` // Required: 2–60 letters, digits, - and _, starting with a letter.
	Code         *Code  `json:"Code,omitempty"`
	Handler      string `json:"Handler,omitempty"` // "index.main_handler"
	Description  string `json:"Description,omitempty"`
	// MemorySize in MB: 64 or 128–3072 in steps of 128; default 128.
	MemorySize int64 `json:"MemorySize,omitempty"`
	// Timeout in seconds, 1–900; default 3.
	Timeout     int64        `json:"Timeout,omitempty"`
	Environment *Environment `json:"Environment,omitempty"`
	Runtime     string       `json:"Runtime,omitempty"` // "Python3.9", "Go1", "Nodejs18.15"…
	Namespace   string       `json:"Namespace,omitempty"`
	Role        string       `json:"Role,omitempty"`
	// Type is FunctionTypeEvent (default) or FunctionTypeHTTP.
	Type string `json:"Type,omitempty"`
	// InitTimeout in seconds; default 65.
	InitTimeout    int64  `json:"InitTimeout,omitempty"`
	Tags           []Tag  `json:"Tags,omitempty"`
	AsyncRunEnable string `json:"AsyncRunEnable,omitempty"` // TRUE or FALSE
	CodeSource     string `json:"CodeSource,omitempty"`     // ZipFile, Cos or Demo
	// InstanceConcurrencyConfig: HTTP functions only.
	InstanceConcurrencyConfig *InstanceConcurrencyConfig `json:"InstanceConcurrencyConfig,omitempty"`
}

func (in *CreateFunctionInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	switch in.Type {
	case "", FunctionTypeEvent:
		if in.InstanceConcurrencyConfig != nil {
			return "InstanceConcurrencyConfig", "is only for HTTP functions (Type HTTP)"
		}
	case FunctionTypeHTTP:
	default:
		return "Type", "must be Event or HTTP"
	}
	return functionSettings(in.MemorySize, in.Timeout, in.InitTimeout, in.AsyncRunEnable, in.InstanceConcurrencyConfig)
}

// CreateFunctionOutput is the reply to CreateFunction.
type CreateFunctionOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// GetFunctionInput names a function version.
type GetFunctionInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	// Qualifier is a version; the default is $LATEST.
	Qualifier string `json:"Qualifier,omitempty"`
	Namespace string `json:"Namespace,omitempty"`
	ShowCode  string `json:"ShowCode,omitempty"` // TRUE or FALSE
}

func (in *GetFunctionInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	if r := enableRule(in.ShowCode); r != "" {
		return "ShowCode", r
	}
	return "", ""
}

// GetFunctionOutput describes a function version. It has no reserved or
// provisioned fields: those are in ListFunctions and the Get…Config
// actions.
type GetFunctionOutput struct {
	FunctionName    string `json:"FunctionName"`
	FunctionId      string `json:"FunctionId"` //nolint:revive
	Namespace       string `json:"Namespace"`
	FunctionVersion string `json:"FunctionVersion"`
	Qualifier       string `json:"Qualifier"`
	Description     string `json:"Description"`
	Handler         string `json:"Handler"`
	Runtime         string `json:"Runtime"`
	// MemorySize in MB.
	MemorySize int64 `json:"MemorySize"`
	// Timeout and InitTimeout in seconds.
	Timeout     int64  `json:"Timeout"`
	InitTimeout int64  `json:"InitTimeout"`
	Type        string `json:"Type"`
	// Status is "Active" once the function is ready.
	Status                    string                     `json:"Status"`
	StatusDesc                string                     `json:"StatusDesc"`
	StatusReasons             []StatusReason             `json:"StatusReasons"`
	AvailableStatus           string                     `json:"AvailableStatus"`
	AsyncRunEnable            string                     `json:"AsyncRunEnable"`
	TraceEnable               string                     `json:"TraceEnable"`
	InstanceConcurrencyConfig *InstanceConcurrencyConfig `json:"InstanceConcurrencyConfig"`
	Environment               *Environment               `json:"Environment"`
	Tags                      []Tag                      `json:"Tags"`
	Role                      string                     `json:"Role"`
	CodeSize                  int64                      `json:"CodeSize"` // bytes
	AddTime                   string                     `json:"AddTime"`
	ModTime                   string                     `json:"ModTime"`
	RequestId                 string                     `json:"RequestId"` //nolint:revive
}

// UpdateFunctionConfigurationInput changes $LATEST's settings. Zero fields
// are not sent and keep their values.
type UpdateFunctionConfigurationInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Description  string `json:"Description,omitempty"`
	// MemorySize in MB (64 or 128–3072 in steps of 128).
	MemorySize int64 `json:"MemorySize,omitempty"`
	// Timeout in seconds, 1–900.
	Timeout     int64        `json:"Timeout,omitempty"`
	Runtime     string       `json:"Runtime,omitempty"`
	Environment *Environment `json:"Environment,omitempty"`
	Namespace   string       `json:"Namespace,omitempty"`
	Role        string       `json:"Role,omitempty"`
	// Publish "TRUE" also publishes a version.
	Publish     string `json:"Publish,omitempty"`
	InitTimeout int64  `json:"InitTimeout,omitempty"`
	// InstanceConcurrencyConfig sets (MaxConcurrency) or, sent empty,
	// removes the multi-concurrency of an HTTP function.
	InstanceConcurrencyConfig *InstanceConcurrencyConfig `json:"InstanceConcurrencyConfig,omitempty"`
}

func (in *UpdateFunctionConfigurationInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	if r := enableRule(in.Publish); r != "" {
		return "Publish", r
	}
	return functionSettings(in.MemorySize, in.Timeout, in.InitTimeout, "", in.InstanceConcurrencyConfig)
}

// UpdateFunctionConfigurationOutput is the reply to
// UpdateFunctionConfiguration.
type UpdateFunctionConfigurationOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// PublishVersionInput publishes $LATEST as a new, immutable version.
type PublishVersionInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Description  string `json:"Description,omitempty"`
	Namespace    string `json:"Namespace,omitempty"`
}

func (in *PublishVersionInput) validate() (string, string) { return requireFunction(in.FunctionName) }

// PublishVersionOutput describes the new version.
type PublishVersionOutput struct {
	// FunctionVersion is the new version number, e.g. "1".
	FunctionVersion string `json:"FunctionVersion"`
	CodeSize        int64  `json:"CodeSize"`   // bytes
	MemorySize      int64  `json:"MemorySize"` // MB
	Description     string `json:"Description"`
	Handler         string `json:"Handler"`
	Timeout         int64  `json:"Timeout"` // seconds
	Runtime         string `json:"Runtime"`
	Namespace       string `json:"Namespace"`
	RequestId       string `json:"RequestId"` //nolint:revive
}

// Filter narrows ListFunctions.
type Filter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

// ListFunctionsInput selects a page of functions.
type ListFunctionsInput struct {
	// Order is ASC or DESC; Orderby is AddTime, ModTime or FunctionName.
	Order   string `json:"Order,omitempty"`
	Orderby string `json:"Orderby,omitempty"`
	// Offset and Limit (default 20, at most 100) select the page.
	Offset      int64    `json:"Offset,omitempty"`
	Limit       int64    `json:"Limit,omitempty"`
	SearchKey   string   `json:"SearchKey,omitempty"`
	Namespace   string   `json:"Namespace,omitempty"`
	Description string   `json:"Description,omitempty"`
	Filters     []Filter `json:"Filters,omitempty"`
}

func (in *ListFunctionsInput) validate() (string, string) {
	switch in.Order {
	case "", "ASC", "DESC":
	default:
		return "Order", "must be ASC or DESC"
	}
	switch in.Orderby {
	case "", "AddTime", "ModTime", "FunctionName":
	default:
		return "Orderby", "must be AddTime, ModTime or FunctionName"
	}
	if in.Offset < 0 {
		return "Offset", "must not be negative"
	}
	if in.Limit < 0 || in.Limit > 100 {
		return "Limit", "must be 0–100 (0 means 20)"
	}
	return "", ""
}

// Function is one item of ListFunctions; it carries the function's
// reservation and provisioned total.
type Function struct {
	FunctionName   string         `json:"FunctionName"`
	FunctionId     string         `json:"FunctionId"` //nolint:revive
	Namespace      string         `json:"Namespace"`
	Runtime        string         `json:"Runtime"`
	Status         string         `json:"Status"`
	StatusDesc     string         `json:"StatusDesc"`
	StatusReasons  []StatusReason `json:"StatusReasons"`
	Description    string         `json:"Description"`
	Type           string         `json:"Type"`
	Tags           []Tag          `json:"Tags"`
	AsyncRunEnable string         `json:"AsyncRunEnable"`
	TraceEnable    string         `json:"TraceEnable"`
	AddTime        string         `json:"AddTime"`
	ModTime        string         `json:"ModTime"`
	// ReservedConcurrencyMem is the reserved quota in MB; nil when none.
	ReservedConcurrencyMem *uint64 `json:"ReservedConcurrencyMem"`
	// TotalProvisionedConcurrencyMem is the provisioned memory of all
	// versions in MB; nil when none.
	TotalProvisionedConcurrencyMem *uint64 `json:"TotalProvisionedConcurrencyMem"`
}

// ListFunctionsOutput is one page of functions.
type ListFunctionsOutput struct {
	Functions  []Function `json:"Functions"`
	TotalCount int64      `json:"TotalCount"`
	RequestId  string     `json:"RequestId"` //nolint:revive
}

// DeleteFunctionInput deletes a function, or one of its versions.
type DeleteFunctionInput struct {
	FunctionName string `json:"FunctionName"` // Required.
	Namespace    string `json:"Namespace,omitempty"`
	// Qualifier deletes only this version.
	Qualifier string `json:"Qualifier,omitempty"`
}

func (in *DeleteFunctionInput) validate() (string, string) {
	if f, r := requireFunction(in.FunctionName); f != "" {
		return f, r
	}
	if in.Qualifier != "" && !isVersion(in.Qualifier) {
		return "Qualifier", "must be a published version number (" + strconv.Quote(in.Qualifier) + " is not)"
	}
	return "", ""
}

// DeleteFunctionOutput is the reply to DeleteFunction.
type DeleteFunctionOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}
