package sqlstore

import (
	"slices"
	"testing"
)

func TestNextBatch(t *testing.T) {
	in := make(chan int, 10)
	stop := make(chan struct{})
	for i := range 5 {
		in <- i
	}
	b, ok := NextBatch(in, stop, 3, nil)
	if !ok || !slices.Equal(b, []int{0, 1, 2}) {
		t.Errorf("first batch %v %v, want [0 1 2] (max 3)", b, ok)
	}
	b, ok = NextBatch(in, stop, 3, b)
	if !ok || !slices.Equal(b, []int{3, 4}) {
		t.Errorf("second batch %v %v, want [3 4]: only what is ready", b, ok)
	}
	close(stop)
	if b, ok = NextBatch(in, stop, 3, b); ok || len(b) != 0 {
		t.Errorf("after stop: %v %v, want nothing and false", b, ok)
	}
}
