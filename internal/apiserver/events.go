package apiserver

import (
	"encoding/hex"
	"time"
)

// eventBlock is how many events one block of the event log holds.
const eventBlock = 1024

// eventRing is the event log: a ring of fixed capacity made of blocks of
// eventBlock events, each allocated the first time the log reaches it and
// reused, never copied, once the ring has wrapped. A server that records
// a few events holds one block (about 80 KB); one that records more than
// its capacity holds capacity events and allocates nothing more.
//
// An event is kept without a pointer, so that a full log costs the
// garbage collector nothing to scan: its time as seconds, nanoseconds and
// the index of its location; each string as the index of an interned copy
// (counted, and forgotten with the last event that uses it), except a
// RequestId or Detail that is a request id (NewRequestID's form, most of
// them), kept as its 16 bytes. Events gives back the same strings and the
// same instant in the same location; the time's monotonic clock reading
// is not kept.
type eventRing struct {
	capacity int
	blocks   [][]storedEvent
	n        uint64 // events ever recorded
	strs     interner
	locs     []*time.Location
	last     [7]uint32 // per field, the string it held last: most events repeat it
}

// storedEvent is an Event as the ring keeps it.
type storedEvent struct {
	sec                                   int64
	nsec                                  int32
	loc                                   uint16 // index in eventRing.locs
	ids                                   uint8  // bit 0: requestID is ids[0]; bit 1: detail is ids[1]
	kind, action, code, subject, resource uint32 // interned
	requestID, detail                     uint32 // interned, when not an id
	uuids                                 [2][16]byte
}

func newEventRing(capacity int) eventRing {
	return eventRing{capacity: capacity, blocks: make([][]storedEvent, (capacity+eventBlock-1)/eventBlock),
		strs: newInterner()}
}

func (r *eventRing) add(e Event) {
	slot := int(r.n % uint64(r.capacity))
	b, off := slot/eventBlock, slot%eventBlock
	if r.blocks[b] == nil {
		size := min(eventBlock, r.capacity-b*eventBlock)
		r.blocks[b] = make([]storedEvent, size)
	}
	p := &r.blocks[b][off]
	if r.n >= uint64(r.capacity) {
		r.forget(p)
	}
	s := storedEvent{
		sec: e.Time.Unix(), nsec: int32(e.Time.Nanosecond()), loc: r.location(e.Time.Location()),
		kind: r.ref(0, string(e.Kind)), action: r.ref(1, e.Action), code: r.ref(2, e.Code),
		subject: r.ref(3, e.Subject), resource: r.ref(4, e.Resource),
	}
	if id, ok := ParseRequestID(e.RequestId); ok {
		s.ids, s.uuids[0] = s.ids|1, id
	} else {
		s.requestID = r.ref(5, e.RequestId)
	}
	if id, ok := ParseRequestID(e.Detail); ok {
		s.ids, s.uuids[1] = s.ids|2, id
	} else {
		s.detail = r.ref(6, e.Detail)
	}
	*p = s
	r.n++
}

// ref interns one field's string, trying the one the field held last
// before the interner's map.
func (r *eventRing) ref(field int, s string) uint32 {
	if s == "" {
		return 0
	}
	if i := r.last[field]; i != 0 && r.strs.strs[i] == s {
		r.strs.refs[i]++
		return i
	}
	i := r.strs.ref(s)
	r.last[field] = i
	return i
}

// forget lets go of the strings of an event about to be overwritten.
func (r *eventRing) forget(p *storedEvent) {
	for _, id := range [...]uint32{p.kind, p.action, p.code, p.subject, p.resource, p.requestID, p.detail} {
		r.strs.unref(id)
	}
}

func (r *eventRing) location(l *time.Location) uint16 {
	for i, x := range r.locs {
		if x == l {
			return uint16(i)
		}
	}
	r.locs = append(r.locs, l)
	return uint16(len(r.locs) - 1)
}

func (r *eventRing) event(s *storedEvent) Event {
	e := Event{
		Time: time.Unix(s.sec, int64(s.nsec)).In(r.locs[s.loc]),
		Kind: EventKind(r.strs.get(s.kind)), Action: r.strs.get(s.action), Code: r.strs.get(s.code),
		Subject: r.strs.get(s.subject), Resource: r.strs.get(s.resource),
		RequestId: r.strs.get(s.requestID), Detail: r.strs.get(s.detail),
	}
	if s.ids&1 != 0 {
		e.RequestId = FormatRequestID(s.uuids[0])
	}
	if s.ids&2 != 0 {
		e.Detail = FormatRequestID(s.uuids[1])
	}
	return e
}

// appendTo appends the events kept, oldest first.
func (r *eventRing) appendTo(out []Event) []Event {
	count := r.len()
	start := r.n - uint64(count)
	for i := range count {
		slot := int((start + uint64(i)) % uint64(r.capacity))
		out = append(out, r.event(&r.blocks[slot/eventBlock][slot%eventBlock]))
	}
	return out
}

func (r *eventRing) len() int {
	if r.n < uint64(r.capacity) {
		return int(r.n)
	}
	return r.capacity
}

// interner keeps one copy of each string the events hold, with the
// number of events holding it; index 0 is "".
type interner struct {
	index map[string]uint32
	strs  []string
	refs  []int32
	free  []uint32 // indexes no string holds
}

func newInterner() interner {
	return interner{index: make(map[string]uint32), strs: []string{""}, refs: []int32{0}}
}

func (t *interner) ref(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := t.index[s]; ok {
		t.refs[i]++
		return i
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
		t.strs[i], t.refs[i] = s, 1
	} else {
		i = uint32(len(t.strs))
		t.strs, t.refs = append(t.strs, s), append(t.refs, 1)
	}
	t.index[s] = i
	return i
}

func (t *interner) unref(i uint32) {
	if i == 0 {
		return
	}
	if t.refs[i]--; t.refs[i] == 0 {
		delete(t.index, t.strs[i])
		t.strs[i] = ""
		t.free = append(t.free, i)
	}
}

func (t *interner) get(i uint32) string { return t.strs[i] }

// ParseRequestID reads a request id in the form NewRequestID writes (a
// UUID in lowercase hex, dashes at 8, 13, 18 and 23) as its 16 bytes;
// anything else is not one.
func ParseRequestID(s string) (id [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	bad := byte(0)
	for j, i := range requestIDDigits {
		hi, lo := hexValue[s[i]], hexValue[s[i+1]]
		bad |= hi | lo
		id[j] = hi<<4 | lo
	}
	return id, bad&0x80 == 0
}

// requestIDDigits is where each byte's two digits start in a request id.
var requestIDDigits = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue is the value of a lowercase hex digit, 0xff for any other
// byte.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()

// FormatRequestID writes a request id's 16 bytes as NewRequestID does.
func FormatRequestID(id [16]byte) string {
	var out [36]byte
	hex.Encode(out[0:8], id[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], id[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], id[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], id[8:10])
	out[23] = '-'
	hex.Encode(out[24:], id[10:])
	return string(out[:])
}
