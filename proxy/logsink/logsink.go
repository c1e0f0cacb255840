// Package logsink keeps a slow log destination from stalling the code that
// logs. The proxy logs audit lines from its event loop's thread: with a
// write(2) per line there, a destination that stopped reading (a full pipe)
// stopped every connection on the loop, and each line cost a system call
// on the loop's thread. A Writer instead appends each line to a
// bounded buffer and one goroutine writes the buffer out, at most
// FlushDelay after its first line, in one write per batch. While the
// destination lags, lines that do not fit are dropped and counted, never
// waited for; a notice (OnDrop) follows once it takes lines again.
package logsink

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxPending   = 4 << 20
	DefaultFlushDelay   = 5 * time.Millisecond
	DefaultCloseTimeout = 5 * time.Second
)

// flushSize is how much pending output is written at once without waiting
// for the rest of FlushDelay.
const flushSize = 64 << 10

// keepSpare bounds the capacity a flushed buffer keeps for reuse, so a
// burst does not hold its memory for good.
const keepSpare = 256 << 10

// Options tunes a Writer; zero values take the defaults.
type Options struct {
	// MaxPending bounds the bytes of the lines waiting to be written (the
	// buffer holding them may take up to twice that, and the batch being
	// written as much again).
	MaxPending int
	// FlushDelay is how long a line may wait for others to share its write.
	FlushDelay time.Duration
	// CloseTimeout bounds how long Close waits for the destination to take
	// what is pending.
	CloseTimeout time.Duration
	// OnDrop, if set, is called by the writing goroutine with the number of
	// lines dropped since its last call, after a write that succeeded and
	// with at most half the buffer taken. It may log (through this Writer).
	OnDrop func(lines uint64)
}

// Writer is an io.Writer for a logger (one Write per line, as slog's
// handlers do). Write never blocks on the destination.
type Writer struct {
	out  io.Writer
	opts Options

	mu      sync.Mutex
	pending []byte
	spare   []byte
	dropped uint64 // lines dropped since the last OnDrop
	closed  bool   // the goroutine has written its last batch

	droppedTotal atomic.Uint64

	wake     chan struct{} // pending became non-empty
	full     chan struct{} // pending reached flushSize
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// New starts a Writer that writes to out.
func New(out io.Writer, opts Options) *Writer {
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.FlushDelay <= 0 {
		opts.FlushDelay = DefaultFlushDelay
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = DefaultCloseTimeout
	}
	w := &Writer{
		out:  out,
		opts: opts,
		wake: make(chan struct{}, 1),
		full: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run()
	return w
}

// Write queues p, a whole line, for the destination. It reports success
// even when the line is dropped: a logger has nothing better to do with an
// error. Lines written after Close are dropped (and counted): nothing may
// wait for the destination.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed || len(w.pending)+len(p) > w.opts.MaxPending {
		w.dropped++
		w.mu.Unlock()
		w.droppedTotal.Add(1)
		return len(p), nil
	}
	wasEmpty := len(w.pending) == 0
	w.pending = append(w.pending, p...)
	big := len(w.pending) >= flushSize
	w.mu.Unlock()
	if wasEmpty {
		signal(w.wake)
	}
	if big {
		signal(w.full)
	}
	return len(p), nil
}

// Dropped is how many lines have been dropped so far.
func (w *Writer) Dropped() uint64 { return w.droppedTotal.Load() }

// Close has the goroutine write what is pending and stop, waiting at most
// CloseTimeout for it: a destination that stopped taking lines cannot hold
// up the process's exit.
func (w *Writer) Close() error {
	w.stopOnce.Do(func() { close(w.stop) })
	t := time.NewTimer(w.opts.CloseTimeout)
	defer t.Stop()
	select {
	case <-w.done:
		return nil
	case <-t.C:
		return errors.New("logsink: the log output did not take the last lines in time")
	}
}

// run is the writing goroutine: it waits for a first line, gives others
// FlushDelay (or until flushSize) to join it, and writes them together.
func (w *Writer) run() {
	defer close(w.done)
	delay := time.NewTimer(w.opts.FlushDelay)
	delay.Stop()
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			w.drain()
			return
		}
		delay.Reset(w.opts.FlushDelay)
		select {
		case <-delay.C:
		case <-w.full:
			delay.Stop()
		case <-w.stop:
			delay.Stop()
			w.drain()
			return
		}
		w.flush()
	}
}

// drain writes until nothing is pending (an OnDrop notice may add a line),
// then closes the Writer to further lines.
func (w *Writer) drain() {
	for {
		w.mu.Lock()
		if len(w.pending) == 0 {
			w.closed = true
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.flush()
	}
}

// flush writes the pending lines in one write, then reports the lines
// dropped so far.
func (w *Writer) flush() {
	w.mu.Lock()
	batch := w.pending
	w.pending = w.spare[:0]
	w.spare = nil
	w.mu.Unlock()
	var err error
	if len(batch) > 0 {
		_, err = w.out.Write(batch)
	}
	w.mu.Lock()
	if cap(batch) <= keepSpare {
		w.spare = batch[:0]
	}
	if err != nil {
		// Not taken: those lines are dropped too.
		lost := uint64(countLines(batch))
		w.droppedTotal.Add(lost)
		w.dropped += lost
	}
	// The notice waits while the lines queued meanwhile fill more than
	// half the buffer (it would be dropped itself); they are written next.
	var dropped uint64
	if err == nil && w.opts.OnDrop != nil && len(w.pending) <= w.opts.MaxPending/2 {
		dropped, w.dropped = w.dropped, 0
	}
	w.mu.Unlock()
	if dropped > 0 {
		w.opts.OnDrop(dropped)
	}
}

// signal sends on a one-slot channel unless a signal is already waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// countLines counts the lines in b (each ends in '\n').
func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
