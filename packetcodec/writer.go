package packetcodec

import (
	"bufio"
	"io"
	"sync"
)

// writeBufferSize is the bufio buffer of a Writer.
const writeBufferSize = 4 << 10

// Writer is the single writer of a socket: a mutex-guarded bufio.Writer
// (STYLE 24). Both pumps of a connection may write to the same socket (a
// forwarded packet from one, a locally made answer from the other), so
// every method locks; whole packets are buffered so they never interleave.
// paho's NewThreadSafeConn only serialises unbuffered writes.
//
// The flush policy is the caller's: flush when the Reader feeding this
// Writer has nothing buffered, so a burst of packets becomes one write.
type Writer struct {
	mu      sync.Mutex
	bw      *bufio.Writer
	scratch []byte // encoding buffer for WritePacket, reused under mu
}

// NewWriter returns a Writer buffering up to 4 KiB for w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, writeBufferSize)}
}

// Write buffers b, which must be whole packets. Larger writes go straight
// through without a copy into the buffer.
func (w *Writer) Write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.bw.Write(b)
	return err
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
	if cap(b) <= retainLimit {
		w.scratch = b
	} else {
		w.scratch = nil // do not pin a large buffer on an idle connection
	}
	_, err = w.bw.Write(b)
	return err
}

// Flush writes the buffered bytes to the socket.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Flush()
}

// WriteAndFlush buffers b and flushes, as one locked step: for packets that
// must leave now (CONNACK, DISCONNECT, the upstream CONNECT).
func (w *Writer) WriteAndFlush(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.bw.Write(b); err != nil {
		return err
	}
	return w.bw.Flush()
}
