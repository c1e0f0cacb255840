package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a destination that records each write.
type recorder struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	gate   chan struct{} // if set, writes after the first pass wait for it to close
	pass   int
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	wait := r.gate != nil && r.writes >= r.pass
	r.mu.Unlock()
	if wait {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.writes++
	return r.buf.Write(p)
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Split(strings.TrimSuffix(r.buf.String(), "\n"), "\n")
}

func TestLinesArriveWholeAndInOrder(t *testing.T) {
	out := &recorder{}
	w := New(out, Options{})
	const writers, each = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range each {
				fmt.Fprintf(w, "g%d n%d\n", g, n)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	lines := out.lines()
	for _, l := range lines {
		var g, n int
		if _, err := fmt.Sscanf(l, "g%d n%d", &g, &n); err != nil || g < 0 || g >= writers {
			t.Fatalf("torn or foreign line %q", l)
		}
		if n != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, n, next[g]-1)
		}
		next[g]++
	}
	if len(lines) != writers*each || w.Dropped() != 0 {
		t.Errorf("%d lines, %d dropped; want %d, 0", len(lines), w.Dropped(), writers*each)
	}
}

func TestLinesShareWrites(t *testing.T) {
	out := &recorder{}
	// No flush before Close: the lines can only leave together.
	w := New(out, Options{FlushDelay: time.Hour})
	for n := range 1000 {
		fmt.Fprintf(w, "line %d\n", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.writes != 1 || len(out.lines()) != 1000 {
		t.Errorf("1000 lines left in %d writes as %d lines; want 1 write", out.writes, len(out.lines()))
	}
}

func TestALineLeavesWithoutClose(t *testing.T) {
	out := &recorder{}
	w := New(out, Options{FlushDelay: time.Millisecond})
	defer w.Close()
	fmt.Fprintln(w, "hello")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got := out.lines(); got[0] == "hello" {
			return
		}
	}
	t.Fatal("the line was not written within 10 s")
}

// A destination that stops taking lines must not stop the code that logs:
// lines beyond MaxPending are dropped and counted, and a notice follows once
// the destination takes lines again.
func TestStalledOutputDropsInsteadOfBlocking(t *testing.T) {
	out := &recorder{gate: make(chan struct{})}
	var w *Writer
	w = New(out, Options{MaxPending: 1 << 10, FlushDelay: time.Millisecond, OnDrop: func(n uint64) {
		fmt.Fprintf(w, "dropped %d\n", n)
	}})
	const lines = 1000
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for n := range lines {
			fmt.Fprintf(w, "line %04d\n", n)
		}
	}()
	select {
	case <-wrote:
	case <-time.After(30 * time.Second):
		t.Fatal("Write blocked on a stalled destination")
	}
	w.mu.Lock()
	pending := len(w.pending)
	w.mu.Unlock()
	if pending > 1<<10 || w.Dropped() == 0 {
		t.Fatalf("pending %d bytes (max 1024), %d dropped: want bounded and some dropped", pending, w.Dropped())
	}
	close(out.gate)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var kept, notices uint64
	prev := -1
	for _, l := range out.lines() {
		var n int
		if _, err := fmt.Sscanf(l, "dropped %d", &n); err == nil {
			if kept == 0 {
				t.Fatalf("notice %q before any kept line", l)
			}
			notices += uint64(n)
			continue
		}
		if _, err := fmt.Sscanf(l, "line %d", &n); err != nil || n <= prev {
			t.Fatalf("line %q after line %d", l, prev)
		}
		prev = n
		kept++
	}
	if notices != w.Dropped() || kept+notices != lines {
		t.Errorf("%d kept, %d reported dropped, %d counted dropped; want kept + dropped = %d, reported = counted",
			kept, notices, w.Dropped(), lines)
	}
}

func TestCloseGivesUpOnAStuckOutput(t *testing.T) {
	out := &recorder{gate: make(chan struct{})}
	defer close(out.gate) // lets the goroutine end
	w := New(out, Options{FlushDelay: time.Millisecond, CloseTimeout: 50 * time.Millisecond})
	fmt.Fprintln(w, "stuck")
	if err := w.Close(); err == nil {
		t.Error("Close returned nil while the output took nothing")
	}
}

// Close gives up on an output that took a batch and then stopped, and
// lines after Close are dropped rather than waited for.
func TestCloseAndLaterLinesDoNotWaitForAStuckOutput(t *testing.T) {
	out := &recorder{gate: make(chan struct{}), pass: 1}
	defer close(out.gate)
	w := New(out, Options{FlushDelay: time.Millisecond, CloseTimeout: 50 * time.Millisecond})
	fmt.Fprintln(w, "taken")
	for deadline := time.Now().Add(10 * time.Second); out.lines()[0] != "taken"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first line was not written within 10 s")
		}
	}
	fmt.Fprintln(w, "stuck")
	returned := make(chan error, 1)
	go func() {
		returned <- w.Close()
		fmt.Fprintln(w, "late")
		returned <- w.Close()
	}()
	for i, want := range []bool{true, true} {
		select {
		case err := <-returned:
			if (err != nil) != want {
				t.Errorf("Close %d: %v", i+1, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Close %d, or the line after it, waited for the output", i+1)
		}
	}
}

func TestCloseIsIdempotentAndLateLinesCount(t *testing.T) {
	out := &recorder{}
	w := New(out, Options{})
	fmt.Fprintln(w, "kept")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "late")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.lines(); len(got) != 1 || got[0] != "kept" || w.Dropped() != 1 {
		t.Errorf("lines %q, %d dropped; want [kept], 1", got, w.Dropped())
	}
}

// Enough pending output is written without waiting for FlushDelay.
func TestABigBatchLeavesAtOnce(t *testing.T) {
	out := &recorder{}
	w := New(out, Options{FlushDelay: time.Hour})
	defer w.Close()
	fmt.Fprintln(w, strings.Repeat("x", flushSize))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if len(out.lines()[0]) == flushSize {
			return
		}
	}
	t.Fatal("a 64 KiB line waited for FlushDelay")
}

func TestFailedWritesCountAsDropped(t *testing.T) {
	out := &recorder{err: errors.New("disk full")}
	w := New(out, Options{FlushDelay: time.Hour})
	for range 3 {
		fmt.Fprintln(w, "lost")
	}
	_ = w.Close()
	if w.Dropped() != 3 {
		t.Errorf("Dropped() = %d, want 3", w.Dropped())
	}
}
