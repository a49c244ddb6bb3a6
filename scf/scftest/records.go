package scftest

import (
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
	"github.com/tcconcurrency/sdk-go/scf"
)

// requestRecord is what GetRequestStatus reports about an execution. The
// records live by value in a recordRing; the id is kept as its 16 bytes
// (every FunctionRequestId is a UUID of apiserver.NewRequestID), so a
// record holds no pointer of its own but the function's shared strings
// and its RetMsg, and the garbage collector has little to follow in a
// full ring.
type requestRecord struct {
	seq           uint64 // 1 + its place in the order records were kept; 0: an empty slot
	id            requestKey
	fnKey, fnName string
	start         time.Time
	retCode       int64
	duration      float64
	memMB         float64
	retryNum      int64
	retMsg        string
}

// requestKey is a FunctionRequestId's 16 bytes.
type requestKey [16]byte

// parseRequestKey reads a FunctionRequestId in the form NewRequestID
// writes; anything else is no id of a record.
func parseRequestKey(s string) (requestKey, bool) {
	k, ok := apiserver.ParseRequestID(s)
	return requestKey(k), ok
}

// String is the id as NewRequestID wrote it.
func (k requestKey) String() string { return apiserver.FormatRequestID(k) }

// recordBlock is how many records one block of the ring holds.
const recordBlock = 1024

// recordRing keeps the latest records, at most capacity, in blocks
// allocated as the ring first fills them and reused, never copied, once
// it has wrapped: the newest record overwrites the oldest. The index maps
// an id to its record's seq; both are free of pointers.
type recordRing struct {
	capacity int
	blocks   [][]requestRecord
	n        uint64 // records ever kept
	index    map[requestKey]uint64
}

func newRecordRing(capacity int) recordRing {
	return recordRing{capacity: capacity, blocks: make([][]requestRecord, (capacity+recordBlock-1)/recordBlock),
		index: make(map[requestKey]uint64)}
}

func (r *recordRing) slot(seq uint64) *requestRecord {
	i := int((seq - 1) % uint64(r.capacity))
	b, off := i/recordBlock, i%recordBlock
	if r.blocks[b] == nil {
		r.blocks[b] = make([]requestRecord, min(recordBlock, r.capacity-b*recordBlock))
	}
	return &r.blocks[b][off]
}

// add keeps a new record, forgetting the oldest beyond the capacity, and
// returns a reference to it. An id that is not a UUID is not kept (no
// GetRequestStatus could find it): the reference then refers to nothing.
func (r *recordRing) add(rec requestRecord, id string) recordRef {
	k, ok := parseRequestKey(id)
	if !ok || r.capacity <= 0 {
		return recordRef{}
	}
	r.n++
	p := r.slot(r.n)
	if p.seq != 0 && r.index[p.id] == p.seq {
		delete(r.index, p.id)
	}
	rec.seq, rec.id = r.n, k
	*p = rec
	r.index[k] = rec.seq
	return recordRef{p, rec.seq}
}

// get returns the record of an id, or nil.
func (r *recordRing) get(id string) *requestRecord {
	k, ok := parseRequestKey(id)
	if !ok {
		return nil
	}
	seq, ok := r.index[k]
	if !ok {
		return nil
	}
	return r.slot(seq)
}

// recordRef refers to one record while the ring keeps it.
type recordRef struct {
	p   *requestRecord
	seq uint64
}

// live returns the record, or nil once a newer one has taken its slot.
func (h recordRef) live() *requestRecord {
	if h.p == nil || h.p.seq != h.seq {
		return nil
	}
	return h.p
}

func (r *requestRecord) update(ex *execution) {
	duration, _, result, errMsg := ex.summary()
	r.duration, r.memMB = duration, float64(ex.memPeak)/(1<<20)
	if ex.out.status == scf.StatusSuccess {
		r.retCode, r.retMsg = scf.RetCodeSucceeded, result
	} else {
		r.retCode, r.retMsg = scf.RetCodeFailed, errMsg
	}
}

// newRecord keeps a record of a new request, forgetting the oldest beyond
// the limit.
func (m *model) newRecord(fn *function, id string) recordRef {
	return m.records.add(requestRecord{fnKey: fn.key(), fnName: fn.name, start: m.now(), retCode: scf.RetCodeRunning}, id)
}
