// Command caddy is Caddy with the standard modules, caddy-wxauth and its
// WeChat stand-in wxmock: the development binary that
//
//	xcaddy build --with github.com/wxauth/caddy-wxauth --with github.com/wxauth/caddy-wxauth/wxmock
//
// produces (a production build leaves out the second --with). It lets
// `go run ./cmd/caddy run --config example.Caddyfile` run the demo, and the
// tests run it as a real Caddy process.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/wxauth/caddy-wxauth"
	_ "github.com/wxauth/caddy-wxauth/wxmock"
)

func main() {
	caddycmd.Main()
}
