package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
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
	closing       atomic.Bool // Close has begun: it shuts the socket down before taking mu
	local, remote net.Addr
	peer          netip.AddrPort // an accepted TCP socket's peer, made remote on first use

	// owned: the loop owns the socket (non-blocking use); epfd and ev
	// are its epoll registration, outArmed whether EPOLLOUT is in it,
	// refused whether the last Write left bytes behind.
	owned    bool
	epfd     int
	ev       unix.EpollEvent
	outArmed bool
	refused  bool

	writeDeadline time.Time
}

// dupRawSock duplicates nc's descriptor into a rawSock. Only plain TCP and
// Unix sockets qualify (TLS and WebSocket clients keep the pumps). The
// caller then closes nc, which takes the original out of Go's poller.
func dupRawSock(nc net.Conn) (*rawSock, error) {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil, errNotRawSocket
	}
	fd, err := dupFD(nc.(syscall.Conn))
	if err != nil {
		return nil, fmt.Errorf("take socket: %w", err)
	}
	return &rawSock{fd: fd, local: nc.LocalAddr(), remote: nc.RemoteAddr()}, nil
}

// dupFD duplicates sc's descriptor, non-blocking: Go's sockets are, but one
// that came in blocking (from a file, say) would freeze every connection
// on a loop.
func dupFD(sc syscall.Conn) (int, error) {
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
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
//
// Write arms EPOLLOUT but never disarms it, even when it empties what an
// earlier Write left: a background writer (the re-authentication reply)
// taking EPOLLOUT out would drop an event the kernel already queued for
// the loop, which may be the loop's only cue to resume reading. The loop
// disarms it itself (disarmIfDone).
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
				if err := s.armOut(true); err != nil {
					return written, err
				}
				s.refused = true
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
	s.refused = false
	return written, nil
}

// armOut adds EPOLLOUT to the socket's registration, or takes it out:
// sockets raise it whenever their peer reads, which would wake the loop
// for nothing while there is nothing to write. s.mu is held.
func (s *rawSock) armOut(on bool) error {
	if s.outArmed == on {
		return nil
	}
	ev := s.ev
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_MOD, s.fd, &ev); err != nil {
		// Without EPOLLOUT the refused bytes would wait forever: fail
		// the write, which ends the connection.
		return os.NewSyscallError("epoll_ctl", err)
	}
	s.outArmed = on
	return nil
}

// disarmIfDone takes EPOLLOUT out once nothing is left refused. The loop
// calls it after an EPOLLOUT event; s.mu makes the check and the change one
// step against a concurrent Write that is refused and arms it again.
func (s *rawSock) disarmIfDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owned && !s.refused && !s.closed {
		_ = s.armOut(false)
	}
}

// release hands the socket from the loop to finish: from here Write waits
// for room, and never without a deadline, since a write may come before
// finish sets its own (the re-authentication reply, say).
func (s *rawSock) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.owned = false
	if s.writeDeadline.IsZero() {
		s.writeDeadline = time.Now().Add(finalWriteTimeout)
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
// epoll set. A Write waiting for room holds mu: Close then first shuts the
// socket down, without mu, so that Write returns at once (as
// net.Conn.Close interrupts a blocked Write) instead of holding Close, and
// Server.Shutdown, for up to its deadline. Only Close closes the
// descriptor, so it is still this socket's when shut down.
func (s *rawSock) Close() error {
	if s.closing.Swap(true) {
		return net.ErrClosed
	}
	if !s.mu.TryLock() {
		_ = unix.Shutdown(s.fd, unix.SHUT_RDWR)
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	s.closed = true
	return unix.Close(s.fd)
}

// discard closes a duplicate that was never handed over, without the
// shutdown Close does: that would end the socket the originals still use.
func (s *rawSock) discard() {
	if !s.closing.Swap(true) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		_ = unix.Close(s.fd)
	}
}

func (s *rawSock) LocalAddr() net.Addr { return s.local }
func (s *rawSock) RemoteAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remote == nil {
		s.remote = net.TCPAddrFromAddrPort(s.peer)
	}
	return s.remote
}

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
