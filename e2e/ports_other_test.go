//go:build !linux

package e2e

import "net"

// reservePort returns a port that was free a moment ago; only Linux keeps
// it reserved for the run (see ports_linux_test.go).
func reservePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
