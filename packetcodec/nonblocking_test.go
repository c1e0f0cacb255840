package packetcodec

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// trickle is a non-blocking stream: each Read returns at most the next
// chunk's bytes, and ErrWouldBlock between chunks, as a socket does when
// a packet arrives in pieces.
type trickle struct {
	chunks [][]byte
	gap    bool // the next Read says ErrWouldBlock
	reads  int  // Read calls
}

func (t *trickle) Read(p []byte) (int, error) {
	t.reads++
	if t.gap {
		t.gap = false
		return 0, ErrWouldBlock
	}
	if len(t.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, t.chunks[0])
	if t.chunks[0] = t.chunks[0][n:]; len(t.chunks[0]) == 0 {
		t.chunks, t.gap = t.chunks[1:], true
	}
	return n, nil
}

// chop cuts b into pieces of at most size bytes.
func chop(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// A non-blocking Reader returns the same frames as a blocking one, however
// the bytes are cut, frames larger than its buffer included, and says
// ErrWouldBlock, without losing anything, whenever a frame is incomplete.
func TestNonblockingReaderFrames(t *testing.T) {
	var stream []byte
	sizes := []int{0, 10, 100, 20 << 10, 5, 70 << 10, 3}
	for i, n := range sizes {
		stream = append(stream, publishPacket(n, uint16(i+1))...)
	}
	for _, cut := range []int{1, 7, 1000, 16 << 10, 1 << 20} {
		t.Run(fmt.Sprintf("pieces of %d bytes", cut), func(t *testing.T) {
			src := &trickle{chunks: chop(bytes.Clone(stream), cut)}
			r := NewReader(bytes.NewReader(nil), 0)
			r.SetNonblocking(src)
			var got [][]byte
			for blocked := 0; ; {
				f, err := r.ReadFrame()
				if err == ErrWouldBlock {
					if blocked++; blocked > len(stream)+10 {
						t.Fatal("no progress")
					}
					continue
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("frame %d: %v", len(got), err)
				}
				got = append(got, bytes.Clone(f.Raw))
			}
			if len(got) != len(sizes) {
				t.Fatalf("got %d frames, want %d", len(got), len(sizes))
			}
			if !bytes.Equal(bytes.Join(got, nil), stream) {
				t.Fatal("frames differ from what was sent")
			}
		})
	}
}

// Bytes a blocking Reader already holds are kept when it turns
// non-blocking (the handshake's Reader handing over to the event loop).
func TestSetNonblockingKeepsBufferedBytes(t *testing.T) {
	first, second := publishPacket(5, 1), publishPacket(6, 2)
	r := NewReader(bytes.NewReader(append(bytes.Clone(first), second[:4]...)), 0)
	if f, err := r.ReadFrame(); err != nil || !bytes.Equal(f.Raw, first) {
		t.Fatalf("first frame: %v", err)
	}
	r.SetNonblocking(&trickle{chunks: [][]byte{second[4:]}})
	f, err := r.ReadFrame()
	if err != nil || !bytes.Equal(f.Raw, second) {
		t.Fatalf("second frame %x, %v; want %x", f.Raw, err, second)
	}
}

// After Readable(false) a read that leaves room in the buffer means the
// socket is empty: the next frame reports ErrWouldBlock without another
// read. After Readable(true) (a hang-up pending) the Reader reads on, so the
// end of the stream is seen.
func TestReadableShortReadDrains(t *testing.T) {
	p := publishPacket(5, 1)
	for _, hangup := range []bool{false, true} {
		t.Run(fmt.Sprintf("hangup %v", hangup), func(t *testing.T) {
			src := &trickle{chunks: [][]byte{p}}
			src.chunks = append(src.chunks, nil) // EOF after the gap
			r := NewReader(bytes.NewReader(nil), 0)
			r.SetNonblocking(src)
			r.Readable(hangup)
			if _, err := r.ReadFrame(); err != nil {
				t.Fatal(err)
			}
			_, err := r.ReadFrame()
			if !hangup {
				if err != ErrWouldBlock || src.reads != 1 {
					t.Fatalf("after a short read: %v after %d reads; want ErrWouldBlock after 1", err, src.reads)
				}
				r.Readable(true)
				_, err = r.ReadFrame()
			}
			if err != ErrWouldBlock {
				t.Fatalf("got %v, want ErrWouldBlock from the stream", err)
			}
		})
	}
}

// blockingWriter takes up to room bytes, then says ErrWouldBlock until
// room is raised.
type blockingWriter struct {
	bytes.Buffer
	room int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.room)
	w.room -= n
	w.Buffer.Write(p[:n])
	if n < len(p) {
		return n, ErrWouldBlock
	}
	return n, nil
}

// A Writer on a non-blocking stream keeps what the stream refused, in
// order, reports Blocked until a Flush gets it all out, and takes writes
// meanwhile, large ones included.
func TestWriterOnNonblockingStream(t *testing.T) {
	bw := &blockingWriter{room: 10}
	w := NewWriter(bw)
	var want []byte
	for i, n := range []int{5, 40, writeBufferSize + 100, 3} {
		p := publishPacket(n, uint16(i+1))
		want = append(want, p...)
		if err := w.Write(p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if !blocked(w) {
		t.Fatal("not Blocked with bytes refused")
	}
	bw.room = 100
	if err := w.Flush(); err != nil || !blocked(w) {
		t.Fatalf("partial flush: %v, blocked %v", err, blocked(w))
	}
	bw.room = 1 << 20
	if err := w.Flush(); err != nil || blocked(w) {
		t.Fatalf("final flush: %v, blocked %v", err, blocked(w))
	}
	if !bytes.Equal(bw.Bytes(), want) {
		t.Fatalf("stream got %d bytes, want %d, or not in order", bw.Len(), len(want))
	}
}

func blocked(w *Writer) bool {
	b, _ := w.Backlog()
	return b
}
