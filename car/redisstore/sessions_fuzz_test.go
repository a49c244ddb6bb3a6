package redisstore

import (
	"bytes"
	"testing"
)

// The parsers of the session scripts' replies read bytes that come from
// Redis. Whatever they get, they return a value or an error, never panic,
// and what they return is well-formed.
func FuzzSessionReplies(f *testing.F) {
	f.Add([]byte("ok\x00boot\x001\x002\x00r1\x001\x001500\x000\x0060000\x00300000\x00{\"type\":\"queue\"}"))
	f.Add([]byte("idle\x00u1\x001764590400000\x002\x000\x00lost\x00u2\x001764590400000\x001764590390000\x001764590460000"))
	f.Add([]byte("expired\x00u1\x001764590400000\x000\x000"))
	f.Add([]byte("b\x001\x000\x001\x002\x003"))
	f.Add([]byte("unknown"))
	f.Add([]byte("ok\x00\x001\x00-1\x00\x00x\x00-5\x00-1\x00x\x00y"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fields []string
		for _, p := range bytes.Split(data, []byte{0}) {
			fields = append(fields, string(p))
		}
		if cl, _, err := parseClaim(fields); err == nil {
			if cl.Epoch == 0 || cl.ActivityAge < 0 || cl.IdleTimes < 0 || cl.Timing.Window < 0 || cl.Timing.Idle < 0 {
				t.Fatalf("parseClaim accepted %q as %+v", fields, cl)
			}
		}
		for n := 0; n <= len(fields); n++ {
			if _, res, err := parseRefresh(fields, n); err == nil && len(res.Status) != n {
				t.Fatalf("parseRefresh(%q, %d): %d statuses", fields, n, len(res.Status))
			}
		}
		if due, err := parseDue(fields); err == nil {
			if len(due) != len(fields)/5 {
				t.Fatalf("parseDue(%q): %d deadlines", fields, len(due))
			}
			for _, d := range due {
				if d.Session == "" || d.Kind == 0 {
					t.Fatalf("parseDue(%q) gave %+v", fields, d)
				}
			}
		}
	})
}
