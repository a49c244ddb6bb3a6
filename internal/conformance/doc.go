// Package conformance drives the reference servers with the official
// Tencent Cloud Go SDK (tencentcloud-sdk-go common v1.3.209 and scf
// v1.3.101), to prove they accept its requests unchanged and that it parses
// every response and error they send. It is a module of its own so that
// users of the SDK never download the official one.
//
// Run it with: cd internal/conformance && go test ./...
package conformance
