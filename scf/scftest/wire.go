package scftest

import (
	"encoding/json"
	"strconv"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// Request and response bodies, as the API spells them. Requests are
// decoded strictly (an unknown field is UnknownParameter), so every field
// the official SDK can send for a modelled action is listed; the ones the
// model ignores are json.RawMessage. Responses are written independently
// of package scf's types, so a spelling mistake on either side shows up
// in the conformance tests with the official SDK. A request that names a
// function says which, and which fields it requires, with its target
// method (api.go's openFunction reads it).

type wireTriggerAction struct {
	TriggerName                      string  `json:"TriggerName"`
	TriggerProvisionedConcurrencyNum *uint64 `json:"TriggerProvisionedConcurrencyNum"`
	TriggerCronConfig                string  `json:"TriggerCronConfig"`
	ProvisionedType                  string  `json:"ProvisionedType,omitempty"`
}

type putReservedIn struct {
	FunctionName           string  `json:"FunctionName"`
	ReservedConcurrencyMem *uint64 `json:"ReservedConcurrencyMem"`
	Namespace              string  `json:"Namespace"`
}

func (in *putReservedIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type fnRefIn struct {
	FunctionName string `json:"FunctionName"`
	Namespace    string `json:"Namespace"`
}

func (in *fnRefIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type getReservedOut struct {
	ReservedMem *uint64 `json:"ReservedMem"`
}

type putProvisionedIn struct {
	FunctionName                     string              `json:"FunctionName"`
	Qualifier                        string              `json:"Qualifier"`
	VersionProvisionedConcurrencyNum *uint64             `json:"VersionProvisionedConcurrencyNum"`
	Namespace                        string              `json:"Namespace"`
	TriggerActions                   []wireTriggerAction `json:"TriggerActions"`
	ProvisionedType                  string              `json:"ProvisionedType"`
	TrackingTarget                   *float64            `json:"TrackingTarget"`
	MinCapacity                      *uint64             `json:"MinCapacity"`
	MaxCapacity                      *uint64             `json:"MaxCapacity"`
}

func (in *putProvisionedIn) target() fnRef {
	return byName(in.Namespace, in.FunctionName, "Qualifier", in.Qualifier)
}

type fnQualifierIn struct {
	FunctionName string `json:"FunctionName"`
	Qualifier    string `json:"Qualifier"`
	Namespace    string `json:"Namespace"`
}

func (in *fnQualifierIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type versionProvisionedOut struct {
	AllocatedProvisionedConcurrencyNum uint64              `json:"AllocatedProvisionedConcurrencyNum"`
	AvailableProvisionedConcurrencyNum uint64              `json:"AvailableProvisionedConcurrencyNum"`
	Status                             string              `json:"Status"`
	StatusReason                       string              `json:"StatusReason"`
	Qualifier                          string              `json:"Qualifier"`
	TriggerActions                     []wireTriggerAction `json:"TriggerActions"`
}

type getProvisionedOut struct {
	UnallocatedConcurrencyNum uint64                  `json:"UnallocatedConcurrencyNum"`
	Allocated                 []versionProvisionedOut `json:"Allocated"`
}

type putTotalIn struct {
	TotalConcurrencyMem *uint64 `json:"TotalConcurrencyMem"`
	Namespace           string  `json:"Namespace"`
}

type namespaceUsageOut struct {
	Functions                    []string `json:"Functions"`
	Namespace                    string   `json:"Namespace"`
	FunctionsCount               int64    `json:"FunctionsCount"`
	TotalConcurrencyMem          *int64   `json:"TotalConcurrencyMem"`
	TotalAllocatedConcurrencyMem *int64   `json:"TotalAllocatedConcurrencyMem"`
	TotalAllocatedProvisionedMem *int64   `json:"TotalAllocatedProvisionedMem"`
}

type usageOut struct {
	NamespacesCount              int64               `json:"NamespacesCount"`
	Namespace                    []namespaceUsageOut `json:"Namespace"`
	TotalConcurrencyMem          int64               `json:"TotalConcurrencyMem"`
	TotalAllocatedConcurrencyMem int64               `json:"TotalAllocatedConcurrencyMem"`
	UserConcurrencyMemLimit      int64               `json:"UserConcurrencyMemLimit"`
}

type triggerCountOut struct {
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

type namespaceLimitOut struct {
	FunctionsCount       int64           `json:"FunctionsCount"`
	Trigger              triggerCountOut `json:"Trigger"`
	Namespace            string          `json:"Namespace"`
	ConcurrentExecutions int64           `json:"ConcurrentExecutions"`
	TimeoutLimit         int64           `json:"TimeoutLimit"`
	TestModelLimit       int64           `json:"TestModelLimit"`
	InitTimeoutLimit     int64           `json:"InitTimeoutLimit"`
	RetryNumLimit        int64           `json:"RetryNumLimit"`
	MinMsgTTL            int64           `json:"MinMsgTTL"`
	MaxMsgTTL            int64           `json:"MaxMsgTTL"`
}

type limitsOut struct {
	NamespacesCount int64               `json:"NamespacesCount"`
	Namespace       []namespaceLimitOut `json:"Namespace"`
}

type getAccountOut struct {
	AccountUsage usageOut  `json:"AccountUsage"`
	AccountLimit limitsOut `json:"AccountLimit"`
}

type invokeIn struct {
	FunctionName   string `json:"FunctionName"`
	InvocationType string `json:"InvocationType"`
	Qualifier      string `json:"Qualifier"`
	ClientContext  string `json:"ClientContext"`
	LogType        string `json:"LogType"`
	Namespace      string `json:"Namespace"`
	RoutingKey     string `json:"RoutingKey"`
}

func (in *invokeIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type invokeFunctionIn struct {
	FunctionName string `json:"FunctionName"`
	Qualifier    string `json:"Qualifier"`
	Event        string `json:"Event"`
	LogType      string `json:"LogType"`
	Namespace    string `json:"Namespace"`
	RoutingKey   string `json:"RoutingKey"`
}

func (in *invokeFunctionIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type resultOut struct {
	FunctionRequestId string  `json:"FunctionRequestId"` //nolint:revive
	Duration          float64 `json:"Duration"`
	BillDuration      int64   `json:"BillDuration"`
	MemUsage          int64   `json:"MemUsage"`
	RetMsg            string  `json:"RetMsg"`
	ErrMsg            string  `json:"ErrMsg"`
	Log               string  `json:"Log"`
	InvokeResult      int64   `json:"InvokeResult"`
}

type invokeOut struct {
	Result resultOut `json:"Result"`
}

// AppendJSON writes the answer of every invoke as json.Marshal does,
// without its reflection (TestInvokeOutAppendJSONMatchesMarshal and
// FuzzInvokeOutAppendJSON check that it is byte for byte the same).
func (o invokeOut) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"Result":`...)
	b, err := o.Result.appendJSON(b)
	return append(b, '}'), err
}

func (r *resultOut) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"FunctionRequestId":`...)
	b = apiserver.AppendJSONString(b, r.FunctionRequestId)
	b = append(b, `,"Duration":`...)
	b, err := apiserver.AppendJSONFloat(b, r.Duration)
	b = append(b, `,"BillDuration":`...)
	b = strconv.AppendInt(b, r.BillDuration, 10)
	b = append(b, `,"MemUsage":`...)
	b = strconv.AppendInt(b, r.MemUsage, 10)
	b = append(b, `,"RetMsg":`...)
	b = apiserver.AppendJSONString(b, r.RetMsg)
	b = append(b, `,"ErrMsg":`...)
	b = apiserver.AppendJSONString(b, r.ErrMsg)
	b = append(b, `,"Log":`...)
	b = apiserver.AppendJSONString(b, r.Log)
	b = append(b, `,"InvokeResult":`...)
	b = strconv.AppendInt(b, r.InvokeResult, 10)
	return append(b, '}'), err
}

type getRequestStatusIn struct {
	FunctionName      string `json:"FunctionName"`
	FunctionRequestId string `json:"FunctionRequestId"` //nolint:revive
	Namespace         string `json:"Namespace"`
	StartTime         string `json:"StartTime"`
	EndTime           string `json:"EndTime"`
}

func (in *getRequestStatusIn) target() fnRef {
	return byName(in.Namespace, in.FunctionName, "FunctionRequestId", in.FunctionRequestId)
}

type requestStatusOut struct {
	FunctionName string  `json:"FunctionName"`
	RetMsg       string  `json:"RetMsg"`
	RequestId    string  `json:"RequestId"` //nolint:revive
	StartTime    string  `json:"StartTime"`
	RetCode      int64   `json:"RetCode"`
	Duration     float64 `json:"Duration"`
	MemUsage     float64 `json:"MemUsage"`
	RetryNum     int64   `json:"RetryNum"`
}

type getRequestStatusOut struct {
	TotalCount int64              `json:"TotalCount"`
	Data       []requestStatusOut `json:"Data"`
}

type wireVariable struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type wireEnvironment struct {
	Variables []wireVariable `json:"Variables"`
}

type wireTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type wireStatusReason struct {
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

type wireInstanceConcurrency struct {
	DynamicEnabled           string          `json:"DynamicEnabled,omitempty"`
	MaxConcurrency           *uint64         `json:"MaxConcurrency,omitempty"`
	InstanceIsolationEnabled string          `json:"InstanceIsolationEnabled,omitempty"`
	Type                     string          `json:"Type,omitempty"`
	MixNodeConfig            json.RawMessage `json:"MixNodeConfig,omitempty"`
	SessionConfig            json.RawMessage `json:"SessionConfig,omitempty"`
}

// createFunctionIn lists every CreateFunction field of the official SDK.
type createFunctionIn struct {
	FunctionName              string                   `json:"FunctionName"`
	Code                      json.RawMessage          `json:"Code"`
	Handler                   string                   `json:"Handler"`
	Description               string                   `json:"Description"`
	MemorySize                *int64                   `json:"MemorySize"`
	Timeout                   *int64                   `json:"Timeout"`
	Environment               *wireEnvironment         `json:"Environment"`
	Runtime                   string                   `json:"Runtime"`
	VpcConfig                 json.RawMessage          `json:"VpcConfig"`
	Namespace                 string                   `json:"Namespace"`
	Role                      string                   `json:"Role"`
	InstallDependency         string                   `json:"InstallDependency"`
	ClsLogsetId               string                   `json:"ClsLogsetId"` //nolint:revive
	ClsTopicId                string                   `json:"ClsTopicId"`  //nolint:revive
	Type                      string                   `json:"Type"`
	CodeSource                string                   `json:"CodeSource"`
	Layers                    json.RawMessage          `json:"Layers"`
	DeadLetterConfig          json.RawMessage          `json:"DeadLetterConfig"`
	PublicNetConfig           json.RawMessage          `json:"PublicNetConfig"`
	CfsConfig                 json.RawMessage          `json:"CfsConfig"`
	InitTimeout               *int64                   `json:"InitTimeout"`
	Tags                      []wireTag                `json:"Tags"`
	AsyncRunEnable            string                   `json:"AsyncRunEnable"`
	TraceEnable               string                   `json:"TraceEnable"`
	AutoDeployClsTopicIndex   string                   `json:"AutoDeployClsTopicIndex"`
	AutoCreateClsTopic        string                   `json:"AutoCreateClsTopic"`
	ProtocolType              string                   `json:"ProtocolType"`
	ProtocolParams            json.RawMessage          `json:"ProtocolParams"`
	InstanceConcurrencyConfig *wireInstanceConcurrency `json:"InstanceConcurrencyConfig"`
	DnsCache                  string                   `json:"DnsCache"`
	IntranetConfig            json.RawMessage          `json:"IntranetConfig"`
}

// updateFunctionIn lists every UpdateFunctionConfiguration field.
type updateFunctionIn struct {
	FunctionName              string                   `json:"FunctionName"`
	Description               *string                  `json:"Description"`
	MemorySize                *int64                   `json:"MemorySize"`
	Timeout                   *int64                   `json:"Timeout"`
	Runtime                   string                   `json:"Runtime"`
	Environment               *wireEnvironment         `json:"Environment"`
	Namespace                 string                   `json:"Namespace"`
	VpcConfig                 json.RawMessage          `json:"VpcConfig"`
	Role                      *string                  `json:"Role"`
	InstallDependency         string                   `json:"InstallDependency"`
	ClsLogsetId               string                   `json:"ClsLogsetId"` //nolint:revive
	ClsTopicId                string                   `json:"ClsTopicId"`  //nolint:revive
	Publish                   string                   `json:"Publish"`
	L5Enable                  string                   `json:"L5Enable"`
	Layers                    json.RawMessage          `json:"Layers"`
	DeadLetterConfig          json.RawMessage          `json:"DeadLetterConfig"`
	PublicNetConfig           json.RawMessage          `json:"PublicNetConfig"`
	CfsConfig                 json.RawMessage          `json:"CfsConfig"`
	InitTimeout               *int64                   `json:"InitTimeout"`
	ProtocolParams            json.RawMessage          `json:"ProtocolParams"`
	InstanceConcurrencyConfig *wireInstanceConcurrency `json:"InstanceConcurrencyConfig"`
	DnsCache                  string                   `json:"DnsCache"`
	IntranetConfig            json.RawMessage          `json:"IntranetConfig"`
	IgnoreSysLog              *bool                    `json:"IgnoreSysLog"`
}

func (in *updateFunctionIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type getFunctionIn struct {
	FunctionName string `json:"FunctionName"`
	Qualifier    string `json:"Qualifier"`
	Namespace    string `json:"Namespace"`
	ShowCode     string `json:"ShowCode"`
}

func (in *getFunctionIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type getFunctionOut struct {
	FunctionName              string                   `json:"FunctionName"`
	FunctionId                string                   `json:"FunctionId"` //nolint:revive
	Namespace                 string                   `json:"Namespace"`
	FunctionVersion           string                   `json:"FunctionVersion"`
	Qualifier                 string                   `json:"Qualifier"`
	Description               string                   `json:"Description"`
	Handler                   string                   `json:"Handler"`
	Runtime                   string                   `json:"Runtime"`
	MemorySize                int64                    `json:"MemorySize"`
	Timeout                   int64                    `json:"Timeout"`
	InitTimeout               int64                    `json:"InitTimeout"`
	Type                      string                   `json:"Type"`
	Status                    string                   `json:"Status"`
	StatusDesc                string                   `json:"StatusDesc"`
	StatusReasons             []wireStatusReason       `json:"StatusReasons"`
	AvailableStatus           string                   `json:"AvailableStatus"`
	AsyncRunEnable            string                   `json:"AsyncRunEnable"`
	TraceEnable               string                   `json:"TraceEnable"`
	InstanceConcurrencyConfig *wireInstanceConcurrency `json:"InstanceConcurrencyConfig"`
	Environment               wireEnvironment          `json:"Environment"`
	Tags                      []wireTag                `json:"Tags"`
	Role                      string                   `json:"Role"`
	CodeSize                  int64                    `json:"CodeSize"`
	CodeInfo                  string                   `json:"CodeInfo"`
	CodeResult                string                   `json:"CodeResult"`
	CodeError                 string                   `json:"CodeError"`
	ErrNo                     int64                    `json:"ErrNo"`
	AddTime                   string                   `json:"AddTime"`
	ModTime                   string                   `json:"ModTime"`
	DnsCache                  string                   `json:"DnsCache"`
}

type publishVersionIn struct {
	FunctionName string `json:"FunctionName"`
	Description  string `json:"Description"`
	Namespace    string `json:"Namespace"`
}

func (in *publishVersionIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type publishVersionOut struct {
	FunctionVersion string `json:"FunctionVersion"`
	CodeSize        int64  `json:"CodeSize"`
	MemorySize      int64  `json:"MemorySize"`
	Description     string `json:"Description"`
	Handler         string `json:"Handler"`
	Timeout         int64  `json:"Timeout"`
	Runtime         string `json:"Runtime"`
	Namespace       string `json:"Namespace"`
}

type wireFilter struct {
	Name   string   `json:"Name"`
	Values []string `json:"Values"`
}

type listFunctionsIn struct {
	Order       string       `json:"Order"`
	Orderby     string       `json:"Orderby"`
	Offset      *int64       `json:"Offset"`
	Limit       *int64       `json:"Limit"`
	SearchKey   string       `json:"SearchKey"`
	Namespace   string       `json:"Namespace"`
	Description string       `json:"Description"`
	Filters     []wireFilter `json:"Filters"`
}

type functionOut struct {
	ModTime                        string             `json:"ModTime"`
	AddTime                        string             `json:"AddTime"`
	Runtime                        string             `json:"Runtime"`
	FunctionName                   string             `json:"FunctionName"`
	FunctionId                     string             `json:"FunctionId"` //nolint:revive
	Namespace                      string             `json:"Namespace"`
	Status                         string             `json:"Status"`
	StatusDesc                     string             `json:"StatusDesc"`
	Description                    string             `json:"Description"`
	Tags                           []wireTag          `json:"Tags"`
	Type                           string             `json:"Type"`
	StatusReasons                  []wireStatusReason `json:"StatusReasons"`
	TotalProvisionedConcurrencyMem *uint64            `json:"TotalProvisionedConcurrencyMem"`
	ReservedConcurrencyMem         *uint64            `json:"ReservedConcurrencyMem"`
	AsyncRunEnable                 string             `json:"AsyncRunEnable"`
	TraceEnable                    string             `json:"TraceEnable"`
}

type listFunctionsOut struct {
	Functions  []functionOut `json:"Functions"`
	TotalCount int64         `json:"TotalCount"`
}

type wireVersionWeight struct {
	Version string   `json:"Version"`
	Weight  *float64 `json:"Weight"`
}

type wireVersionMatch struct {
	Version    string `json:"Version"`
	Key        string `json:"Key"`
	Method     string `json:"Method"`
	Expression string `json:"Expression"`
}

type wireRoutingConfig struct {
	AdditionalVersionWeights []wireVersionWeight `json:"AdditionalVersionWeights"`
	AddtionVersionMatchs     []wireVersionMatch  `json:"AddtionVersionMatchs"` //nolint:misspell // the API's spelling
}

type aliasIn struct {
	Name            string             `json:"Name"`
	FunctionName    string             `json:"FunctionName"`
	FunctionVersion string             `json:"FunctionVersion"`
	Namespace       string             `json:"Namespace"`
	RoutingConfig   *wireRoutingConfig `json:"RoutingConfig"`
	Description     *string            `json:"Description"`
}

func (in *aliasIn) target() fnRef {
	return fnRef{in.Namespace, in.FunctionName, []string{"Name", in.Name, "FunctionName", in.FunctionName, "FunctionVersion", in.FunctionVersion}}
}

type aliasRefIn struct {
	FunctionName string `json:"FunctionName"`
	Name         string `json:"Name"`
	Namespace    string `json:"Namespace"`
}

func (in *aliasRefIn) target() fnRef {
	return byName(in.Namespace, in.FunctionName, "Name", in.Name)
}

type aliasOut struct {
	FunctionVersion string            `json:"FunctionVersion"`
	Name            string            `json:"Name"`
	RoutingConfig   wireRoutingConfig `json:"RoutingConfig"`
	Description     string            `json:"Description"`
	AddTime         string            `json:"AddTime"`
	ModTime         string            `json:"ModTime"`
}

type listAliasesIn struct {
	FunctionName    string `json:"FunctionName"`
	Namespace       string `json:"Namespace"`
	FunctionVersion string `json:"FunctionVersion"`
	Offset          string `json:"Offset"`
	Limit           string `json:"Limit"`
}

func (in *listAliasesIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type listAliasesOut struct {
	Aliases    []aliasOut `json:"Aliases"`
	TotalCount uint64     `json:"TotalCount"`
}

type wireRetryConfig struct {
	RetryNum *int64 `json:"RetryNum"`
}

type wireAsyncTriggerConfig struct {
	RetryConfig []wireRetryConfig `json:"RetryConfig"`
	MsgTTL      *int64            `json:"MsgTTL"`
}

type getEventInvokeConfigIn struct {
	FunctionName string `json:"FunctionName"`
	Namespace    string `json:"Namespace"`
	Qualifier    string `json:"Qualifier"`
}

func (in *getEventInvokeConfigIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type updateEventInvokeConfigIn struct {
	AsyncTriggerConfig *wireAsyncTriggerConfig `json:"AsyncTriggerConfig"`
	FunctionName       string                  `json:"FunctionName"`
	Namespace          string                  `json:"Namespace"`
}

func (in *updateEventInvokeConfigIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }

type eventInvokeConfigOut struct {
	AsyncTriggerConfig wireAsyncTriggerConfig `json:"AsyncTriggerConfig"`
}

type deleteFunctionIn struct {
	FunctionName string `json:"FunctionName"`
	Namespace    string `json:"Namespace"`
	Qualifier    string `json:"Qualifier"`
}

func (in *deleteFunctionIn) target() fnRef { return byName(in.Namespace, in.FunctionName) }
