package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// debugLog keeps every record of the replicas, for TCC_CHURN_DEBUG=1.
type debugLog struct {
	mu   sync.Mutex
	recs []string
}

type debugHandler struct {
	d     *debugLog
	attrs []slog.Attr
}

func (h *debugHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *debugHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %q", r.Time.Format(time.TimeOnly+".000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	h.d.mu.Lock()
	h.d.recs = append(h.d.recs, b.String())
	h.d.mu.Unlock()
	return nil
}
func (h *debugHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &debugHandler{d: h.d, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *debugHandler) WithGroup(string) slog.Handler { return h }

func (d *debugLog) logger(replica string) *slog.Logger {
	return slog.New(&debugHandler{d: d}).With("replica", replica)
}

// grep returns the records that contain s, with the replicas' kills and
// restarts among them.
func (d *debugLog) grep(s string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, r := range d.recs {
		if strings.Contains(r, s) || strings.Contains(r, `"test: kill"`) || strings.Contains(r, `"test: up"`) {
			out = append(out, r)
		}
	}
	return out
}

func debugOn() bool { return os.Getenv("TCC_CHURN_DEBUG") == "1" }

// churnSeed is TCC_CHURN_SEED, or def.
func churnSeed(def uint64) uint64 {
	if n, err := strconv.ParseUint(os.Getenv("TCC_CHURN_SEED"), 10, 64); err == nil {
		return n
	}
	return def
}
