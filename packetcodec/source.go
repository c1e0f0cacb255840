package packetcodec

import (
	"io"
	"sync"
	"syscall"
)

// readBuffers are the read buffers of Readers on sockets: such a Reader
// holds one only while it has unread bytes, so thousands of idle
// connections hold none (issue 5: memory per idle connection).
// streamBuffers serve Readers on other streams.
var (
	readBuffers = sync.Pool{New: func() any {
		b := make([]byte, readBufferSize)
		return &b
	}}
	streamBuffers = sync.Pool{New: func() any {
		b := make([]byte, streamBufferSize)
		return &b
	}}
)

// source is the buffered byte stream under a Reader: bufio.Reader's Peek,
// Discard and Read, with a buffer taken from readBuffers when bytes arrive
// and given back when they are all consumed and the next read would block.
//
// On a plain socket (*net.TCPConn or *net.UnixConn itself, not a type that
// wraps one and may change what Read returns) on a Unix system, the read
// system call is made inside RawConn.Read, so a Reader waiting for its peer
// holds no buffer at all: the buffer is taken just before the read and
// returned when the read would block. Go's own netFD read works the same way (read, then wait
// on EAGAIN), so this costs no extra system call. Other streams (TLS,
// WebSocket) are read with their Read method and keep the buffer while they
// wait.
type source struct {
	rd   io.Reader
	raw  syscall.RawConn // nil unless rd is a socket
	pool *sync.Pool      // readBuffers on a socket, streamBuffers otherwise
	buf  *[]byte         // nil while empty
	r, w int             // unread bytes are (*buf)[r:w]
	err  error           // sticky read error, returned once the buffer is drained
	// onWait runs before the source waits for the stream (Reader.SetOnWait).
	onWait func() error
	// nonblocking: rd returns ErrWouldBlock instead of waiting
	// (Reader.SetNonblocking); the source then returns it, unsticky.
	nonblocking bool
	// shortDrains: a read that does not fill the buffer emptied the
	// socket (edge-triggered readiness, no hang-up pending), so the next
	// fill reports ErrWouldBlock without a system call; drained records it.
	shortDrains, drained bool
}

func newSource(rd io.Reader) *source {
	s := &source{rd: rd, pool: &streamBuffers}
	if raw := rawConnOf(rd); raw != nil {
		s.raw, s.pool = raw, &readBuffers
	}
	return s
}

// setNonblocking makes rd, which returns ErrWouldBlock when it has nothing,
// the stream, keeping the unread bytes. The buffer is a socket's: taken
// when bytes arrive, given back when a read would block.
func (s *source) setNonblocking(rd io.Reader) {
	if s.buf != nil && s.pool != &readBuffers {
		// A stream buffer cannot go back to readBuffers: copy its bytes.
		b := readBuffers.Get().(*[]byte)
		n := copy(*b, (*s.buf)[s.r:s.w])
		s.pool.Put(s.buf)
		s.buf, s.r, s.w = b, 0, n
	}
	s.rd, s.raw, s.pool, s.nonblocking = rd, nil, &readBuffers, true
}

// Buffered returns the number of unread bytes in the buffer.
func (s *source) Buffered() int { return s.w - s.r }

// Size is the buffer size: the longest Peek.
func (s *source) Size() int {
	if s.raw != nil || s.nonblocking {
		return readBufferSize
	}
	return streamBufferSize
}

// release gives the buffer back when it holds nothing unread. Only fill
// calls it, when a read would block: by then the Reader has returned its
// last frame's bytes (the caller is in the next ReadFrame), so no slice of
// the buffer is in use, and a connection with traffic keeps its buffer.
func (s *source) release() {
	if s.buf != nil && s.r == s.w {
		s.pool.Put(s.buf)
		s.buf, s.r, s.w = nil, 0, 0
	}
}

// close drops the unread bytes, gives the buffer back and makes every later
// read fail with ErrReaderClosed.
func (s *source) close() {
	s.r = s.w
	s.release()
	s.err = ErrReaderClosed
}

// Peek returns the next n bytes without consuming them (n ≤ Size), or fewer
// with the error that stopped it. The slice is valid until the next Peek,
// Read or release.
func (s *source) Peek(n int) ([]byte, error) {
	for s.w-s.r < n {
		if s.err != nil {
			return s.peeked(), s.err
		}
		if s.r > 0 {
			// Slide the unread bytes to the front to make room, as
			// bufio does; earlier Peeks are invalid from here on.
			copy(*s.buf, (*s.buf)[s.r:s.w])
			s.w -= s.r
			s.r = 0
		}
		if wouldBlock := s.fill(); wouldBlock {
			return s.peeked(), ErrWouldBlock
		}
	}
	return (*s.buf)[s.r : s.r+n], nil
}

func (s *source) peeked() []byte {
	if s.buf == nil {
		return nil
	}
	return (*s.buf)[s.r:s.w]
}

// Discard consumes n buffered bytes (n ≤ Buffered).
func (s *source) Discard(n int) {
	s.r += n
}

// Read reads into p: buffered bytes first, then straight from the stream
// (large packets go to the Reader's spill buffer without a second copy).
func (s *source) Read(p []byte) (int, error) {
	if s.w > s.r {
		n := copy(p, (*s.buf)[s.r:s.w])
		s.r += n
		return n, nil
	}
	if s.err != nil {
		return 0, s.err
	}
	// The rest of a large packet is read straight from the stream, which
	// may block: run the hook first, as fill does.
	if err := s.beforeWait(); err != nil {
		return 0, err
	}
	return s.rd.Read(p)
}

// beforeWait runs onWait, if set, before a read that may block; its error
// becomes the sticky read error.
func (s *source) beforeWait() error {
	if s.onWait == nil {
		return nil
	}
	if err := s.onWait(); err != nil {
		s.err = err
		return err
	}
	return nil
}

// fill reads once into the free space of the buffer, taking one from the
// pool if needed. A read error is kept in s.err and returned by every later
// Peek and Read once the buffer is drained (unlike bufio, which returns it
// once): a Reader is done after its first error. The buffer goes back to
// the pool then if it holds nothing unread.
func (s *source) fill() (wouldBlock bool) {
	switch {
	case s.nonblocking:
		wouldBlock = s.fillNonblocking()
	case s.raw != nil:
		s.fillRaw()
	default:
		s.fillStream()
	}
	if s.err != nil {
		s.release()
	}
	return wouldBlock
}

// fillNonblocking reads once from a stream that returns ErrWouldBlock
// instead of waiting, and reports whether it did; the buffer goes back
// when that leaves it empty.
func (s *source) fillNonblocking() (wouldBlock bool) {
	if s.drained {
		s.drained = false
		s.release()
		return true
	}
	if s.buf == nil {
		s.buf = s.pool.Get().(*[]byte)
	}
	room := len(*s.buf) - s.w
	n, err := s.rd.Read((*s.buf)[s.w:])
	s.w += n
	s.drained = s.shortDrains && err == nil && n > 0 && n < room
	switch {
	case err == ErrWouldBlock:
		s.release()
		return true
	case err != nil:
		s.err = err
	case n == 0:
		s.err = io.EOF
	}
	return false
}

// maxEmptyReads is how many (0, nil) reads in a row a stream may return
// before the source gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// fillStream reads with the stream's own Read, holding the buffer.
func (s *source) fillStream() {
	if s.beforeWait() != nil { // any read of a stream may block
		return
	}
	if s.buf == nil {
		s.buf = s.pool.Get().(*[]byte)
	}
	for range maxEmptyReads {
		n, err := s.rd.Read((*s.buf)[s.w:])
		s.w += n
		if err != nil {
			s.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	s.err = io.ErrNoProgress
}
