package car

import (
	"fmt"
	"log/slog"
	"strconv"
)

// A ServerSession and a heartbeat token let whoever holds them act as the
// user's client, so the values that carry them print redacted: in every
// fmt verb and in slog. Encoding them as JSON (to hand them to the
// client) is unaffected.

// redacted describes a secret without showing it.
func redacted(secret string) string {
	if secret == "" {
		return `""`
	}
	return "[redacted, " + strconv.Itoa(len(secret)) + " bytes]"
}

// Format prints the output with its ServerSession redacted.
func (o CreateSessionOutput) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "car.CreateSessionOutput{ServerSession: %s, RequestId: %q}", redacted(o.ServerSession), o.RequestId)
}

// LogValue logs the output with its ServerSession redacted.
func (o CreateSessionOutput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("ServerSession", redacted(o.ServerSession)), slog.String("RequestId", o.RequestId))
}

// Format prints the lease with its HeartbeatToken and ServerSession
// redacted.
func (l Lease) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "car.Lease{UserId: %q, HeartbeatSession: %q, HeartbeatToken: %s, ServerSession: %s, QueuePosition: %d}",
		l.UserId, l.HeartbeatSession, redacted(l.HeartbeatToken), redacted(l.ServerSession), l.QueuePosition)
}

// LogValue logs the lease with its HeartbeatToken and ServerSession
// redacted.
func (l Lease) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("UserId", l.UserId), slog.String("HeartbeatSession", l.HeartbeatSession),
		slog.String("HeartbeatToken", redacted(l.HeartbeatToken)), slog.String("ServerSession", redacted(l.ServerSession)),
		slog.Int("QueuePosition", l.QueuePosition),
	)
}

// Format prints the record with its ServerSession and ClientSession
// redacted.
func (r LeaseRecord) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "car.LeaseRecord{UserId: %q, Generation: %d, State: %v, Owner: %q, Holder: %q, HoldLeft: %v, Applied: %v, Ticket: %d, Reason: %q, ClientSession: %s, ServerSession: %s}",
		r.UserId, r.Generation, r.State, r.Owner, r.Holder, r.HoldLeft, r.Applied, r.Ticket, r.Reason, redacted(r.Request.ClientSession), redacted(r.ServerSession))
}

// LogValue logs the record with its secrets redacted.
func (r LeaseRecord) LogValue() slog.Value {
	return slog.GroupValue(slog.String("UserId", r.UserId), slog.Uint64("Generation", r.Generation),
		slog.String("State", r.State.String()), slog.String("Owner", r.Owner), slog.String("Holder", r.Holder),
		slog.String("ServerSession", redacted(r.ServerSession)))
}
