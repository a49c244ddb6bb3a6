// Package deadline is the one min-heap of deadlines that the heartbeat
// scheduler, the model clock (internal/clock) and the CAR reference server's
// model (car/cartest) keep their timers in.
//
// A Heap is a slice of items (pointers or interfaces) that know their own
// place in it: the Order's Index returns a pointer to an int field of the
// item, which the heap keeps up to date and sets to -1 when the item leaves.
// With it an item is moved ([Heap.Fix]) or removed ([Heap.Remove]) in
// O(log n) without a search. The Order's Less decides how equal deadlines
// are ordered (by a sequence number, or not at all). The sift steps are the
// textbook ones that container/heap also takes, so a heap built by the same
// calls holds its items in the same places as the container/heap code it
// replaced.
//
// The zero Heap is empty and ready; the earliest item is h[0]; ranging over
// h visits every item in no particular order. A Heap is not safe for
// concurrent use: each user guards it with its own mutex.
package deadline

import "time"

// Before orders two timed deadlines: the earlier due time first, and of
// equal ones the one set first (the lower sequence number), so equal
// deadlines leave the heap in the order they were set.
func Before(aDue time.Time, aSeq uint64, bDue time.Time, bSeq uint64) bool {
	if !aDue.Equal(bDue) {
		return aDue.Before(bDue)
	}
	return aSeq < bSeq
}

// Order is how a Heap compares and finds its items. It is a type with no
// fields (struct{}) whose methods are the item type's ordering.
type Order[T any] interface {
	// Less reports whether a is due before b.
	Less(a, b T) bool
	// Index returns the field in which x's place in the heap is kept; -1
	// when x is in no heap. A new item must start at -1.
	Index(x T) *int
}

// Heap is a min-heap of T ordered by O.
type Heap[T any, O Order[T]] []T

// Len returns the number of items.
func (h Heap[T, O]) Len() int { return len(h) }

// Contains reports whether x is in a heap, going by its index field.
func (h Heap[T, O]) Contains(x T) bool {
	var o O
	return *o.Index(x) >= 0
}

// Push adds x, which must not be in a heap already.
func (h *Heap[T, O]) Push(x T) {
	var o O
	n := len(*h)
	*o.Index(x) = n
	*h = append(*h, x)
	h.up(n)
}

// Pop removes and returns the earliest item. It panics on an empty heap.
func (h *Heap[T, O]) Pop() T {
	n := len(*h) - 1
	h.swap(0, n)
	h.down(0, n)
	return h.removeLast()
}

// Remove takes x out of the heap; it reports whether x was there.
func (h *Heap[T, O]) Remove(x T) bool {
	var o O
	i := *o.Index(x)
	if i < 0 {
		return false
	}
	n := len(*h) - 1
	if n != i {
		h.swap(i, n)
		if !h.down(i, n) {
			h.up(i)
		}
	}
	h.removeLast()
	return true
}

// Fix restores the order after x's deadline changed; x must be in the heap.
func (h *Heap[T, O]) Fix(x T) {
	var o O
	i := *o.Index(x)
	if !h.down(i, len(*h)) {
		h.up(i)
	}
}

func (h *Heap[T, O]) removeLast() T {
	var o O
	s := *h
	n := len(s) - 1
	x := s[n]
	var zero T
	s[n] = zero // so that the backing array does not keep x alive
	*h = s[:n]
	*o.Index(x) = -1
	return x
}

func (h *Heap[T, O]) swap(i, j int) {
	var o O
	s := *h
	s[i], s[j] = s[j], s[i]
	*o.Index(s[i]) = i
	*o.Index(s[j]) = j
}

func (h *Heap[T, O]) up(j int) {
	var o O
	s := *h
	for {
		i := (j - 1) / 2 // parent
		if i == j || !o.Less(s[j], s[i]) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

// down sifts the item at i0 down within the first n items; it reports
// whether the item moved.
func (h *Heap[T, O]) down(i0, n int) bool {
	var o O
	s := *h
	i := i0
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 { // j1 < 0 after int overflow
			break
		}
		j := j1 // left child
		if j2 := j1 + 1; j2 < n && o.Less(s[j2], s[j1]) {
			j = j2 // right child
		}
		if !o.Less(s[j], s[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
