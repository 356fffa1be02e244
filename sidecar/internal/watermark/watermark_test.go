package watermark

import (
	"context"
	"testing"
	"time"
)

// TestMark: the mark only moves forward, and a wait ends when it reaches
// the revision, or with the context.
func TestMark(t *testing.T) {
	var m Mark
	if at, err := m.Wait(context.Background(), 0); err != nil || at != 0 {
		t.Fatalf("at 0: %d %v", at, err)
	}
	done := make(chan int64)
	go func() {
		at, _ := m.Wait(context.Background(), 5)
		done <- at
	}()
	m.Advance(3)
	m.Advance(7)
	m.Advance(4)
	if at := <-done; at != 7 || m.Load() != 7 {
		t.Fatalf("woke at %d, mark %d", at, m.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if at, err := m.Wait(ctx, 8); err == nil || at != 7 {
		t.Fatalf("waiting past the mark: %d %v", at, err)
	}
}
