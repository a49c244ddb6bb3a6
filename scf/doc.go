// Package scf is a client for Tencent Cloud SCF (Serverless Cloud
// Function), API version 2018-04-16, centred on concurrency: quotas,
// provisioned instances, and invoking functions within them.
//
// # The concurrency model
//
// SCF counts concurrency in MB of memory. An instance of a function takes
// its MemorySize (64, or 128–3072 MB in steps of 128) and runs one request
// at a time (an HTTP function with MaxConcurrency 2–100 runs several), so a
// quota of 1,024 MB is 8 instances of 128 MB or 4 of 256 MB. The sizing
// rule is concurrency = QPS × average duration: 2,000 QPS × 0.02 s = 40
// instances. [PlanConcurrency] applies it.
//
//   - The account quota (per region) is 128,000 MB, 64,000 MB in the
//     smaller regions ([AccountQuotaMB], [SmallRegionQuotaMB]); set it with
//     [Client.PutTotalConcurrencyConfig], read it with [Client.GetAccount].
//     12,800 MB of it can never be reserved or provisioned
//     ([UnreservableMB]): it is kept for functions without a reservation.
//   - A reservation ([Client.PutReservedConcurrencyConfig], MB) is a hard
//     cap for one function, all its versions together, carved out of the
//     shared pool. 0 disables the function: every call fails with 432.
//     [Client.DeleteReservedConcurrencyConfig] gives it back to the pool.
//   - Provisioned concurrency ([Client.PutProvisionedConcurrencyConfig],
//     a count of instances) keeps instances of a published version warm; it
//     is never reclaimed, it does not raise the ceiling (overflow goes to
//     elastic instances), and it is applied asynchronously at 100 instances
//     per minute: [Client.WaitProvisionedConcurrencyReady] waits for Done.
//     Scheduled counts (TriggerActions) and utilization tracking are the
//     same action with other fields.
//   - Elastic scale-out starts at most 500 new instances in any 60 s per
//     account and region (a rolling minute); beyond that a call fails with
//     429 until the oldest of those starts is a minute old. The quota and
//     the burst are the region's: [RegionQuotaMB] gives each region's.
//
// # Function failures and how they reach the caller
//
// A synchronous invocation that fails is a *[FunctionError], found with
// errors.As, whose StatusCode is one of the documented status codes
// ([StatusResourceLimit] 429, [StatusResourceLimitReached] 432,
// [StatusTimeLimitReached] 433, [StatusMemoryLimitReached] 434,
// [StatusUserProcessExit] 439, [StatusQualifierNotFound] 442, …) and whose
// Class says how SCF classifies it (overrun, execution, system, request).
// The API reports these failures in two shapes, and this package (and the
// reference server scftest, which produces exactly these) reads both:
//
//  1. In the execution result. The call succeeds at the API level (HTTP
//     200, {"Response":{"Result":{…},"RequestId":…}}), and Result.ErrMsg
//     carries the JSON error body users see from SCF:
//     {"errorCode":1,"errorMessage":"Function [f] concurrency exceeded
//     reserved quota 256 MB","requestId":"<FunctionRequestId>",
//     "statusCode":432}. errorCode is -1 for a timeout and 1 otherwise;
//     RetMsg is empty and the deprecated InvokeResult is -1. Invoke reports
//     every failure this way (429, 432, 442 and all execution failures), as
//     its documented API errors include neither LimitExceeded.Quota nor
//     ResourceNotFound.Qualifier; InvokeFunction reports 429 and execution
//     failures this way.
//  2. As an API error envelope ({"Response":{"Error":{"Code",…}}}). The
//     documented InvokeFunction errors include LimitExceeded.Quota and
//     ResourceNotFound.Qualifier, so InvokeFunction reports an exhausted
//     quota (432) and an unknown version or alias (442) that way; the
//     client turns them into a *FunctionError with the same status code,
//     which unwraps to the *[APIError]. Other request errors
//     (ResourceNotFound.Function, InvalidParameterValue.…) stay plain API
//     errors.
//
// [Result.Err] is the parser. A non-empty ErrMsg is always a failure; text
// that is not the JSON body becomes the Message with StatusCode 0. RetMsg
// is read as an error body only when InvokeResult is non-zero and the body
// has a statusCode, so a function that returns error-shaped JSON is never
// mistaken for a failed one. An asynchronous invocation (InvocationType
// Event) returns only Result.FunctionRequestId; its outcome is read with
// [Client.GetRequestStatus] (RetCode -1 and the error body in RetMsg).
//
// # Calls and retries
//
// [NewClient] takes the options package car's NewClient takes (both are
// written from one template over one transport): calls are signed with
// TC3-HMAC-SHA256 and retried on throttling, 5xx and network errors. Invoke and InvokeFunction are never
// retried once they may have reached the server (a retry would run the
// function again); nor are PublishVersion and CreateFunction. They are
// retried only when the server cannot have acted: RequestLimitExceeded,
// HTTP 429, a failed dial. Retries draw on the client's retry budget
// ([WithRetryBudget]: 500 tokens, 5 a retry), so that during an outage they
// do not multiply the load on SCF. The [Invoker]'s retries of a 432 and of
// a failed idempotent execution draw on it too (an empty budget ends the
// call with its last error); its resends after a 429 do not, since its
// start budget already paces them. What is retried, the waits (those of
// the [Invoker] and [Client.WaitProvisionedConcurrencyReady] too) and the
// budget are the SDK's one retry model, described in one place, the doc
// of package github.com/tcconcurrency/sdk-go/internal/retry. The context
// bounds every call: give a synchronous Invoke a deadline above the
// function's Timeout (at most 300 s). Required fields are checked before anything is sent: a
// *[ValidationError] names the field and the rule. Numeric fields where 0
// means something (ReservedConcurrencyMem, VersionProvisionedConcurrencyNum,
// TriggerProvisionedConcurrencyNum) are always sent.
//
// # Invoker
//
// An [Invoker] runs synchronous invocations within the two limits SCF
// enforces, so that a burst neither fails nor waits for the next minute:
//
//   - Quota (432): each function's calls in flight stay under its limit,
//     the reserved quota ÷ MemorySize, or without a reservation the
//     account's unreserved share (UserConcurrencyMemLimit −
//     TotalAllocatedConcurrencyMem) ÷ MemorySize, discovered once per
//     function, or set with [WithConcurrencyLimit]. Calls beyond it wait
//     in line, first come first served.
//   - Scale-out rate (429): a start budget, shared by all the Invoker's
//     calls to all functions, allows at most [WithScaleOutRate] (default
//     500, [ScaleOutPerMinute]) calls sent as new instances in any
//     [ScaleOutWindow] (a minute and a second's margin, counted from each
//     start). A call is sent as a new instance only when the Invoker knows
//     of no warm instance for it; otherwise it waits for one of its own
//     calls to finish and free an instance, or for the oldest start to
//     leave the window, whichever comes first.
//
// The Invoker's estimate of the warm instances of a function and
// qualifier: every call that finishes (successfully, or with an execution
// error that leaves its instance up, such as user code) frees an
// instance, idle from then on, which the next waiting call takes (unless
// it was freed within [ReplyWindow] after a call went out as a new
// instance, which SCF may have given it: one instance for the two); an idle
// instance is counted on for [WithWarmRetention] (default 1 minute,
// [DefaultWarmRetention]) and then forgotten; a call that recycles its
// instance (433, 434, 439) or whose outcome is unknown frees none; a
// published version's available provisioned instances, read once with
// GetProvisionedConcurrencyConfig, are warm for good and used first. What
// the Invoker cannot see (other processes, asynchronous events, instances
// it has forgotten) it does not count: counting too few only spends
// budget that was not needed.
//
// So a burst of 1,500 ten-second calls on a fresh account runs as fast as
// SCF allows: 500 instances start at once, and each freed instance takes
// the next call, so 500 calls finish at 10 s, 20 s and 30 s, with no 429
// (p50 20 s, the floor: no client can have more than 500 × ⌊t/10 s⌋ calls
// done before the second minute's burst). Sending every call at once gets
// 1,000 × 429.
//
// A 429 still comes when the estimate counted too many (an instance SCF
// recycled early, an alias whose calls are split between two versions) or
// someone else spent the account's burst. The call then goes back to the
// head of the line, keeping its place, to wait for a warm instance or for
// the budget; the 429 closes the budget, which reopens to one probe at a
// time after a backoff (from 1 s, doubling, at most 30 s) until a probe
// gets through (no 429 within [ReplyWindow], 2 s). A 432 is retried with
// exponential backoff (1 s up to 30 s); both count towards up to 10
// attempts. The Invoker never retries 433, 434, 439 or user-code errors
// unless the call is marked Idempotent. It uses InvokeFunction by
// default: 10,000 calls per second against Invoke's 100, so a burst meets
// the function's own limits, which the Invoker absorbs, before the API's
// rate limit, which would throttle every call beyond 100 in a second.
// Asynchronous calls use Invoke (the only action that queues), return at
// once and are not counted: SCF runs them from its own queue, on the same
// burst.
//
// # Units
//
// Quotas and memory sizes are MB; provisioned concurrency is a count of
// instances; Result.MemUsage is bytes while RequestStatus.MemUsage is MB;
// durations in results are milliseconds; Timeout is seconds.
package scf
