package deadline

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

type item struct {
	at, seq int
	index   int
}

// bySeq orders items by deadline, then by sequence number.
type bySeq struct{}

func (bySeq) Less(a, b *item) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}
func (bySeq) Index(x *item) *int { return &x.index }

// byAt orders items by deadline only, as the heartbeat scheduler does.
type byAt struct{}

func (byAt) Less(a, b *item) bool { return a.at < b.at }
func (byAt) Index(x *item) *int   { return &x.index }

func newHeap() Heap[*item, bySeq] { return nil }

func TestHeapOrderAndIndex(t *testing.T) {
	h := newHeap()
	a, b, c := &item{at: 3, seq: 1, index: -1}, &item{at: 1, seq: 2, index: -1}, &item{at: 2, seq: 3, index: -1}
	for _, x := range []*item{a, b, c} {
		h.Push(x)
	}
	if h.Len() != 3 || h[0] != b {
		t.Fatalf("Len %d, Min %+v; want 3 and the item due at 1", h.Len(), h[0])
	}
	if !h.Remove(c) || c.index != -1 || h.Contains(c) {
		t.Fatalf("Remove(c): index %d, Contains %v; want -1, false", c.index, h.Contains(c))
	}
	if h.Remove(c) {
		t.Fatal("a second Remove(c) reported true")
	}
	a.at = 0
	h.Fix(a)
	if got := h.Pop(); got != a || a.index != -1 {
		t.Fatalf("Pop after Fix = %+v (index %d); want the moved item with index -1", got, a.index)
	}
	if got := h.Pop(); got != b || h.Len() != 0 {
		t.Fatalf("Pop = %+v, Len %d; want b and an empty heap", got, h.Len())
	}
}

// TestHeapTiesBySeq: equal deadlines leave in the order the less function
// gives them (here, the order they were set in), as the clock and cartest
// rely on.
func TestHeapTiesBySeq(t *testing.T) {
	h := newHeap()
	for i := range 50 {
		h.Push(&item{at: 7, seq: 50 - i, index: -1})
	}
	for want := 1; want <= 50; want++ {
		if got := h.Pop().seq; got != want {
			t.Fatalf("pop %d: seq %d", want, got)
		}
	}
}

// op drives one step of the property test: push, pop, remove, or move an
// item's deadline earlier or later.
func run(t *testing.T, ops []byte) {
	h := newHeap()
	var in []*item // the model: what the heap should hold
	seq := 0
	check := func(step int) {
		if h.Len() != len(in) {
			t.Fatalf("step %d: Len %d, model holds %d", step, h.Len(), len(in))
		}
		for i, x := range h {
			if x.index != i {
				t.Fatalf("step %d: item at %d has index %d", step, i, x.index)
			}
		}
		if len(in) > 0 {
			m := slices.MinFunc(in, cmpItem)
			if h[0] != m {
				t.Fatalf("step %d: Min (%d,%d); the model's earliest is (%d,%d)", step, h[0].at, h[0].seq, m.at, m.seq)
			}
		}
	}
	for i := 0; i+1 < len(ops); i += 2 {
		op, arg := ops[i]%5, int(ops[i+1])
		switch {
		case op <= 1 || len(in) == 0: // push
			seq++
			x := &item{at: arg % 16, seq: seq, index: -1}
			h.Push(x)
			in = append(in, x)
		case op == 2: // pop
			slices.SortFunc(in, cmpItem)
			if got := h.Pop(); got != in[0] || got.index != -1 {
				t.Fatalf("step %d: Pop (%d,%d) index %d; want (%d,%d) index -1", i, got.at, got.seq, got.index, in[0].at, in[0].seq)
			}
			in = in[1:]
		case op == 3: // remove
			x := in[arg%len(in)]
			if !h.Remove(x) || x.index != -1 {
				t.Fatalf("step %d: Remove failed or left index %d", i, x.index)
			}
			in = slices.DeleteFunc(in, func(y *item) bool { return y == x })
		default: // move a deadline
			x := in[arg%len(in)]
			x.at = (x.at + arg - 128) % 16
			seq++
			x.seq = seq
			h.Fix(x)
		}
		check(i)
	}
	// Draining yields the model sorted.
	slices.SortFunc(in, cmpItem)
	for _, want := range in {
		if got := h.Pop(); got != want {
			t.Fatalf("drain: (%d,%d); want (%d,%d)", got.at, got.seq, want.at, want.seq)
		}
	}
}

func cmpItem(a, b *item) int {
	if a.at != b.at {
		return a.at - b.at
	}
	return a.seq - b.seq
}

func TestHeapAgainstSortedSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		ops := make([]byte, 2*r.IntN(300))
		for i := range ops {
			ops[i] = byte(r.Uint32())
		}
		run(t, ops)
	}
}

func FuzzHeap(f *testing.F) {
	f.Add([]byte{0, 5, 0, 3, 2, 0, 1, 9, 4, 200, 3, 1, 2, 2})
	f.Fuzz(run)
}

// refHeap is the container/heap shape the three users had before; the
// generic heap must place items where it did, so that users without a tie
// breaker (the heartbeat scheduler) see equal deadlines in the same order.
type refHeap []*item

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index, h[j].index = i, j }
func (h *refHeap) Push(x any)        { x.(*item).index = len(*h); *h = append(*h, x.(*item)) }
func (h *refHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	x.index = -1
	return x
}

func TestSamePlacesAsContainerHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var g Heap[*item, byAt]
	var ref refHeap
	var gi, ri []*item
	for step := range 5000 {
		switch k := r.IntN(4); {
		case k <= 1 || len(gi) == 0:
			at := r.IntN(8) // many ties
			a, b := &item{at: at, seq: step, index: -1}, &item{at: at, seq: step, index: -1}
			g.Push(a)
			heap.Push(&ref, b)
			gi, ri = append(gi, a), append(ri, b)
		case k == 2:
			a, b := g.Pop(), heap.Pop(&ref).(*item)
			if a.seq != b.seq {
				t.Fatalf("step %d: Pop gave item %d, container/heap %d", step, a.seq, b.seq)
			}
			gi = slices.DeleteFunc(gi, func(x *item) bool { return x == a })
			ri = slices.DeleteFunc(ri, func(x *item) bool { return x == b })
		default:
			j := r.IntN(len(gi))
			if r.IntN(2) == 0 {
				g.Remove(gi[j])
				heap.Remove(&ref, ri[j].index)
				gi, ri = slices.Delete(gi, j, j+1), slices.Delete(ri, j, j+1)
			} else {
				at := r.IntN(8)
				gi[j].at, ri[j].at = at, at
				g.Fix(gi[j])
				heap.Fix(&ref, ri[j].index)
			}
		}
		for i := range ref {
			if g[i].seq != ref[i].seq {
				t.Fatalf("step %d: place %d holds item %d, container/heap item %d", step, i, g[i].seq, ref[i].seq)
			}
		}
	}
}

func TestBefore(t *testing.T) {
	t0 := time.Unix(100, 0)
	for _, tc := range []struct {
		a, b   time.Time
		as, bs uint64
		want   bool
	}{
		{t0, t0.Add(1), 9, 1, true},
		{t0.Add(1), t0, 1, 9, false},
		{t0, t0, 1, 2, true},
		{t0, t0, 2, 1, false},
		{t0, t0, 1, 1, false},
		{t0, t0.In(time.FixedZone("x", 3600)), 1, 2, true}, // the same instant in another zone is equal
	} {
		if got := Before(tc.a, tc.as, tc.b, tc.bs); got != tc.want {
			t.Errorf("Before(%v #%d, %v #%d) = %v", tc.a, tc.as, tc.b, tc.bs, got)
		}
	}
}
