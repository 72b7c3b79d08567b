//go:build linux

package e2e

import (
	"sync"

	"golang.org/x/sys/unix"
)

// reserved holds the sockets that keep this run's ports.
var reserved struct {
	sync.Mutex
	fds []int
}

// reservePort binds, without listening, a TCP socket with SO_REUSEPORT to a
// port the kernel chooses, and keeps it for the rest of the run: no other
// bind gets that port, while Caddy, which sets SO_REUSEPORT on its
// listeners, can still listen on it. A port that was only free a moment ago
// could be chosen by another run on this machine too, and two Caddys would
// then both bind it and share its connections.
func reservePort() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		unix.Close(fd)
		return 0, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{}); err != nil {
		unix.Close(fd)
		return 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return 0, err
	}
	reserved.Lock()
	reserved.fds = append(reserved.fds, fd)
	reserved.Unlock()
	return sa.(*unix.SockaddrInet4).Port, nil
}
