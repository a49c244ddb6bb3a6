package scf

// shared.go, with the codes common to every Tencent Cloud API, is written
// from internal/facade/shared.go.tmpl.
//go:generate go run ../internal/facade/gen scf

import "strconv"

// SCF API error codes (the Code of an *APIError) that matter for
// concurrency. The API has many more; compare with HasCode, which also
// matches sub-codes.
const (
	CodeFailedOperation   = "FailedOperation"
	CodeInternalError     = "InternalError"
	CodeInvalidParameter  = "InvalidParameter"
	CodeInvalidValue      = "InvalidParameterValue"
	CodeLimitExceeded     = "LimitExceeded"
	CodeResourceNotFound  = "ResourceNotFound"
	CodeResourceInUse     = "ResourceInUse"
	CodeUnsupportedOp     = "UnsupportedOperation"
	CodeFunctionNotFound  = "ResourceNotFound.Function"
	CodeFunctionName      = "ResourceNotFound.FunctionName"
	CodeNamespaceNotFound = "ResourceNotFound.Namespace"
	CodeVersionNotFound   = "ResourceNotFound.Version"
	CodeFunctionVersion   = "ResourceNotFound.FunctionVersion"
	CodeAliasNotFound     = "ResourceNotFound.Alias"
	// CodeQualifierNotFound is how InvokeFunction reports an unknown
	// version or alias (status 442 in an execution result elsewhere).
	CodeQualifierNotFound = "ResourceNotFound.Qualifier"
	// CodeQuota is how InvokeFunction reports an exhausted concurrency
	// quota (status 432 in an execution result elsewhere).
	CodeQuota          = "LimitExceeded.Quota"
	CodeFunctionExists = "ResourceInUse.Function"

	CodeReservedMemory         = "LimitExceeded.FunctionReservedConcurrencyMemory"
	CodeReservedExceedTotal    = "FailedOperation.ReservedExceedTotal"
	CodeReservedInProgress     = "FailedOperation.ReservedInProgress"
	CodeProvisionedExceedRes   = "FailedOperation.ProvisionedExceedReserved"
	CodeProvisionedExceedAvail = "FailedOperation.ProvisionedExceedAvailable"
	CodeProvisionedInProgress  = "FailedOperation.ProvisionedInProgress"
	CodeTotalConcurrencyMemory = "LimitExceeded.TotalConcurrencyMemory"
	CodeTotalMemoryInProgress  = "FailedOperation.TotalConcurrencyMemoryInProgress"
	CodeInvalidQualifier       = "InvalidParameterValue.Qualifier"
	CodeInvalidMemorySize      = "InvalidParameterValue.MemorySize"
	CodeInvalidFunctionName    = "InvalidParameterValue.FunctionName"
	CodeInvalidFunctionType    = "InvalidParameterValue.FunctionType"
	CodeInvalidClientContext   = "InvalidParameterValue.ClientContext"
	CodeInvalidParam           = "InvalidParameterValue.Param"
	CodeInvalidMaxConcurrency  = "InvalidParameterValue.MaxConcurrency"
	CodeInvalidInstanceConc    = "InvalidParameterValue.InstanceConcurrencyConfig"
	CodeInvalidProvisionType   = "InvalidParameterValue.ProvisionType"
	CodeInvalidTrackingTarget  = "InvalidParameterValue.TrackingTarget"
	CodeInvalidMinCapacity     = "InvalidParameterValue.MinCapacity"
	CodeInvalidTriggerCron     = "InvalidParameterValue.TriggerCronConfig"
	CodeInvalidTriggerName     = "InvalidParameterValue.ProvisionTriggerName"
	CodeTriggerNameDuplicate   = "InvalidParameterValue.ProvisionTriggerNameDuplicate"
	CodeTriggerCronDuplicate   = "InvalidParameterValue.ProvisionTriggerCronConfigDuplicate"
	CodeTriggerActionLimit     = "LimitExceeded.ProvisionTriggerAction"
	CodeMaxCapacity            = "LimitExceeded.MaxCapacity"
	CodeTimeoutLimit           = "LimitExceeded.Timeout"
	CodeRequestTooLarge        = "InvalidParameter.RequestTooLarge"
	CodeInvokeFailed           = "FailedOperation.InvokeFunction"
	CodeFunctionStatusError    = "FailedOperation.FunctionStatusError"
	CodeFunctionCountLimit     = "LimitExceeded.Function"
	CodeServiceSuspended       = "ResourceUnavailable.ServiceSuspended"
	CodeInsufficientBalance    = "ResourceUnavailable.InsufficientBalance"
)

// Function execution status codes (the documented "Cloud Function Status
// Code" list): the StatusCode of a *FunctionError.
const (
	StatusSuccess               = 200
	StatusInvalidParameterValue = 400 // the event is not JSON
	StatusInvalidCredentials    = 401
	StatusServiceSuspended      = 402
	StatusBadGatewayResponse    = 403 // bad API Gateway integrated response
	StatusInvalidSubnetID       = 404
	StatusContainerStateExited  = 405
	StatusRequestTooLarge       = 406 // event over 6 MB sync / 128 KB async
	StatusResponseTooLarge      = 407 // response over 6 MB
	StatusInsufficientBalance   = 410
	StatusResourceLimit         = 429 // instance creation rate (burst 500/min/region)
	StatusUserCodeException     = 430 // an exception the runtime caught
	StatusResourceLimitReached  = 432 // concurrency quota (reserved or region unreserved)
	StatusTimeLimitReached      = 433 // the function's Timeout passed
	StatusMemoryLimitReached    = 434 // the function's MemorySize was exceeded
	StatusFunctionNotFound      = 435
	StatusInvalidInvokeParams   = 436
	StatusHandlerNotFound       = 437
	StatusFunctionStatusError   = 438 // the function is abnormal or shut down
	StatusUserProcessExit       = 439 // the user process exited while running
	StatusUnauthorizedOperation = 441
	StatusQualifierNotFound     = 442 // no such version or alias
	StatusUserCodeError         = 443
	StatusImagePullFailed       = 444
	StatusContainerInitError    = 445
	StatusPortBindingFailed     = 446 // web function not listening on 9000
	StatusImagePullTimeout      = 447
	StatusInsufficientResources = 449
	StatusInitContainerTimeout  = 450
	StatusRequestCanceled       = 499
	StatusInternalError         = 500
)

func statusName(code int) string {
	switch code {
	case StatusSuccess:
		return "Success"
	case StatusInvalidParameterValue:
		return "InvalidParameterValue"
	case StatusInvalidCredentials:
		return "InvalidCredentials"
	case StatusServiceSuspended:
		return "ServiceSuspended"
	case StatusBadGatewayResponse:
		return "BadIntegratedResponse"
	case StatusInvalidSubnetID:
		return "InvalidSubnetID"
	case StatusContainerStateExited:
		return "ContainerStateExited"
	case StatusRequestTooLarge:
		return "RequestTooLarge"
	case StatusResponseTooLarge:
		return "ResponseSizeTooLarge"
	case StatusInsufficientBalance:
		return "InsufficientBalance"
	case StatusResourceLimit:
		return "ResourceLimit"
	case StatusUserCodeException:
		return "UserCodeException"
	case StatusResourceLimitReached:
		return "ResourceLimitReached"
	case StatusTimeLimitReached:
		return "TimeLimitReached"
	case StatusMemoryLimitReached:
		return "MemoryLimitReached"
	case StatusFunctionNotFound:
		return "FunctionNotFound"
	case StatusInvalidInvokeParams:
		return "InvalidInvokeParameters"
	case StatusHandlerNotFound:
		return "HandlerNotFound"
	case StatusFunctionStatusError:
		return "FunctionStatusError"
	case StatusUserProcessExit:
		return "UserProcessExit"
	case StatusUnauthorizedOperation:
		return "UnauthorizedOperation"
	case StatusQualifierNotFound:
		return "QualifierNotFound"
	case StatusUserCodeError:
		return "UserCodeError"
	case StatusImagePullFailed:
		return "ImagePullFailed"
	case StatusContainerInitError:
		return "ContainerInitError"
	case StatusPortBindingFailed:
		return "PortBindingFailed"
	case StatusImagePullTimeout:
		return "ImagePullTimeout"
	case StatusInsufficientResources:
		return "InsufficientResources"
	case StatusInitContainerTimeout:
		return "InitContainerTimeout"
	case StatusRequestCanceled:
		return "RequestCanceled"
	case StatusInternalError:
		return "InternalError"
	}
	return ""
}

// StatusName returns the documented name of a function status code, e.g.
// "ResourceLimitReached" for 432, or "Status<code>" for a code the
// documentation does not list.
func StatusName(code int) string {
	if n := statusName(code); n != "" {
		return n
	}
	return "Status" + strconv.Itoa(code)
}

// ErrorClass is the documented class of a function failure, which decides
// how SCF (for asynchronous events) and the Invoker retry it.
type ErrorClass int

// The classes of "Error Types and Retry Policies". The documentation gives
// no code → class table; this package uses: 429 and 432 are overrun; 500
// and 449 are system errors; 400, 401, 402, 404, 406, 410, 435, 436, 438,
// 441, 442 and 499 are request errors (they would fail the same way
// again); every other code, 0 included, is an execution error.
const (
	ClassExecution ErrorClass = iota // user code or runtime: 430, 433, 434, 439, 443…
	ClassOverrun                     // concurrency: 429 scale-out rate, 432 quota
	ClassSystem                      // platform: 500, 449
	ClassRequest                     // the request itself: bad event, no such function or version…
)

func (c ErrorClass) String() string {
	switch c {
	case ClassOverrun:
		return "overrun"
	case ClassSystem:
		return "system"
	case ClassRequest:
		return "request"
	}
	return "execution"
}

// ClassOf returns the class of a function status code.
func ClassOf(status int) ErrorClass {
	switch status {
	case StatusResourceLimit, StatusResourceLimitReached:
		return ClassOverrun
	case StatusInternalError, StatusInsufficientResources:
		return ClassSystem
	case StatusInvalidParameterValue, StatusInvalidCredentials, StatusServiceSuspended, StatusInvalidSubnetID,
		StatusRequestTooLarge, StatusInsufficientBalance, StatusFunctionNotFound, StatusInvalidInvokeParams,
		StatusFunctionStatusError, StatusUnauthorizedOperation, StatusQualifierNotFound, StatusRequestCanceled:
		return ClassRequest
	}
	return ClassExecution
}
