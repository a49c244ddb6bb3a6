package heartbeat

import "context"

// Touch records user activity for session id, as an activity frame from
// its client does: the idle count starts again from now. The CAR session
// manager calls it when a queued user gets a concurrency, so time spent
// waiting in the queue does not count as idle time. It fails with
// ErrUnknownSession if there is no session id. With a Store it waits for
// the store when the client is not connected to this replica (see Open for
// ctx).
func (s *Server) Touch(ctx context.Context, id string) error {
	if err := ctxDone(ctx, "touch"); err != nil {
		return err
	}
	return s.touchShared(ctx, id)
}
