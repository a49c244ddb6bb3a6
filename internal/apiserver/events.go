package apiserver

// eventBlock is how many events one block of the event log holds.
const eventBlock = 1024

// eventRing is the event log: a ring of fixed capacity made of blocks of
// eventBlock events, each allocated the first time the log reaches it and
// reused, never copied, once the ring has wrapped. A server that records
// a few events holds one block (about 170 KB); one that records more than
// its capacity holds capacity events and allocates nothing more.
type eventRing struct {
	capacity int
	blocks   [][]Event
	n        uint64 // events ever recorded
}

func newEventRing(capacity int) eventRing {
	return eventRing{capacity: capacity, blocks: make([][]Event, (capacity+eventBlock-1)/eventBlock)}
}

func (r *eventRing) add(e Event) {
	slot := int(r.n % uint64(r.capacity))
	b, off := slot/eventBlock, slot%eventBlock
	if r.blocks[b] == nil {
		size := min(eventBlock, r.capacity-b*eventBlock)
		r.blocks[b] = make([]Event, size)
	}
	r.blocks[b][off] = e
	r.n++
}

// appendTo appends the events kept, oldest first.
func (r *eventRing) appendTo(out []Event) []Event {
	count := r.len()
	start := r.n - uint64(count)
	for i := range count {
		slot := int((start + uint64(i)) % uint64(r.capacity))
		out = append(out, r.blocks[slot/eventBlock][slot%eventBlock])
	}
	return out
}

func (r *eventRing) len() int {
	if r.n < uint64(r.capacity) {
		return int(r.n)
	}
	return r.capacity
}
