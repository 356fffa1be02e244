package tick

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEvery: the work runs until the context ends, and not after.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func() {
			if n.Add(1) == 3 {
				cancel()
			}
		})
		close(done)
	}()
	<-done
	if got := n.Load(); got != 3 {
		t.Fatalf("ran %d times after the context ended at the third", got)
	}
}
