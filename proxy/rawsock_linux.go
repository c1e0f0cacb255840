package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// rawSock is a socket taken out of Go's network poller for the event loop
// (loop_linux.go): a net.Conn over a plain non-blocking descriptor. While
// the loop owns it, Read and Write return packetcodec.ErrWouldBlock instead
// of waiting, and a refused Write asks the loop to report writability.
// After detach it is an ordinary blocking socket again whose Write waits,
// up to the write deadline, for the final DISCONNECT to go out.
//
// Every method holds mu, so Close never races a read or write into a
// reused descriptor.
type rawSock struct {
	mu            sync.Mutex
	fd            int
	closed        bool
	local, remote net.Addr

	// owned: the loop owns the socket (non-blocking use); epfd and ev
	// are its epoll registration, outArmed whether EPOLLOUT is in it.
	owned    bool
	epfd     int
	ev       unix.EpollEvent
	outArmed bool

	writeDeadline time.Time
}

// dupRawSock duplicates nc's descriptor into a rawSock. Only plain TCP and
// Unix sockets qualify (TLS and WebSocket clients keep the pumps). The
// caller then closes nc, which takes the original out of Go's poller; the
// duplicate shares the open file, so it stays non-blocking.
func dupRawSock(nc net.Conn) (*rawSock, error) {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil, errNotRawSocket
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("take socket: %w", err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, fmt.Errorf("take socket: %w", err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("take socket: dup: %w", dupErr)
	}
	return &rawSock{fd: fd, local: nc.LocalAddr(), remote: nc.RemoteAddr()}, nil
}

var errNotRawSocket = errors.New("not a plain TCP or Unix socket")

// Read reads what is there; it never waits.
func (s *rawSock) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	for {
		n, err := unix.Read(s.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, packetcodec.ErrWouldBlock
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes p. While the loop owns the socket, what the kernel does
// not take is refused with ErrWouldBlock and EPOLLOUT armed; once the
// socket is detached it waits for room until the write deadline.
func (s *rawSock) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, net.ErrClosed
	}
	written := 0
	for written < len(p) {
		n, err := unix.Write(s.fd, p[written:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if s.owned {
				s.armOut(true)
				return written, packetcodec.ErrWouldBlock
			}
			if err := s.waitWritable(); err != nil {
				return written, err
			}
			continue
		case err != nil:
			return written, os.NewSyscallError("write", err)
		}
		written += n
	}
	if s.outArmed {
		s.armOut(false)
	}
	return written, nil
}

// armOut adds EPOLLOUT to the socket's registration, or takes it out:
// sockets raise it whenever their peer reads, which would wake the loop
// for nothing while there is nothing to write.
func (s *rawSock) armOut(on bool) {
	ev := s.ev
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, s.fd, &ev) == nil {
		s.outArmed = on
	}
}

// waitWritable waits for room in the send buffer until the write deadline.
func (s *rawSock) waitWritable() error {
	for {
		timeout := -1
		if !s.writeDeadline.IsZero() {
			d := time.Until(s.writeDeadline)
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			timeout = int(d/time.Millisecond) + 1
		}
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, timeout)
		if err == unix.EINTR || (err == nil && n == 0) {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		return nil
	}
}

// Close closes the descriptor, which also takes it out of the loop's
// epoll set.
func (s *rawSock) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	s.closed = true
	return unix.Close(s.fd)
}

func (s *rawSock) LocalAddr() net.Addr  { return s.local }
func (s *rawSock) RemoteAddr() net.Addr { return s.remote }

// SetDeadline sets the write deadline; reads never wait.
func (s *rawSock) SetDeadline(t time.Time) error { return s.SetWriteDeadline(t) }

// SetReadDeadline does nothing: reads never wait, and the loop enforces
// the keep alive with a timer.
func (s *rawSock) SetReadDeadline(time.Time) error { return nil }

func (s *rawSock) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeDeadline = t
	return nil
}
