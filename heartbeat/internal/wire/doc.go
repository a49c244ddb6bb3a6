// Package wire holds what the heartbeat Server (package heartbeat) and its
// Go client (package heartbeat/hbclient) both need below their public
// surface: the callback mailbox and the checks and quoting of peer text.
// Rules come back as text; each side wraps them in its
// *heartbeat.ValidationError.
package wire
