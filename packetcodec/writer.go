package packetcodec

import (
	"io"
	"sync"
)

// writeBufferSize is the buffer of a Writer: writes smaller than it are
// gathered, larger ones go straight to the socket.
// Only busy connections hold one (writeBuffers), so it is sized for bursts
// of 4 KiB messages rather than for idle memory.
const writeBufferSize = 16 << 10

// writeBuffers holds the buffers of Writers that have nothing pending, so an
// idle connection holds no write buffer at all (issue 5: memory per idle
// connection); a busy one takes a buffer on its first write after a flush
// and gives it back on the flush.
var writeBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufferSize)
	return &b
}}

// Writer is the single writer of a socket: a mutex-guarded buffer
// (STYLE 24). Both pumps of a connection may write to the same socket (a
// forwarded packet from one, a locally made answer from the other), so
// every method locks; whole packets are buffered so they never interleave.
// paho's NewThreadSafeConn only serialises unbuffered writes.
//
// The flush policy is the caller's: the proxy flushes when the Reader
// feeding this Writer is about to wait for its socket (Reader.SetOnWait),
// so a burst of packets becomes one write; a full buffer is written at once.
// As with bufio.Writer, the first write error sticks.
//
// On a non-blocking stream (one whose Write returns ErrWouldBlock with the
// count it did write), what the stream does not take stays buffered, the
// buffer growing past 16 KiB if it must, and Backlog reports it until a
// Flush gets it all out; the caller stops producing meanwhile.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	buf     *[]byte // pooled; nil while nothing is pending
	err     error
	scratch []byte // encoding buffer for WritePacket, reused under mu
	blocked bool   // the stream refused bytes that are still buffered
}

// NewWriter returns a Writer gathering up to 16 KiB for w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// Write buffers b, which must be whole packets. Larger writes go straight
// through without a copy into the buffer.
func (w *Writer) Write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.write(b)
}

func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.buf != nil && len(*w.buf)+len(b) > cap(*w.buf) && !w.blocked {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.buf == nil {
		if len(b) >= writeBufferSize {
			n, err := w.w.Write(b)
			if err != ErrWouldBlock {
				if err != nil {
					w.err = err
				}
				return w.err
			}
			w.blocked, b = true, b[n:]
		}
		w.buf = writeBuffers.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, b...)
	return nil
}

// flush writes what is pending and returns the buffer to the pool.
func (w *Writer) flush() error {
	if w.buf == nil {
		return w.err
	}
	if len(*w.buf) > 0 && w.err == nil {
		n, err := w.w.Write(*w.buf)
		if err == ErrWouldBlock {
			// Keep the rest for the next Flush.
			*w.buf = (*w.buf)[:copy(*w.buf, (*w.buf)[n:])]
			w.blocked = true
			return nil
		}
		if err != nil {
			w.err = err
		}
	}
	w.blocked = false
	*w.buf = (*w.buf)[:0]
	if cap(*w.buf) == writeBufferSize { // not one grown while blocked
		writeBuffers.Put(w.buf)
	}
	w.buf = nil
	return w.err
}

// Backlog reports whether bytes a non-blocking stream refused are
// buffered (Flush again once the socket is writable), and how many bytes
// are buffered in all.
func (w *Writer) Backlog() (blocked bool, buffered int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf != nil {
		buffered = len(*w.buf)
	}
	return w.blocked, buffered
}

// SetStream makes sw the stream from here on; buffered bytes go to it.
func (w *Writer) SetStream(sw io.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = sw
}

// WritePacket encodes a paho packet (a *packets.ControlPacket, or a
// *packets.Connack, *packets.Puback, *packets.Suback, *packets.Disconnect,
// *packets.Auth, …, or a *Connect) with AppendPacket and buffers it. It does
// not mutate p, and a field paho would truncate is an error and nothing is
// written.
func (w *Writer) WritePacket(p io.WriterTo) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := AppendPacket(w.scratch[:0], p)
	if err != nil {
		return err
	}
	err = w.write(b)
	// The scratch buffer is only needed while encoding: do not pin it on
	// an idle connection.
	w.scratch = nil
	return err
}

// Flush writes the buffered bytes to the socket.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush()
}

// WriteAndFlush buffers b and flushes, as one locked step: for packets that
// must leave now (CONNACK, DISCONNECT, the upstream CONNECT).
func (w *Writer) WriteAndFlush(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.write(b); err != nil {
		return err
	}
	return w.flush()
}
