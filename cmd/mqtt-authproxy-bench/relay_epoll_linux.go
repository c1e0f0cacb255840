package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// runEpollRelay is the byte relay built the other way: one OS thread runs
// one edge-triggered epoll loop over every socket (no goroutine per
// direction, no Go scheduler between a read and its write). It measures
// what a hop costs when its wake-ups are shared by all connections, the
// design question left by issue 5. Like runRelay it prints its address and
// runs until killed.
func runEpollRelay(upstream string) int {
	ep, err := newEpollRelay(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay-epoll:", err)
		return 1
	}
	fmt.Println(ep.addr)
	runtime.LockOSThread()
	if err := ep.loop(); err != nil {
		fmt.Fprintln(os.Stderr, "relay-epoll:", err)
		return 1
	}
	return 0
}

// epollSide is one socket of a relayed pair; pending holds bytes read from
// its peer that it has not yet taken (a short write), which pauses reading
// from the peer until written.
type epollSide struct {
	fd      int
	peer    *epollSide
	pending []byte
	readEOF bool // peer was told (shutdown write) that this side ended
	closed  bool
}

type epollRelay struct {
	epfd     int
	lfd      int
	addr     string
	upstream string
	sides    map[int]*epollSide
	buf      []byte
}

func newEpollRelay(upstream string) (*epollRelay, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	_ = unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(lfd, 4096); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return nil, fmt.Errorf("epoll_ctl listener: %w", err)
	}
	return &epollRelay{
		epfd: epfd, lfd: lfd, upstream: upstream,
		addr:  fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port),
		sides: map[int]*epollSide{},
		buf:   make([]byte, 64<<10),
	}, nil
}

func (r *epollRelay) loop() error {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == r.lfd {
				r.acceptAll()
				continue
			}
			s := r.sides[fd]
			if s == nil || s.closed {
				continue
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && s.pending != nil {
				r.flushPending(s)
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				r.pump(s, ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
			}
		}
	}
}

// readEvents is what every socket waits for; EPOLLOUT is added only while
// a socket has pending bytes, since a Unix or TCP socket raises it each
// time its peer reads, which would wake the loop for nothing.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

func (r *epollRelay) acceptAll() {
	for {
		cfd, _, err := unix.Accept4(r.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				fmt.Fprintln(os.Stderr, "relay-epoll: accept:", err)
			}
			return
		}
		_ = unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		ufd, err := dialRaw(r.upstream)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay-epoll: dial upstream:", err)
			unix.Close(cfd)
			continue
		}
		c, u := &epollSide{fd: cfd}, &epollSide{fd: ufd}
		c.peer, u.peer = u, c
		r.sides[cfd], r.sides[ufd] = c, u
		for _, s := range []*epollSide{c, u} {
			ev := unix.EpollEvent{Events: readEvents, Fd: int32(s.fd)}
			if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
				fmt.Fprintln(os.Stderr, "relay-epoll: epoll_ctl:", err)
				r.closePair(c)
				break
			}
		}
	}
}

// dialRaw connects a non-blocking socket to upstream (host:port or
// unix:PATH), retrying while a Unix accept queue is full.
func dialRaw(upstream string) (int, error) {
	var sa unix.Sockaddr
	family := unix.AF_UNIX
	if path, ok := strings.CutPrefix(upstream, "unix:"); ok {
		sa = &unix.SockaddrUnix{Name: path}
	} else {
		ta, err := net.ResolveTCPAddr("tcp4", upstream)
		if err != nil {
			return -1, err
		}
		in := &unix.SockaddrInet4{Port: ta.Port}
		copy(in.Addr[:], ta.IP.To4())
		sa, family = in, unix.AF_INET
	}
	deadline := time.Now().Add(5 * time.Second)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if err = unix.Connect(fd, sa); err == nil {
			if family == unix.AF_INET {
				_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			}
			return fd, unix.SetNonblock(fd, true)
		}
		unix.Close(fd)
		if !errors.Is(err, unix.EAGAIN) || time.Now().After(deadline) {
			return -1, err
		}
		time.Sleep(pause)
	}
}

// pump moves what s has to read into its peer until s runs dry, the peer
// stops taking bytes, or s ends. Under edge triggering a read shorter than
// the buffer drained the socket: bytes or a FIN arriving after it raise a
// new event, so no EAGAIN read is needed unless hup says s is ending.
func (r *epollRelay) pump(s *epollSide, hup bool) {
	p := s.peer
	for p.pending == nil && !s.readEOF {
		n, err := unix.Read(s.fd, r.buf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return
		case err != nil || n == 0:
			s.readEOF = true
			_ = unix.Shutdown(p.fd, unix.SHUT_WR)
			if p.readEOF || err != nil {
				r.closePair(s)
			}
			return
		}
		if !r.write(p, r.buf[:n]) {
			return
		}
		if n < len(r.buf) && !hup {
			return
		}
	}
}

// write sends b to s, keeping what s does not take as pending. It reports
// whether everything was written.
func (r *epollRelay) write(s *epollSide, b []byte) bool {
	for len(b) > 0 {
		n, err := unix.Write(s.fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			s.pending = append([]byte(nil), b...)
			r.watchWrites(s, true)
			return false
		}
		if err != nil {
			r.closePair(s)
			return false
		}
		b = b[n:]
	}
	return true
}

// flushPending writes s's pending bytes and, once they are out, resumes
// reading from its peer, whose edge may have come and gone meanwhile.
func (r *epollRelay) flushPending(s *epollSide) {
	b := s.pending
	s.pending = nil
	if !r.write(s, b) || s.closed {
		return
	}
	r.watchWrites(s, false)
	r.pump(s.peer, true)
}

func (r *epollRelay) watchWrites(s *epollSide, on bool) {
	ev := unix.EpollEvent{Events: readEvents, Fd: int32(s.fd)}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_MOD, s.fd, &ev)
}

func (r *epollRelay) closePair(s *epollSide) {
	for _, x := range []*epollSide{s, s.peer} {
		if x.closed {
			continue
		}
		x.closed = true
		delete(r.sides, x.fd)
		unix.Close(x.fd)
	}
}
