//go:build unix

package packetcodec

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConnOf returns the RawConn of a plain TCP or Unix socket, else nil.
// Only these exact types qualify: a wrapper that embeds one (PROXY
// protocol, byte counting) must be read through its own Read.
func rawConnOf(rd io.Reader) syscall.RawConn {
	var sc syscall.Conn
	switch c := rd.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// fillRaw makes the read system call inside RawConn.Read: the buffer is
// taken just before it and given back when it would block, so a Reader
// waiting for its peer holds none.
func (s *source) fillRaw() {
	var n int
	var rerr, werr error
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
			// unless it holds the start of a packet, and only after
			// onWait (the flush of what this burst produced).
			s.release()
			werr = s.beforeWait()
			return werr != nil
		}
		return true
	})
	switch {
	case err != nil: // deadline, closed: errors.Is-compatible with net.Conn.Read's
		s.err = err
	case werr != nil:
		s.err = werr
	case rerr != nil:
		s.err = os.NewSyscallError("read", rerr)
	case n == 0:
		s.err = io.EOF
	default:
		s.w += n
	}
}
