package scftest

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// The request records are a ring: the latest capacity records are found
// by their id, an older one is gone, and a reference to a forgotten
// record writes nothing into the one that took its slot. Only an id in
// NewRequestID's form is one of a record.
func TestRecordRingKeepsTheLatest(t *testing.T) {
	r := newRecordRing(3)
	var ids []string
	var refs []recordRef
	for i := range 5 {
		id := apiserver.NewRequestID()
		ids = append(ids, id)
		refs = append(refs, r.add(requestRecord{fnName: "f", retryNum: int64(i)}, id))
	}
	for i, id := range ids {
		rec := r.get(id)
		if kept := i >= 2; kept != (rec != nil) {
			t.Fatalf("record %d found: %v, want %v", i, rec != nil, kept)
		}
		if rec != nil && (rec.retryNum != int64(i) || rec.id.String() != id) {
			t.Fatalf("record %d: %+v, id %s", i, rec, rec.id)
		}
		if live := refs[i].live(); (live != nil) != (i >= 2) {
			t.Fatalf("reference %d live: %v", i, live != nil)
		}
	}
	if r.get(strings.ToUpper(ids[4])) != nil || r.get("no-such-id") != nil || r.get(ids[4][:35]+"g") != nil {
		t.Fatal("an id not in NewRequestID's form found a record")
	}
	if ref := r.add(requestRecord{}, "not-a-uuid"); ref.live() != nil || r.get(ids[2]) == nil {
		t.Fatal("an id not in NewRequestID's form was kept, or pushed one out")
	}
	if r.index.len() != 3 {
		t.Fatalf("index holds %d ids, want 3", r.index.len())
	}
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"} {
		if k, ok := parseRequestKey(id); !ok || k.String() != id {
			t.Fatalf("%s parsed as %v %s", id, ok, k)
		}
	}
}

// The ring's index against a map, over many adds: every id kept is found
// at its newest record, every id pushed out is not, whatever collides in
// the index (ids of the same hash, a small ring that wraps many times,
// an id kept twice).
func TestRecordIndexMatchesAMap(t *testing.T) {
	for _, capacity := range []int{1, 2, 7, 100, 1500} {
		r := newRecordRing(capacity)
		rng := rand.New(rand.NewPCG(uint64(capacity), 1))
		want := map[requestKey]uint64{} // id → seq of its newest record
		var order []requestKey
		var all []requestKey
		for i := range 20 * capacity {
			var k requestKey
			switch {
			case i > 0 && rng.IntN(10) == 0: // the same hash as an earlier id, another id
				k = all[rng.IntN(len(all))]
				c := byte(1 + rng.IntN(255))
				k[0] ^= c
				k[8] ^= c
			case i > 0 && rng.IntN(20) == 0: // an id kept again
				k = all[rng.IntN(len(all))]
			default:
				for j := range k {
					k[j] = byte(rng.Uint32())
				}
			}
			all = append(all, k)
			ref := r.add(requestRecord{retryNum: int64(i)}, k.String())
			if ref.live() == nil {
				t.Fatalf("capacity %d: record %d not kept", capacity, i)
			}
			want[k] = r.n
			order = append(order, k)
			if len(order) > capacity { // the oldest record's id is gone unless kept again since
				old := order[0]
				order = order[1:]
				if want[old] <= r.n-uint64(capacity) {
					delete(want, old)
				}
			}
		}
		for _, k := range all {
			rec := r.get(k.String())
			seq, ok := want[k]
			if ok != (rec != nil) || ok && (rec.seq != seq || rec.id != k) {
				t.Fatalf("capacity %d: id %s: found %v, want %v (seq %d)", capacity, k, rec, ok, seq)
			}
		}
		if r.index.len() != len(want) {
			t.Fatalf("capacity %d: index holds %d ids, want %d", capacity, r.index.len(), len(want))
		}
		if len(r.index.entries) > 4*capacity && len(r.index.entries) > 64 {
			t.Fatalf("capacity %d: %d index entries", capacity, len(r.index.entries))
		}
	}
}
