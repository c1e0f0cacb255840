package packetcodec

import (
	"io"
	"os"
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
// On a socket (a syscall.Conn such as *net.TCPConn) the read system call is
// made inside RawConn.Read, so a Reader waiting for its peer holds no buffer
// at all: the buffer is taken just before the read and returned when the
// read would block. Go's own netFD read works the same way (read, then wait
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
}

func newSource(rd io.Reader) *source {
	s := &source{rd: rd, pool: &streamBuffers}
	if sc, ok := rd.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw, s.pool = raw, &readBuffers
		}
	}
	return s
}

// Buffered returns the number of unread bytes in the buffer.
func (s *source) Buffered() int { return s.w - s.r }

// Size is the buffer size: the longest Peek.
func (s *source) Size() int {
	if s.raw != nil {
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
		s.fill()
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
	return s.rd.Read(p)
}

// fill reads once into the free space of the buffer, taking one from the
// pool if needed; a read error is kept in s.err.
func (s *source) fill() {
	if s.raw == nil {
		if s.buf == nil {
			s.buf = s.pool.Get().(*[]byte)
		}
		n, err := s.rd.Read((*s.buf)[s.w:])
		s.w += n
		if err != nil {
			s.err = err
		} else if n == 0 {
			s.err = io.ErrNoProgress
		}
		return
	}
	var n int
	var rerr error
	err := s.raw.Read(func(fd uintptr) bool {
		if s.buf == nil {
			s.buf = s.pool.Get().(*[]byte)
		}
		for {
			n, rerr = syscall.Read(int(fd), (*s.buf)[s.w:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			// Nothing to read: wait for the peer without a buffer,
			// unless it holds the start of a packet.
			s.release()
			return false
		}
		return true
	})
	switch {
	case err != nil: // deadline, closed: as net.Conn.Read reports them
		s.err = err
	case rerr != nil:
		s.err = os.NewSyscallError("read", rerr)
	case n == 0:
		s.err = io.EOF
	default:
		s.w += n
	}
}
