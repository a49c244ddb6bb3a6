// Package car is a client for Tencent Cloud CAR (Cloud Application
// Rendering), API version 2022-01-10.
//
// A CAR concurrency serves one user at a time. The backend locks one for a
// user with [Client.ApplyConcurrent], starts the application on it with
// [Client.CreateSession], whose ServerSession goes to the user's browser
// (TCGSDK.start), and releases it with [Client.DestroySession]. A user
// whose client vanishes without DestroySession keeps the concurrency for
// the project's reconnect wait (90 s by default), and the same UserId
// coming back within it gets the same concurrency again.
//
// Calls are signed with TC3-HMAC-SHA256, retried on throttling
// (RequestLimitExceeded arrives as an HTTP 200 error envelope), HTTP 429
// and 5xx and network errors, since every CAR action is safe to repeat, and
// every wait ends with the context. Failures are *[APIError] values (the
// same type package scf returns); codes are constants such as [CodeNoIdle].
// Required fields are checked before anything is sent: a *[ValidationError]
// names the field and the rule.
//
// Package car/cartest is a CAR reference server for tests.
package car
