package car

// shared.go, with the codes common to every Tencent Cloud API, is written
// from internal/facade/shared.go.tmpl.
//go:generate go run ../internal/facade/gen car

// CAR error codes (the Code of an *APIError).
const (
	CodeFailedOperation       = "FailedOperation"
	CodeLockTimeout           = "FailedOperation.LockTimeout"    // no lock, or it expired before CreateSession
	CodePathNotFound          = "FailedOperation.PathNotFound"   // application path not found
	CodeProcessTimeout        = "FailedOperation.ProcessTimeout" // processing timed out
	CodeSlowDown              = "FailedOperation.SlowDown"       // a call for this UserId is still running
	CodeInternalError         = "InternalError"
	CodeInvalidParameter      = "InvalidParameter"
	CodeJSONParseError        = "InvalidParameter.JsonParseError"
	CodeInvalidParameterValue = "InvalidParameterValue"
	CodeRoleLimit             = "LimitExceeded.Role" // multiplayer: too many users in the role
	CodeOperationDenied       = "OperationDenied"
	CodeNoIdle                = "ResourceNotFound.NoIdle"            // no idle concurrency
	CodeSessionNotFound       = "ResourceNotFound.SessionNotFound"   // no session for the user
	CodeAccessFailed          = "ResourceUnavailable.AccessFailed"   // the instance is unreachable
	CodeInitialization        = "ResourceUnavailable.Initialization" // still initialising
	CodeStopping              = "UnsupportedOperation.Stopping"      // the session is being destroyed
)
