// Package e2e holds the end-to-end tests: the plugin runs in a real Caddy
// (the caddytest harness in the test process, and Caddy processes built
// from the repository's ./cmd/caddy) with wxmock as WeChat and, where a
// test says so, a real redis-server. They cover the HTTP contract, clusters
// and outages, the Caddyfile adapter, the configs of the README and docs/,
// and the in-process benchmarks of a protected request (bench_test.go).
//
// The package has no code beyond this comment. Unit tests sit beside the
// code they test; a test that needs a whole Caddy belongs here.
package e2e
