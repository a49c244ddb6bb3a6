package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tcconcurrency/sdk-go/heartbeat"
)

// Bus message kinds of the heartbeat sessions.
const (
	kindReplaced = "hb.replaced"
	kindNotice   = "hb.notice"
	kindRelease  = "hb.release"
	kindTouch    = "hb.touch"
)

// maxKeptNotices matches the heartbeat Server's limit of undelivered
// notices per session.
const maxKeptNotices = 16

// sessionStore is the heartbeat.Store of one replica (Store.Sessions).
type sessionStore struct {
	s        *Store
	ownerTTL time.Duration

	mu   sync.Mutex
	boot string // the data mark last seen in Redis; "" before the first
}

// Sessions returns this replica's heartbeat session store, for
// heartbeat.WithStore (one heartbeat.Server per Store). Every call returns
// the same value.
func (s *Store) Sessions() heartbeat.Store {
	s.hbOnce.Do(func() { s.hb = &sessionStore{s: s, ownerTTL: heartbeat.StoreOwnerTTL} })
	return s.hb
}

func (k keys) hbSession(id string) string { return k.key("hb", "s", id) }
func (k keys) hbNoticeList(id string) string {
	return k.key("hb", "nl", id)
}
func (k keys) hbNotices(id string) string { return k.key("hb", "nh", id) }
func (k keys) hbDue() string              { return k.key("hb", "due") }
func (k keys) hbBoot() string             { return k.key("hb", "boot") }
func (k keys) hbSwept() string            { return k.key("hb", "swept") }
func (k keys) hbHold() string             { return k.key("hb", "hold") }

// storeErr wraps a Redis failure as the heartbeat package's typed error.
func storeErr(op string, err error) error {
	return &heartbeat.StoreError{Op: op, Err: fmt.Errorf("redisstore: %w", err)}
}

func newBoot() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (h *sessionStore) Replica() string { return h.s.replica }

func (h *sessionStore) Listen(deliver func(heartbeat.StoreMessage)) (stop func()) {
	s := h.s
	s.handle(kindReplaced, func(m message) {
		deliver(heartbeat.StoreMessage{Kind: heartbeat.MessageReplaced, Session: m.Session, Epoch: m.Gen})
	})
	s.handle(kindNotice, func(m message) {
		deliver(heartbeat.StoreMessage{Kind: heartbeat.MessageNotice, Session: m.Session, Epoch: m.Gen, Key: m.Text, Frame: m.Data})
	})
	s.handle(kindRelease, func(m message) {
		deliver(heartbeat.StoreMessage{Kind: heartbeat.MessageRelease, Session: m.Session, Reason: m.Text})
	})
	s.handle(kindTouch, func(m message) {
		deliver(heartbeat.StoreMessage{Kind: heartbeat.MessageTouch, Session: m.Session, ActivityAge: max(0, time.Duration(m.Age)*time.Millisecond)})
	})
	return func() {
		for _, k := range []string{kindReplaced, kindNotice, kindRelease, kindTouch} {
			s.handle(k, nil)
		}
	}
}

// tell publishes msg to replica and reports how many subscribers got it.
func (h *sessionStore) tell(ctx context.Context, replica string, msg message) (int64, error) {
	msg.From = h.s.replica
	b, err := encodeMessage(msg)
	if err != nil {
		return 0, err
	}
	return h.s.publishRaw(ctx, h.s.keys.node(replica), b)
}

func (h *sessionStore) Open(ctx context.Context, id, join string, t heartbeat.Timing) error {
	k := h.s.keys
	err := scriptOpen.Run(ctx, h.s.client, []string{k.hbSession(id), k.hbDue(), k.hbBoot()},
		id, join, ms(t.Window), ms(t.Idle), newBoot()).Err()
	if err != nil {
		return storeErr("open", err)
	}
	return nil
}

func (h *sessionStore) Claim(ctx context.Context, id, used, resume string) (heartbeat.Claim, error) {
	k := h.s.keys
	v, err := scriptClaim.Run(ctx, h.s.client,
		[]string{k.hbSession(id), k.hbDue(), k.hbNoticeList(id), k.hbNotices(id), k.hbBoot(), k.hbSwept()},
		id, used, resume, h.s.replica, ms(h.ownerTTL), newBoot()).Result()
	if err != nil {
		return heartbeat.Claim{}, storeErr("claim", err)
	}
	f, err := replyStrings(v)
	if err != nil {
		return heartbeat.Claim{}, storeErr("claim", err)
	}
	cl, boot, err := parseClaim(f)
	if err != nil {
		return heartbeat.Claim{}, err
	}
	h.seeBoot(boot)
	if cl.PrevOwner != "" && cl.PrevOwner != h.s.replica {
		n, err := h.tell(ctx, cl.PrevOwner, message{Kind: kindReplaced, Session: id, Gen: cl.PrevEpoch})
		if err != nil {
			// Its next refresh learns it (HeldReplaced).
			h.s.logger.Warn("redisstore: telling the previous owner of a session that it was replaced", "session", id, "replica", cl.PrevOwner, "err", err)
		}
		cl.PrevGone = err == nil && n == 0 // nobody subscribed: that replica is gone

	}
	return cl, nil
}

func (h *sessionStore) seeBoot(b string) {
	if b == "" {
		return
	}
	h.mu.Lock()
	if h.boot == "" {
		h.boot = b
	}
	h.mu.Unlock()
}

func (h *sessionStore) Detach(ctx context.Context, id string, d heartbeat.Detach) error {
	k := h.s.keys
	revoke, known := "0", "0"
	if d.Revoke {
		revoke = "1"
	}
	if d.ActivityKnown {
		known = "1"
	}
	v, err := scriptDetach.Run(ctx, h.s.client, []string{k.hbSession(id), k.hbDue()},
		id, h.s.replica, strconv.FormatUint(d.Epoch, 10), ms(d.LastSeenAge), ms(d.Grace), ms(d.ActivityAge), d.IdleTimes, revoke, known).Result()
	if err != nil {
		return storeErr("detach", err)
	}
	f, err := replyStrings(v)
	if err != nil {
		return storeErr("detach", err)
	}
	switch {
	case len(f) == 1 && f[0] == "ok":
		return nil
	case len(f) == 2 && f[0] == "touch":
		// Replaced: the old connection's later activity goes to the
		// replica holding the new one.
		if owner := f[1]; owner != "" {
			if _, err := h.tell(ctx, owner, message{Kind: kindTouch, Session: id, Age: ms(d.ActivityAge)}); err != nil {
				return storeErr("detach", err)
			}
		}
		return nil
	}
	return badReply("detach", f)
}

func (h *sessionStore) Refresh(ctx context.Context, held []heartbeat.Held) (heartbeat.RefreshResult, error) {
	k := h.s.keys
	h.mu.Lock()
	known := h.boot
	h.mu.Unlock()
	keys := make([]string, 0, 2+len(held))
	keys = append(keys, k.hbDue(), k.hbBoot())
	args := make([]any, 0, 4+8*len(held))
	args = append(args, h.s.replica, ms(h.ownerTTL), known, newBoot())
	for _, x := range held {
		keys = append(keys, k.hbSession(x.Session))
		args = append(args, x.Session, strconv.FormatUint(x.Epoch, 10), x.Resume, ms(x.LastSeenAge), ms(x.ActivityAge), x.IdleTimes, ms(x.Timing.Window), ms(x.Timing.Idle))
	}
	v, err := scriptRefresh.Run(ctx, h.s.client, keys, args...).Result()
	if err != nil {
		return heartbeat.RefreshResult{}, storeErr("refresh", err)
	}
	f, err := replyStrings(v)
	if err != nil {
		return heartbeat.RefreshResult{}, storeErr("refresh", err)
	}
	boot, res, err := parseRefresh(f, len(held))
	if err != nil {
		return heartbeat.RefreshResult{}, err
	}
	h.mu.Lock()
	h.boot = boot
	h.mu.Unlock()
	if res.Rebuilt {
		h.s.logger.Error("redisstore: Redis lost the heartbeat sessions (restarted empty?); rebuilt the ones connected to this replica", "rebuilt", len(held))
	}
	return res, nil
}

func (h *sessionStore) ReportIdle(ctx context.Context, id string, epoch uint64, activityAge time.Duration, times int) (bool, error) {
	v, err := scriptReportIdle.Run(ctx, h.s.client, []string{h.s.keys.hbSession(id)},
		h.s.replica, strconv.FormatUint(epoch, 10), ms(activityAge), times).Int()
	if err != nil {
		return false, storeErr("report idle", err)
	}
	return v == 1, nil
}

func (h *sessionStore) Touch(ctx context.Context, id string) error {
	k := h.s.keys
	v, err := scriptTouch.Run(ctx, h.s.client, []string{k.hbSession(id), k.hbDue()}, id).Result()
	if err != nil {
		return storeErr("touch", err)
	}
	f, err := replyStrings(v)
	if err != nil {
		return storeErr("touch", err)
	}
	switch {
	case len(f) == 1 && f[0] == "unknown":
		return heartbeat.ErrUnknownSession
	case len(f) == 3 && f[0] == "ok":
		if owner := f[1]; owner != "" {
			if _, err := h.tell(ctx, owner, message{Kind: kindTouch, Session: id}); err != nil {
				return storeErr("touch", err)
			}
		}
		return nil
	}
	return badReply("touch", f)
}

// notifyRoutes bounds how many times one Notify routes a notice: each
// route after the first follows a claim made meanwhile.
const notifyRoutes = 8

func (h *sessionStore) Notify(ctx context.Context, id, key string, frame []byte) error {
	k := h.s.keys
	keys := []string{k.hbSession(id), k.hbNoticeList(id), k.hbNotices(id)}
	// Route or keep is decided in the script, one step with Claim's: the
	// notice is kept only while the connection it was routed to, whose
	// replica nobody listens for, is still the session's, so never after
	// a claim took the kept notices.
	goneOwner, goneEpoch := "", "0"
	for range notifyRoutes {
		v, err := scriptNotify.Run(ctx, h.s.client, keys, key, frame, maxKeptNotices, goneOwner, goneEpoch).Result()
		if err != nil {
			return storeErr("notify", err)
		}
		f, err := replyStrings(v)
		if err != nil {
			return storeErr("notify", err)
		}
		switch {
		case len(f) == 1 && f[0] == "unknown":
			return heartbeat.ErrUnknownSession
		case len(f) == 1 && f[0] == "full":
			return heartbeat.ErrTooManyNotices
		case len(f) == 1 && f[0] == "kept":
			return nil
		case len(f) == 3 && f[0] == "route":
			epoch, err := strconv.ParseUint(f[2], 10, 64)
			if err != nil {
				return badReply("notify", f)
			}
			n, err := h.tell(ctx, f[1], message{Kind: kindNotice, Session: id, Gen: epoch, Text: key, Data: frame})
			if err != nil {
				return storeErr("notify", err)
			}
			if n > 0 {
				return nil
			}
			goneOwner, goneEpoch = f[1], f[2] // nobody listens on the owner's channel: it is gone
		default:
			return badReply("notify", f)
		}
	}
	return storeErr("notify", fmt.Errorf("redisstore: session %q changed owner %d times while its notice was routed", id, notifyRoutes))
}

func (h *sessionStore) End(ctx context.Context, id, reason string) error {
	k := h.s.keys
	v, err := scriptEnd.Run(ctx, h.s.client, []string{k.hbSession(id), k.hbDue(), k.hbNoticeList(id), k.hbNotices(id)}, id).Result()
	if err != nil {
		return storeErr("end", err)
	}
	f, err := replyStrings(v)
	if err != nil {
		return storeErr("end", err)
	}
	switch {
	case len(f) == 1 && f[0] == "unknown":
		return heartbeat.ErrUnknownSession
	case len(f) == 2:
		if f[0] == "c" && f[1] != "" && f[1] != h.s.replica {
			if _, err := h.tell(ctx, f[1], message{Kind: kindRelease, Session: id, Text: reason}); err != nil {
				// Its next refresh finds the session gone (HeldGone) and
				// closes the connection.
				h.s.logger.Warn("redisstore: telling the owner of a released session", "session", id, "replica", f[1], "err", err)
			}
		}
		return nil
	}
	return badReply("end", f)
}

func (h *sessionStore) Sweep(ctx context.Context, limit int) ([]heartbeat.Due, error) {
	k := h.s.keys
	ids, err := scriptSweepDue.Run(ctx, h.s.client, []string{k.hbDue(), k.hbSwept(), k.hbHold()}, limit, ms(h.ownerTTL)).StringSlice()
	if err != nil {
		return nil, storeErr("sweep", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, 2+3*len(ids))
	keys = append(keys, k.hbDue(), k.hbHold())
	args := make([]any, 0, 2+len(ids))
	args = append(args, ms(h.ownerTTL), limit)
	for _, id := range ids {
		keys = append(keys, k.hbSession(id), k.hbNoticeList(id), k.hbNotices(id))
		args = append(args, id)
	}
	v, err := scriptSweepTake.Run(ctx, h.s.client, keys, args...).Result()
	if err != nil {
		return nil, storeErr("sweep", err)
	}
	f, err := replyStrings(v)
	if err != nil {
		return nil, storeErr("sweep", err)
	}
	return parseDue(f)
}

// The replies' parsers. They check every field: a reply that does not
// parse is an error naming the script, never a panic or a made-up value.

// replyError reports a script reply that does not have the expected shape.
type replyError struct {
	script string
	detail string
}

func (e *replyError) Error() string {
	return "redisstore: unexpected reply of the " + e.script + " script: " + e.detail
}

func badReply(script string, f []string) error {
	return &replyError{script, strconv.Itoa(len(f)) + " fields"}
}

// replyStrings turns a script's array reply into strings (integers are
// formatted in decimal).
func replyStrings(v any) ([]string, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, errors.New("script reply is not an array")
	}
	out := make([]string, len(a))
	for i, x := range a {
		switch x := x.(type) {
		case string:
			out[i] = x
		case int64:
			out[i] = strconv.FormatInt(x, 10)
		default:
			return nil, fmt.Errorf("field %d of the script reply is a %T", i, x)
		}
	}
	return out, nil
}

func parseInt(script, field, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, &replyError{script, field + " is not an integer"}
	}
	return n, nil
}

// msAge parses a non-negative count of milliseconds.
func msAge(script, field, s string) (time.Duration, error) {
	n, err := parseInt(script, field, s)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(30*24*time.Hour/time.Millisecond) {
		return 0, &replyError{script, field + " out of range"}
	}
	return time.Duration(n) * time.Millisecond, nil
}

func parseClaim(f []string) (cl heartbeat.Claim, boot string, err error) {
	switch {
	case len(f) == 1 && f[0] == "unknown":
		return cl, "", heartbeat.ErrUnknownSession
	case len(f) == 1 && f[0] == "used":
		return cl, "", heartbeat.ErrTokenUsed
	case len(f) < 10 || f[0] != "ok":
		return cl, "", badReply("claim", f)
	}
	boot = f[1]
	cl.Resumed = f[2] == "1"
	epoch, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil || epoch == 0 {
		return cl, "", &replyError{"claim", "bad epoch"}
	}
	cl.Epoch = epoch
	cl.PrevOwner = f[4]
	if cl.PrevEpoch, err = strconv.ParseUint(f[5], 10, 64); err != nil {
		return cl, "", &replyError{"claim", "bad previous epoch"}
	}
	if cl.ActivityAge, err = msAge("claim", "activity age", f[6]); err != nil {
		return cl, "", err
	}
	times, err := parseInt("claim", "idle times", f[7])
	if err != nil || times < 0 || times > 1<<31 {
		return cl, "", &replyError{"claim", "bad idle times"}
	}
	cl.IdleTimes = int(times)
	if cl.Timing.Window, err = msAge("claim", "window", f[8]); err != nil {
		return cl, "", err
	}
	if cl.Timing.Idle, err = msAge("claim", "idle threshold", f[9]); err != nil {
		return cl, "", err
	}
	for _, frame := range f[10:] {
		cl.Notices = append(cl.Notices, []byte(frame))
	}
	return cl, boot, nil
}

func parseRefresh(f []string, n int) (boot string, res heartbeat.RefreshResult, err error) {
	if len(f) != 2+n || f[0] == "" {
		return "", res, badReply("refresh", f)
	}
	boot = f[0]
	res.Rebuilt = f[1] == "1"
	res.Status = make([]heartbeat.HeldStatus, n)
	for i, s := range f[2:] {
		switch s {
		case "0":
			res.Status[i] = heartbeat.HeldOK
		case "1":
			res.Status[i] = heartbeat.HeldRevived
		case "2":
			res.Status[i] = heartbeat.HeldGone
		case "3":
			res.Status[i] = heartbeat.HeldReplaced
		default:
			return "", heartbeat.RefreshResult{}, &replyError{"refresh", "unknown status " + strconv.Quote(s)}
		}
	}
	return boot, res, nil
}

func parseDue(f []string) ([]heartbeat.Due, error) {
	if len(f)%5 != 0 {
		return nil, badReply("sweep", f)
	}
	out := make([]heartbeat.Due, 0, len(f)/5)
	for i := 0; i < len(f); i += 5 {
		id := f[i+1]
		if id == "" {
			return nil, &replyError{"sweep", "empty session id"}
		}
		at, err := parseInt("sweep", "at", f[i+2])
		if err != nil {
			return nil, err
		}
		x, err := parseInt("sweep", "field 4", f[i+3])
		if err != nil {
			return nil, err
		}
		y, err := parseInt("sweep", "field 5", f[i+4])
		if err != nil {
			return nil, err
		}
		d := heartbeat.Due{Session: id, At: time.UnixMilli(at)}
		switch f[i] {
		case "idle":
			if x < 1 || x > 1<<31 {
				return nil, &replyError{"sweep", "bad idle times"}
			}
			d.Kind, d.Times = heartbeat.DueIdle, int(x)
		case "lost":
			d.Kind, d.LastSeen, d.ExpiresAt = heartbeat.DueLost, time.UnixMilli(x), time.UnixMilli(y)
		case "expired":
			d.Kind = heartbeat.DueExpired
		default:
			return nil, &replyError{"sweep", "unknown deadline kind " + strconv.Quote(f[i])}
		}
		out = append(out, d)
	}
	return out, nil
}

var _ heartbeat.Store = (*sessionStore)(nil)
