package apiserver

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The log keeps events without pointers, yet gives back every string and
// instant as recorded: request ids in NewRequestID's form and any other
// text alike, in the time's own location; and the strings of events the
// ring has overwritten are forgotten.
func TestEventRingGivesBackWhatWasRecorded(t *testing.T) {
	r := newEventRing(4)
	id := NewRequestID()
	zone := time.FixedZone("CST", 8*3600)
	in := []Event{
		{Time: time.Date(2026, 12, 2, 5, 0, 0, 123456789, time.UTC), Kind: EventCall, Action: "InvokeFunction", RequestId: id, Code: "LimitExceeded"},
		{Time: time.Date(1999, 1, 1, 0, 0, 0, 1, zone), Kind: "invoke", Action: "execution", Subject: "default/f:$LATEST", Resource: "ins-1", Detail: id},
		{Time: time.Unix(1, 0), Kind: "k", RequestId: strings.ToUpper(id), Detail: id[:35] + "g"},
		{Time: time.Date(2300, 6, 1, 0, 0, 0, 0, time.Local), Kind: "k", RequestId: "(no id)", Detail: "a detail: " + id},
	}
	for _, e := range in {
		r.add(e)
	}
	out := r.appendTo(nil)
	if len(out) != len(in) {
		t.Fatalf("%d events, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i] != in[i] || out[i].Time.Location() != in[i].Time.Location() {
			t.Errorf("event %d: got %+v, want %+v", i, out[i], in[i])
		}
	}
	for i := range 100 {
		r.add(Event{Time: time.Unix(int64(i), 0), Kind: "k", Detail: "unique " + strconv.Itoa(i)})
	}
	// Four events kept: "k" and their four details.
	if n := len(r.strs.index); n != 5 {
		t.Fatalf("the log holds %d strings after wrapping, want 5: %v", n, r.strs.index)
	}
	if got := r.appendTo(nil); got[0].Detail != "unique 96" || got[3].Detail != "unique 99" {
		t.Fatalf("kept %+v", got)
	}
}
