package scftest

import (
	"encoding/binary"
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
// it has wrapped: the newest record overwrites the oldest. The index
// finds a record's place in the ring from its id; both are free of
// pointers.
type recordRing struct {
	capacity int
	blocks   [][]requestRecord
	n        uint64 // records ever kept
	index    recordIndex
}

func newRecordRing(capacity int) recordRing {
	return recordRing{capacity: capacity, blocks: make([][]requestRecord, (capacity+recordBlock-1)/recordBlock)}
}

// place is where the record of seq lives in the ring.
func (r *recordRing) place(seq uint64) uint32 { return uint32((seq - 1) % uint64(r.capacity)) }

func (r *recordRing) at(place uint32) *requestRecord {
	b, off := int(place)/recordBlock, int(place)%recordBlock
	if r.blocks[b] == nil {
		r.blocks[b] = make([]requestRecord, min(recordBlock, r.capacity-b*recordBlock))
	}
	return &r.blocks[b][off]
}

// add keeps a new record, forgetting the oldest beyond the capacity, and
// returns a reference to it. An id that is not a UUID is not kept (no
// GetRequestStatus could find it): the reference then refers to nothing.
// An id kept again (never one of NewRequestID's) finds the newer record.
func (r *recordRing) add(rec requestRecord, id string) recordRef {
	k, ok := parseRequestKey(id)
	if !ok || r.capacity <= 0 {
		return recordRef{}
	}
	r.n++
	place := r.place(r.n)
	p := r.at(place)
	if p.seq != 0 {
		r.index.remove(p.id, place)
	}
	if old, ok := r.index.find(k, r.at); ok {
		r.index.remove(k, old)
	}
	rec.seq, rec.id = r.n, k
	*p = rec
	r.index.insert(k, place)
	return recordRef{p, rec.seq}
}

// get returns the record of an id, or nil.
func (r *recordRing) get(id string) *requestRecord {
	k, ok := parseRequestKey(id)
	if !ok {
		return nil
	}
	place, ok := r.index.find(k, r.at)
	if !ok {
		return nil
	}
	return r.at(place)
}

// recordIndex maps the ids of the records kept to their places in the
// ring: an open-addressing table (linear probing, at most half full, so
// a probe is short) of entries holding a 32-bit hash of the id and the
// place plus one (0: an empty entry). It grows by doubling, to at most
// four times the ring's capacity, and never shrinks; it holds no pointer, and a
// removal shifts the entries after it back, so it keeps no tombstones.
// The ids are random (NewRequestID), so their bytes are a good hash; the
// multiplication spreads any that are not.
type recordIndex struct {
	entries []uint64 // hash<<32 | place+1
	count   int
}

func idHash(k requestKey) uint32 {
	x := binary.LittleEndian.Uint64(k[:8]) ^ binary.LittleEndian.Uint64(k[8:])
	return uint32((x * 0x9e3779b97f4a7c15) >> 32)
}

func (ix *recordIndex) len() int { return ix.count }

func (ix *recordIndex) mask() uint32 { return uint32(len(ix.entries) - 1) }

// find returns the place of k's record; at reads the record of a place,
// to compare its id when the hash matches.
func (ix *recordIndex) find(k requestKey, at func(uint32) *requestRecord) (uint32, bool) {
	if len(ix.entries) == 0 {
		return 0, false
	}
	h := idHash(k)
	for i := h & ix.mask(); ; i = (i + 1) & ix.mask() {
		e := ix.entries[i]
		if e == 0 {
			return 0, false
		}
		if uint32(e>>32) == h {
			if place := uint32(e) - 1; at(place).id == k {
				return place, true
			}
		}
	}
}

// insert adds k's record at place; k is not in the index.
func (ix *recordIndex) insert(k requestKey, place uint32) {
	if 2*(ix.count+1) > len(ix.entries) {
		ix.grow()
	}
	ix.put(uint64(idHash(k))<<32 | uint64(place+1))
	ix.count++
}

func (ix *recordIndex) put(e uint64) {
	i := uint32(e>>32) & ix.mask()
	for ix.entries[i] != 0 {
		i = (i + 1) & ix.mask()
	}
	ix.entries[i] = e
}

func (ix *recordIndex) grow() {
	size := max(64, 2*len(ix.entries))
	for size < 2*(ix.count+1) {
		size *= 2
	}
	old := ix.entries
	ix.entries = make([]uint64, size)
	for _, e := range old {
		if e != 0 {
			ix.put(e)
		}
	}
}

// remove takes out k's entry for place, if it has one.
func (ix *recordIndex) remove(k requestKey, place uint32) {
	if len(ix.entries) == 0 {
		return
	}
	want := uint64(idHash(k))<<32 | uint64(place+1)
	m := ix.mask()
	i := uint32(want>>32) & m
	for ix.entries[i] != want {
		if ix.entries[i] == 0 {
			return
		}
		i = (i + 1) & m
	}
	// Shift back each later entry of the run that may sit at i: one whose
	// home is not in the circular range (i, j].
	for j := (i + 1) & m; ix.entries[j] != 0; j = (j + 1) & m {
		home := uint32(ix.entries[j]>>32) & m
		if (j-home)&m >= (j-i)&m {
			ix.entries[i] = ix.entries[j]
			i = j
		}
	}
	ix.entries[i] = 0
	ix.count--
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
func (m *model) newRecord(fn *function, id string, now time.Time) recordRef {
	return m.records.add(requestRecord{fnKey: fn.key(), fnName: fn.name, start: now, retCode: scf.RetCodeRunning}, id)
}
