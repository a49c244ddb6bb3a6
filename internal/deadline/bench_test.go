package deadline

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

// The benchmarks run the heartbeat scheduler's pattern (15,000 owners behind
// an interface, each re-armed later after it fires, some moved earlier)
// through this heap and through the container/heap shape it replaced.
//
//	go test -run '^$' -bench . -count 6 ./internal/deadline/

type entry struct {
	at    int64
	index int
}

type owner interface{ entry() *entry }

type ownerImpl struct{ e entry }

func (o *ownerImpl) entry() *entry { return &o.e }

type oldHeap []owner

func (h oldHeap) Len() int           { return len(h) }
func (h oldHeap) Less(i, j int) bool { return h[i].entry().at < h[j].entry().at }
func (h oldHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].entry().index = i
	h[j].entry().index = j
}
func (h *oldHeap) Push(x any) {
	t := x.(owner)
	t.entry().index = len(*h)
	*h = append(*h, t)
}
func (h *oldHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	*h = old[:n]
	t.entry().index = -1
	return t
}

type ownerOrder struct{}

func (ownerOrder) Less(a, b owner) bool { return a.entry().at < b.entry().at }
func (ownerOrder) Index(o owner) *int   { return &o.entry().index }

const owners = 15000

func owners15k() []owner {
	r := rand.New(rand.NewPCG(5, 6))
	os := make([]owner, owners)
	for i := range os {
		os[i] = &ownerImpl{e: entry{at: r.Int64N(30e9), index: -1}}
	}
	return os
}

// step is one scheduler turn: the earliest owner fires and re-arms 30 s on;
// every 8th turn another owner's deadline moves earlier.
func BenchmarkScheduler(b *testing.B) {
	b.Run("deadline.Heap", func(b *testing.B) {
		os := owners15k()
		var h Heap[owner, ownerOrder]
		for _, o := range os {
			h.Push(o)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			o := h.Pop()
			o.entry().at += 30e9
			h.Push(o)
			if i%8 == 0 {
				p := os[i%owners]
				p.entry().at -= 1e9
				h.Fix(p)
			}
		}
	})
	b.Run("container/heap", func(b *testing.B) {
		os := owners15k()
		var h oldHeap
		for _, o := range os {
			heap.Push(&h, o)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			o := heap.Pop(&h).(owner)
			o.entry().at += 30e9
			heap.Push(&h, o)
			if i%8 == 0 {
				p := os[i%owners]
				p.entry().at -= 1e9
				heap.Fix(&h, p.entry().index)
			}
		}
	})
}
