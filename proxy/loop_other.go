//go:build !linux

package proxy

// Off Linux there is no event loop: every connection relays with the two
// pumps (loop_linux.go explains the loop).

type eventLoop struct{}

type loopConn struct{ ended chan struct{} }

func newLoops() []*eventLoop { return nil }

func (c *conn) attachToLoop() *loopConn { return nil }

func (lc *loopConn) detach() {}
