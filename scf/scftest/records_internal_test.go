package scftest

import (
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
	if len(r.index) != 3 {
		t.Fatalf("index holds %d ids, want 3", len(r.index))
	}
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"} {
		if k, ok := parseRequestKey(id); !ok || k.String() != id {
			t.Fatalf("%s parsed as %v %s", id, ok, k)
		}
	}
}
