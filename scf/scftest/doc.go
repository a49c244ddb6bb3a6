// Package scftest is an in-process SCF reference server: it speaks the
// SCF API (2018-04-16) as the real endpoint does — signature checks,
// strict JSON decoding, rate limits, error envelopes, event log, on the
// shared internal/apiserver frame — and models what concurrency depends
// on: quotas, instances, scale-out, provisioned instances, failures and the
// asynchronous queue, on a model clock a test controls.
//
//	srv := scftest.Start(t)                        // or NewServer / NewUnstartedServer
//	srv.AddFunction(scftest.FunctionConfig{Name: "hello"})
//	srv.SetHandler("hello", func(ctx context.Context, inv *scftest.Invocation) (string, error) { … })
//	c := srv.Client()                              // an *scf.Client signed for this server
//
// The model follows Tencent Cloud's SCF documents (the concurrency pages,
// and "Error Types and Retry Policies"); where they leave a behaviour open
// the rules below say which reading is modelled and why.
//
// Inside a testing/synctest bubble, serve it on internal/memnet
// (WithListener(memnet.Listen("scf"))): Client then dials through the
// listener, the running model clock follows the bubble's fake time, and a
// test of minutes takes milliseconds. WithManualClock stops the model
// clock until Advance. The official Go SDK works against it unchanged
// (internal/conformance).
//
// The frame's limits keep one client from taking the server down
// (WithLimits; see Limits and internal/apiserver): SignedHeaders capped,
// the signature hashed as a stream, everything but the signature checked
// before the body is read, bodies over 10 MB refused unread, large bodies
// sharing 64 MB, strict UTF-8 and no duplicate keys in JSON, header, read
// and idle timeouts, at most 4,096 connections. The write timeout is
// DefaultWriteTimeout (16 min, above the longest synchronous execution),
// none with the manual clock. HTTP-function requests under /http/ are
// read by the function's own rule (up to the synchronous event limit),
// not under the body budget.
//
// # Functions
//
// A function has a MemorySize, a Timeout, a Type (Event or HTTP),
// $LATEST, published versions (PublishVersion snapshots $LATEST's
// configuration) and aliases ($DEFAULT → $LATEST from creation; weights
// and "exact"/"range" rules). What an execution does comes from, in order:
// a Go Handler (SetHandler, FunctionConfig.Handler), a declarative
// Behavior, the version's SCFTEST_* environment variables (for the
// standalone server, where no Go code can be attached), or else it returns
// its event. Invoke's Qualifier defaults to $LATEST, InvokeFunction's to
// $DEFAULT. HTTP functions are not invocable through the API
// (InvalidParameterValue.FunctionType): they are reached over HTTP at
// FunctionURL, and answer with the result (200) or the error body with the
// status code as HTTP status.
//
// # The concurrency model
//
//   - Regions: the account is modelled per region, and the regions are
//     independent: each has its own quota, burst, functions, namespaces and
//     provisioning queue. X-TC-Region selects one (Client sends the
//     default region, DefaultRegion ap-guangzhou, or WithRegion's). A
//     request without a region is MissingParameter, one with a region SCF
//     does not serve UnsupportedRegion, as the API answers. The regions
//     and their quotas are the documents' table (scf.Regions,
//     scf.RegionQuotaMB): 128,000 MB in ap-guangzhou, ap-shanghai,
//     ap-beijing, ap-chengdu, ap-hongkong; 64,000 MB in ap-mumbai,
//     ap-singapore, ap-tokyo, na-toronto, na-siliconvalley, eu-frankfurt,
//     ap-shenzhen-fsi, ap-shanghai-fsi. WithAccountQuota sets the default
//     region's quota, WithRegionQuota any region's. Server-side helpers
//     name a function "name", "namespace/name" (the default region) or
//     "region/namespace/name"; HTTP functions of another region are under
//     /regions/<region>/http/.
//   - Quota: PutTotalConcurrencyConfig lowers a region's quota. What is
//     allocated — reservations, and the provisioned memory of functions
//     without one — may not exceed the quota − 12,800 MB. A function with
//     a reservation may use exactly its reservation; the others share the
//     quota − Σ reservations. An instance holds its memory (its
//     MemorySize, once, however many requests it runs) while it runs at
//     least one request, and always when it is provisioned; an idle
//     elastic instance holds nothing.
//   - Placement: a request of a version takes a provisioned instance of
//     that version with room, else a warm elastic one (busy ones with room
//     first, to fill multi-concurrency instances, then the most recently
//     used idle one), else a new elastic instance. The quota is checked
//     whichever it finds: a provisioned or busy instance already holds its
//     memory and takes the request; an idle warm instance or a new one
//     needs its MemorySize of headroom, or the request gets 432. So warm
//     instances never run more than the quota allows: after the quota is
//     lowered below what runs, the requests running go on and new ones get
//     432 until the usage is under the quota. Reserved 0 makes every call
//     432; deleting the reservation returns the function to the shared
//     pool. The quota is checked before the burst.
//   - Burst: a new elastic instance may start while fewer than 500
//     (WithScaleOutRate) started in the region in the last 60 s — a rolling
//     minute, not the clock's: a burst that starts at 12:00:50 gets 500
//     instances, the 501st at 12:01:50 at the earliest, and 1,000 by the
//     end of its second minute. Beyond it, 429, whose message says when the
//     next may start. Warm and provisioned instances need no burst.
//   - Cold start: a new elastic instance takes DefaultColdStart (1 s of
//     model time; WithColdStart for the server, FunctionConfig.ColdStart or
//     the SCFTEST_COLD_START variable for a function's version) before it
//     runs its first request; warm and provisioned instances start
//     requests at once. The documents say new instances "need to be
//     initialized" and bound that by InitTimeout without a typical time;
//     1 s is a round figure inside the bound and large beside a warm
//     request, so what provisioned concurrency saves shows. It is not run
//     time: Result.Duration and the time limit leave it out.
//   - Retention: an idle elastic instance is kept for
//     DefaultIdleRetention (10 minutes; WithIdleRetention) and then
//     recycled. SCF's own retention is dynamic and undocumented.
//   - Provisioned concurrency: published versions only ($LATEST and aliases
//     are rejected). Instances start at 100 per minute per region
//     (WithProvisionRate), in batches: the first batch one minute after
//     the Put, the next a minute later, so 250 instances are 100, 200, then
//     250 available, Done after three minutes. The docs say instances
//     "start at once up to the target" at 100 per minute; the model reads
//     the rate as a count per minute whose batch is ready when its minute
//     has passed, initialization included (so provisioned instances pay no
//     cold start), and the documents give the first batch no faster path.
//     Status is InProgress until the target is reached, Done then, Failed
//     (with StatusReason) when the quota cannot hold the next instance. A
//     Put or Delete while InProgress is
//     FailedOperation.ProvisionedInProgress. Provisioned instances are
//     never reclaimed; one lost to a failure is replaced at once. Lowering
//     or deleting the target turns the surplus into elastic instances
//     (idle ones first), which the retention then recycles. TriggerActions
//     fire on 7-field cron expressions in China Standard Time. Utilization
//     tracking evaluates every 10 s: target = ⌈requests in flight ÷
//     TrackingTarget⌉ within [MinCapacity, MaxCapacity], scale-out at
//     once, scale-in 10 minutes after the last change.
//   - Concurrency per instance: one request, except HTTP functions with
//     MaxConcurrency 2–100 (the custom mode's range). MaxConcurrency 1 is
//     accepted, as the API's range is 1–100, and means what 0 and no
//     InstanceConcurrencyConfig mean: one request per instance,
//     multi-concurrency off (GetFunction then shows none). Every request of
//     an HTTP function carries X-Scf-Request-Id (Invocation.Header, =
//     Invocation.RequestID), and so does its response.
//   - Memory per instance: the requests in flight on one instance share
//     its MemorySize. Each reports what it uses (Invocation.ReportMemory,
//     Behavior.MemoryBytes, SCFTEST_MEMORY); when the sum over the
//     instance's requests in flight exceeds MemorySize the instance runs
//     out of memory: it is recycled and every request in flight on it
//     fails with 434 MemoryLimitReached. Three requests of 50 MB on one
//     128 MB instance all fail; two succeed. A request that ends gives its
//     memory back.
//   - Failures: a timeout (433, "Invoking task timed out after N
//     seconds") aborts only its request, and recycles a single-request
//     instance; an out-of-memory (434) and a process exit (439, or a
//     panic) recycle the instance and abort every request in flight on it
//     with the same status. A synchronous API invocation is limited to
//     min(Timeout, 300 s).
//   - Asynchronous queue: per function, FIFO, at most 100,000 events
//     (WithAsyncQueueLimit; beyond it Invoke fails with
//     FailedOperation.InvokeFunction). The queue is consumed at the pace
//     of the function's limits: when the head event can get no instance
//     while the function has executions in flight, it waits for the next
//     of them to end, with no 432 and no retry counted — the concurrency
//     document has async events taken "in sequence" by pulling
//     "sufficient concurrent instances", so ten one-second events on a
//     function capped at one instance take ten seconds (plus one cold
//     start), not nine minutes. When nothing of its own is in flight
//     (reserved 0, a shared pool others hold, a burst others used), the
//     event meets the overrun (429, 432), and the queue pauses and retries
//     it a minute later, the documented fixed interval for overruns, until
//     the event's MsgTTL (6 h) passes. Execution errors are retried
//     RetryNum times (2), one minute apart, each retry queued behind the
//     events that arrived meanwhile, then dropped; system errors (500)
//     with exponential backoff from 1 s up to 5 minutes until MsgTTL;
//     request errors (442, …) are dropped at once. RetryNum and MsgTTL are
//     set with UpdateFunctionEventInvokeConfig.
//   - Instants: the model does not order events that fall on the same
//     instant. A request that arrives at the instant another ends may find
//     that request's instance still busy and start another, so a steady 40
//     in flight (2,000 QPS × 20 ms) can take 41 instances. The model keeps
//     that rather than pick an order the documents do not give:
//     concurrency = QPS × duration is an average, and in SCF too an
//     instance is free only once its response is out.
//   - Rate limits, per second of host time and per server (not per
//     region): 20 for the reserved, provisioned and total concurrency
//     actions, 100 for Invoke, 10,000 for InvokeFunction (WithRateLimit,
//     WithoutRateLimits, Server.SetRateLimit).
//
// # How the server is built: a model behind the API
//
// As in cartest, the state lives in one model, and the API is a thin
// layer in front of it. The model holds each region's account (quota,
// burst window, provisioning queue) and its functions, versions, aliases
// and instances, the asynchronous queues, the executions in flight, the
// request records GetRequestStatus reads, and the counters. It has no lock
// and knows no wire type: the Server has one mutex, and everything that
// reads or changes the model holds it — the API handlers, the server-side
// helpers (AddFunction, Instances, Counters…), the executions and the
// timers.
//
// The API is one file per resource family (functions, aliases, reserved
// and total quota, provisioned concurrency, invocation, asynchronous
// retry settings). A handler decodes the body strictly, checks what needs
// no state (required fields in the order the API checks them, then the
// values), takes the lock, finds the function the request names in its
// region, and calls the model; the request and response shapes are
// wire.go's, translated at that boundary. A request the model refuses
// changes nothing: it checks before it changes.
//
// The model keeps time through the server: its timers (idle retention,
// the provisioning minute, scheduled and tracking provisioning, queue
// pauses and retries, execution time limits) fire on the model clock and
// run under the mutex, so a timer and a request never interleave. A
// synchronous execution runs its handler on the goroutine serving its
// request (no hand-off to another goroutine), an asynchronous one on a
// goroutine of its own that the server owns; an execution ends exactly
// once (its handler's return, its time limit, an out-of-memory on its
// instance or Close, whichever comes first; later outcomes are ignored,
// and an aborted handler's context ends). Close ends every execution in
// flight with 500, stops the queues and provisioning, cancels the
// handlers' contexts and waits for their goroutines.
//
// # Wire shapes of failures
//
// A failed execution is an HTTP 200 success envelope whose Result has an
// empty RetMsg, InvokeResult -1 and ErrMsg
// {"errorCode":1,"errorMessage":"…","requestId":"<FunctionRequestId>",
// "statusCode":432} (errorCode -1 for a timeout). Invoke reports 429, 432
// and 442 that way too; InvokeFunction reports 432 as the API error
// LimitExceeded.Quota and 442 as ResourceNotFound.Qualifier, following the
// error lists of the two actions. GetRequestStatus reports an execution
// with RetCode 0 (succeeded), 1 (queued, running or waiting for a retry)
// or -1 (failed, the error body in RetMsg), its Duration in ms and its
// MemUsage in MB.
//
// # Inspection and control
//
// Counters (executions, outcomes by status, instances started and stopped,
// overruns, asynchronous retries and drops), Instances (per function and
// version, with State busy, idle or provisioned), QueueLength, Events (the
// event log, with the model time), InjectFault (API-level faults),
// Advance and Now (the model clock), Clock (for scf.WithInvokerClock and
// scf.WithWaitClock).
//
// # The shell
//
// What the reference servers share is written once, in internal/apiserver's
// Host, so scftest and cartest behave alike there:
//
//   - Start(t), NewServer and NewUnstartedServer, then Server.Start and
//     Server.Close: on 127.0.0.1:0 unless WithListener. Close works in
//     one order: the server takes no more work and fails the executions in
//     flight with 500, its context ends (injected latencies are cut
//     short), the listener and the calls in progress close, then the
//     client transport and the clock. It waits for everything the server
//     started and may be called again.
//   - One client transport per server: Client and HTTPClient share it, and
//     Close closes its connections, so a test need not close a client's
//     idle connections itself.
//   - Credentials, random by default ("AKID" and 32 letters and digits, a
//     32-character key, new for every server): WithCredentials and
//     WithTemporaryCredentials let given pairs in, and the first one given
//     is the one Credentials returns and Client signs with; AddCredential
//     lets one more in while the server runs. A credential prints
//     redacted. (The fixed SecretID and SecretKey of earlier versions are
//     accepted only when given, and WithCredential is the old spelling.)
//   - Faults (InjectFault with the one Fault type, cartest.Fault being the
//     same), the event log (Events), rate limits per second of host time
//     (WithRateLimit, WithoutRateLimits, SetRateLimit), Limits, WithLogger
//     (silent by default) and the model clock (WithManualClock, Advance,
//     Now).
//
// # Where the model departs from SCF
//
// Configuration changes apply at once (SCF runs them as jobs, hence its
// …InProgress errors for reserved and total quotas). Functions are Active
// as soon as they are created; namespaces exist as soon as a function is
// created in one (at most 5); ListFunctions' Filters are not modelled
// (UnsupportedOperation). BillDuration is the duration rounded up to 1 ms.
// GetAccount's ConcurrentExecutions is the quota in 128 MB instances, and
// its trigger limits are placeholders.
// DynamicEnabled TRUE is accepted and modelled as a static MaxConcurrency. The model
// departs from SCF wherever SCF is not deterministic (retention, instance
// choice, timing); its API may change in minor versions.
package scftest
