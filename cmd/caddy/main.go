// Command caddy is Caddy with the standard modules and caddy-wxauth, the same
// binary `xcaddy build --with github.com/wxauth/caddy-wxauth` produces. It
// lets `go run ./cmd/caddy run --config example.Caddyfile` run the demo.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/wxauth/caddy-wxauth"
)

func main() {
	caddycmd.Main()
}
